package dlq

import (
	"encoding/json"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
)

func TestHeadersJSONIsWhatEncodingJSONMakes(t *testing.T) {
	t.Parallel()
	for _, h := range []nats.Header{
		nil,
		{},
		{"traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}, "Dlq-Stream": {"ORDERS"}},
		{"B": {"1", "2"}, "A": {`quote " and \ backslash`}, "C": nil, "D": {}},
		{"Html": {"<script>&</script>"}, "Ctl": {"tab\tnew\nline\x00"}, "Utf8": {"Müller ✓ \u2028"}, "Bad": {"\xff\xfe"}},
	} {
		want, err := json.Marshal(h)
		require.NoError(t, err)
		if h == nil {
			want = []byte("{}") // stored as an empty object, never null
		}
		require.Equal(t, string(want), string(appendHeadersJSON(nil, h)))
	}
}
