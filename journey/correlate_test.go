package journey

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseCorrelations(t *testing.T) {
	t.Parallel()
	cs, err := ParseCorrelations("order=header:X-Order-Id, order=json:order_id,json:customer")
	require.NoError(t, err)
	require.Equal(t, Correlations{{Name: "order", Header: "X-Order-Id"}, {Name: "order", Field: "order_id"},
		{Name: "customer", Field: "customer"}}, cs)
	require.Equal(t, []string{"order", "customer"}, cs.Names())
	again, err := ParseCorrelations(cs.String())
	require.NoError(t, err)
	require.Equal(t, cs, again)

	for _, bad := range []string{"X-Order-Id", "body:x", "header:", "json:a b", "trace=header:X", "header:a\x00b",
		"x=json:" + strings.Repeat("a", 65)} {
		_, err := ParseCorrelations(bad)
		require.ErrorIs(t, err, ErrBadCorrelation, bad)
		require.Contains(t, err.Error(), "bad correlation", bad)
	}
	none, err := ParseCorrelations("")
	require.NoError(t, err)
	require.Empty(t, none)
}

func TestKeys(t *testing.T) {
	t.Parallel()
	cs, err := ParseCorrelations("order=header:X-Order-Id,order=json:order_id,json:n")
	require.NoError(t, err)
	h := map[string][]string{
		"Traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		"x-order-id":  {"o-1"},
	}
	payload := []byte(` { "skip": {"order_id": "nested", "a": [1, {"b": "}"}]}, "order_id" : "o-2", "n": 42 }`)
	require.Equal(t, []Key{{"trace", "0af7651916cd43dd8448eb211c80319c"}, {"order", "o-1"}, {"order", "o-2"}, {"n", "42"}},
		cs.Keys(h, payload))
	require.Equal(t, []string{"0af7651916cd43dd8448eb211c80319c", "o-1", "o-2", "42"}, cs.KeyValues(h, payload))

	// Hostile values are left out, never cut or mangled.
	hostile := map[string][]string{
		"traceparent": {"00-zzzz-b7ad6b7169203331-01"},
		"X-Order-Id":  {strings.Repeat("a", MaxKeyLen+1)},
	}
	require.Empty(t, cs.Keys(hostile, []byte(`{"order_id": "bad\u0001", "n": null}`)))
	require.Empty(t, cs.Keys(map[string][]string{"X-Order-Id": {"\xff\xfe"}}, []byte("\xff{")))
	// Escaped keys and values are decoded.
	require.Equal(t, []Key{{"order", "o/3"}}, cs.Keys(nil, []byte(`{"order\u005fid":"o\/3"}`)))
	// A field past MaxScan is not read.
	far := []byte(`{"pad":"` + strings.Repeat("x", MaxScan) + `","order_id":"o-4"}`)
	require.Empty(t, cs.Keys(nil, far))
	// Only the top level counts, and not arrays or objects as values.
	require.Empty(t, cs.Keys(nil, []byte(`[{"order_id":"o-5"}]`)))
	require.Empty(t, cs.Keys(nil, []byte(`{"order_id":{"id":"o-6"}}`)))
}

// FuzzKeys: whatever a message holds, finding its keys neither panics nor
// gives a key that is empty, too long, not UTF-8 or holds control
// characters.
func FuzzKeys(f *testing.F) {
	f.Add("o-1", []byte(`{"order_id":"o-2","n":1}`))
	f.Add("\xff", []byte(`{"a":{"b":[1,2,{"c":"d"}]},"order_id":"\u00e9"}`))
	f.Add("", []byte(`{"order_id":`))
	f.Add("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", []byte(strings.Repeat("[", 200)))
	cs, err := ParseCorrelations("order=header:X-Order-Id,order=json:order_id,json:n")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, header string, payload []byte) {
		h := map[string][]string{"X-Order-Id": {header}, "traceparent": {header}}
		for _, k := range cs.Keys(h, payload) {
			if !goodKey(k.Value) {
				t.Fatalf("key %q indexed", k.Value)
			}
		}
	})
}
