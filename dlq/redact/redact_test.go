package redact

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRedactorMasksFieldsAndHeadersKeepingOrder(t *testing.T) {
	r, err := New([]string{"Authorization", " x-api-key "}, []string{"password", "card.number", "items.secret", "meta.*.token"})
	require.NoError(t, err)
	require.True(t, r.Active())

	in := []byte(`{"user":"ann","Password":"hunter2","card":{"number":"4111111111111111","exp":"12/29"},` +
		`"items":[{"id":1,"secret":{"a":[1,2]}},{"id":2.50}],"note":null,"ok":true,"number":"kept",` +
		`"meta":{"x":{"token":"t1","id":3}},"token":"top"}`)
	out, changed := r.Payload(in)
	require.True(t, changed)
	require.Equal(t, `{"user":"ann","Password":"[redacted]","card":{"number":"[redacted]","exp":"12/29"},`+
		`"items":[{"id":1,"secret":"[redacted]"},{"id":2.50}],"note":null,"ok":true,"number":"kept",`+
		`"meta":{"x":{"token":"[redacted]","id":3}},"token":"top"}`, string(out))

	same, changed := r.Payload([]byte(`{"user":"ann"}`))
	require.False(t, changed)
	require.Equal(t, `{"user":"ann"}`, string(same))
	bin := []byte{0xff, 0x00, 'p'}
	got, changed := r.Payload(bin)
	require.False(t, changed, "not JSON: left alone")
	require.Equal(t, bin, got)

	h := map[string][]string{"authorization": {"Bearer abc"}, "X-Api-Key": {"k1", "k2"}, "Trace": {"t"}}
	hr, changed := r.Headers(h)
	require.True(t, changed)
	require.Equal(t, []string{Redacted}, hr["authorization"])
	require.Equal(t, []string{Redacted, Redacted}, hr["X-Api-Key"])
	require.Equal(t, []string{"t"}, hr["Trace"])
	require.Equal(t, []string{"Bearer abc"}, h["authorization"], "the original is untouched")

	_, err = New(nil, []string{"card..number"})
	require.Error(t, err)
	var none *Redactor
	require.False(t, none.Active())
	p, _ := none.Payload(in)
	require.Equal(t, in, p)
}

// TestPayloadLooksForMaskedKeysFirst: a payload that cannot hold a masked
// key is left alone without walking its JSON; one that can (the key in
// any case, spelled with an escape, under a "*" or a name that is not
// ASCII) is walked and masked.
func TestPayloadLooksForMaskedKeysFirst(t *testing.T) {
	r, err := New(nil, []string{"card.number", "cvc"})
	require.NoError(t, err)
	require.False(t, r.walkAlways)
	for in, want := range map[string]string{
		`{"order":"o-1","note":"number cvc"}`:         `{"order":"o-1","note":"number cvc"}`,
		`{"CARD":{"Number":"4111"}}`:                  `{"CARD":{"Number":"[redacted]"}}`,
		`{"card":{"\u006eumber":"4111"},"x":"\"cvc"}`: `{"card":{"number":"[redacted]"},"x":"\"cvc"}`,
		`{"card":{"number":"4111"}}`:                  `{"card":{"number":"[redacted]"}}`,
		`{"number":"4111","cvc":"737"}`:               `{"number":"4111","cvc":"[redacted]"}`,
	} {
		got, _ := r.Payload([]byte(in))
		require.Equal(t, want, string(got), in)
	}
	// Keys the walk folds to a masked one: "ſ" is an "s", the Kelvin
	// sign a "k".
	fold, err := New(nil, []string{"password", "key"})
	require.NoError(t, err)
	got, _ := fold.Payload([]byte(`{"paſsword":"hunter2","Key":"k1"}`))
	require.Equal(t, `{"paſsword":"[redacted]","Key":"[redacted]"}`, string(got))
	require.False(t, r.mayMask([]byte(`{"order":"o-1","note":"a number"}`)))
	require.True(t, r.mayMask([]byte(`{"note":"number"}`)), "a value spelled like a masked key is walked too")
	require.True(t, r.mayMask([]byte(`{"cvc":1}`)))

	for _, fields := range [][]string{{"card.*"}, {"Émail"}} {
		r, err := New(nil, fields)
		require.NoError(t, err)
		require.True(t, r.walkAlways, "%v", fields)
	}
	r, err = New(nil, []string{"Émail"})
	require.NoError(t, err)
	got, _ = r.Payload([]byte(`{"émail":"ann@example.com"}`))
	require.Equal(t, `{"émail":"[redacted]"}`, string(got))
}

func FuzzRedactorPayload(f *testing.F) {
	r, err := New(nil, []string{"password", "a.*.b"})
	if err != nil {
		f.Fatal(err)
	}
	// Without a "*" last, so that the quick look for masked keys counts.
	quick, err := New(nil, []string{"card.number", "pin", "pass"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`{"password":"x","a":{"q":{"b":[1,{"password":2}]}}}`))
	f.Add([]byte(`[1,"two",{"three":3e10}]`))
	f.Add([]byte(`{"card":{"number":"4111","\u0070in":1},"PIN":[2]}`))
	f.Add([]byte("{\"pa\u017fs\":1,\"x\":{\"pass\":[2]}}"))
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, r := range []*Redactor{r, quick} {
			out, changed := r.Payload(in)
			if changed && !json.Valid(out) {
				t.Fatalf("redacted %q into invalid JSON %q", in, out)
			}
			if !changed && string(out) != string(in) {
				t.Fatalf("unchanged payload differs")
			}
			walked, walkedChanged := r.maskPayload(in)
			if walkedChanged != changed || string(walked) != string(out) {
				t.Fatalf("the quick look for masked keys skipped %q: walking it gives %q", in, walked)
			}
		}
	})
}
