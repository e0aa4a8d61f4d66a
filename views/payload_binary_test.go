package views

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPayloadViewDecodesMsgpackAndCBOR shows MessagePack and CBOR maps
// and arrays as JSON, naming the format, and anything that does not
// decode whole, or claims more than it holds, as hex.
func TestPayloadViewDecodesMsgpackAndCBOR(t *testing.T) {
	t.Parallel()
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for _, tc := range []struct {
		name string
		data []byte
		kind string
		want string // compact JSON
	}{
		{"msgpack map", cat([]byte{0x83, 0xa1, 'a', 0x01, 0xa1, 'b', 0x92, 0xc3, 0xc0, 0xa1, 'c', 0xa1, '<'}),
			"msgpack", `{"a":1,"b":[true,null],"c":"<"}`},
		{"msgpack types", cat([]byte{0x85, 0xa3}, []byte("bin"), []byte{0xc4, 0x02, 0x00, 0xff, 0xa3}, []byte("neg"), []byte{0xd0, 0x80, 0xa3},
			[]byte("u16"), []byte{0xcd, 0x01, 0x00, 0xa1, 'f', 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0x01, 0xe0}),
			"msgpack", `{"bin":{"$bytes":"AP8="},"neg":-128,"u16":256,"f":1.5,"1":-32}`},
		{"msgpack ext in array16", []byte{0xdc, 0x00, 0x01, 0xd4, 0x05, 0x2a}, "msgpack", `[{"$ext":5,"data":"Kg=="}]`},
		{"cbor map", []byte{0xa3, 0x61, 'a', 0x01, 0x61, 'b', 0x82, 0xf5, 0xf6, 0x61, 'c', 0x39, 0x01, 0xf3},
			"cbor", `{"a":1,"b":[true,null],"c":-500}`},
		{"cbor self-described, indefinite, half float, bytes, tag",
			[]byte{0xd9, 0xd9, 0xf7, 0x9f, 0x01, 0xf9, 0x3c, 0x00, 0x42, 0x00, 0xff, 0xc1, 0x1a, 0x5f, 0x5e, 0x10, 0x00, 0xff},
			"cbor", `[1,1,{"$bytes":"AP8="},{"$tag":1,"value":1600000000}]`},
		{"cbor indefinite map", []byte{0xbf, 0x61, 'k', 0x20, 0xff}, "cbor", `{"k":-1}`},
		{"msgpack cut short", []byte{0x83, 0xa1, 'a', 0x01}, "binary", ""},
		{"trailing bytes", []byte{0x81, 0xa1, 'a', 0x01, 0xff}, "binary", ""},
		{"length past the payload", []byte{0xdd, 0xff, 0xff, 0xff, 0xff, 0x01}, "binary", ""},
		{"cbor length past the payload", []byte{0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, "binary", ""},
		{"msgpack nested too deep", bytes.Repeat([]byte{0x91}, 10_000), "binary", ""},
		{"cbor nested too deep", bytes.Repeat([]byte{0x81}, 10_000), "binary", ""},
		{"never-used byte", []byte{0x81, 0xa1, 'a', 0xc1}, "binary", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := NewPayloadView(tc.data)
			require.Equal(t, tc.kind, v.Kind)
			if tc.want == "" {
				require.Contains(t, v.Text, "|", "shown as a hex dump")
				return
			}
			require.True(t, v.Decoded())
			var got, want any
			require.NoError(t, json.Unmarshal([]byte(v.Text), &got), v.Text)
			require.NoError(t, json.Unmarshal([]byte(tc.want), &want))
			require.Equal(t, want, got)
			require.Empty(t, EditText(v), "a decoding is not the payload's text: not offered for editing")
		})
	}
}

// protoStub maps one subject to a type whose payloads are the text "ok".
type protoStub struct{}

func (protoStub) DecodeProto(subject string, data []byte) (string, []byte, bool, error) {
	if subject != "orders.created" {
		return "", nil, false, nil
	}
	if string(data) != "\x0a\x02ok" {
		return "shop.Order", nil, true, errFake
	}
	return "shop.Order", []byte(`{"id":"ok"}`), true, nil
}

var errFake = jsonErr("cannot parse")

type jsonErr string

func (e jsonErr) Error() string { return string(e) }

// TestDecodePayloadAsProtobuf shows a mapped subject's payload as its
// type, and a payload that is not that type as it would be otherwise,
// saying so.
func TestDecodePayloadAsProtobuf(t *testing.T) {
	t.Parallel()
	v := DecodePayload([]byte("\x0a\x02ok"), "orders.created", protoStub{})
	require.Equal(t, "protobuf", v.Kind)
	require.Equal(t, "shop.Order", v.Type)
	require.Equal(t, "{\n  \"id\": \"ok\"\n}", v.Text)

	v = DecodePayload([]byte{0xff, 0x00}, "orders.created", protoStub{})
	require.Equal(t, "binary", v.Kind)
	require.Contains(t, v.Note, "Not a shop.Order as --proto-types maps orders.created: cannot parse.")

	v = DecodePayload([]byte(`{"a":1}`), "orders.other", protoStub{})
	require.Equal(t, "json", v.Kind)
	require.Empty(t, v.Note)
}

// FuzzPayloadView feeds any bytes to the payload view: it never panics,
// a payload decoded from MessagePack or CBOR is valid JSON, and its text
// stays within the two growth bounds.
func FuzzPayloadView(f *testing.F) {
	for _, s := range [][]byte{
		{0x83, 0xa1, 'a', 0x01, 0xa1, 'b', 0x92, 0xc3, 0xc0, 0xa1, 'c', 0xa1, '<'},
		{0xd9, 0xd9, 0xf7, 0x9f, 0x01, 0xf9, 0x3c, 0x00, 0x42, 0x00, 0xff, 0xc1, 0x1a, 0x5f, 0x5e, 0x10, 0x00, 0xff},
		{0xbf, 0x61, 'k', 0x20, 0xff}, {0xdd, 0xff, 0xff, 0xff, 0xff, 0x01}, {0x81, 0xa1, 0x01, 0x3b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		[]byte(`{"a":1}`), {0x00, 0xff},
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v := NewPayloadView(data)
		if !v.Decoded() {
			return
		}
		if v.Note == "" {
			require.True(t, json.Valid([]byte(v.Text)), "%s: %q", v.Kind, v.Text)
		}
		// Decoding to compact JSON and indenting it are each bounded.
		compact := maxPrettyGrowth*len(data) + prettySlack + 64
		require.LessOrEqual(t, len(v.Text), maxPrettyGrowth*compact+prettySlack)
	})
}
