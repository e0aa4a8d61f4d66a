package web

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestConsumerPage(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	seed(t, b)
	res, page := get(t, srv, "/streams/ORDERS/consumers/shipping?window=24h")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, []string{"shipping"}, byTestID(t, page, "consumer-name"))
	require.Equal(t, []string{"150"}, byTestID(t, page, "consumer-pending"))
	require.Equal(t, []string{"3"}, byTestID(t, page, "consumer-ack-pending"))
	require.Equal(t, []string{"1"}, byTestID(t, page, "consumer-redelivered"))
	require.Equal(t, []string{"since 10m ago"}, byTestID(t, page, "stalled-since"))
	require.Contains(t, byTestID(t, page, "consumer-reasons")[0], "nothing delivered for 10m")

	doc := parse(t, page)
	chart := nodes(doc, "chart-pending")
	require.Len(t, chart, 1)
	require.Equal(t, "150", text(nodes(chart[0], "last-s1")[0]))
	require.Equal(t, "3", text(nodes(chart[0], "last-s2")[0]))
	// Two samples 10 s apart, 5 deliveries between them.
	require.Equal(t, "0.5/s", text(nodes(nodes(doc, "chart-rates")[0], "last-s1")[0]))
	require.Equal(t, "/streams/ORDERS/consumers/shipping?fragment=live&window=24h", liveURL(t, page))

	_, page = get(t, srv, "/streams/ORDERS/consumers/billing")
	require.Equal(t, []string{"5"}, byTestID(t, page, "max-deliver"))
	require.Equal(t, []string{"30s"}, byTestID(t, page, "ack-wait"))
	require.Equal(t, []string{"1s, 5s"}, byTestID(t, page, "backoff"))
	require.Equal(t, []string{"1 000"}, byTestID(t, page, "max-ack-pending"))
	require.Equal(t, []string{"orders.created"}, byTestID(t, page, "filter-subjects"))
	require.Equal(t, []string{"pull, durable"}, byTestID(t, page, "consumer-kind"))
	require.Equal(t, []string{"no"}, byTestID(t, page, "paused"))
	require.Contains(t, byTestID(t, page, "raw-config")[0], `"max_deliver": 5`)
	require.Empty(t, byTestID(t, page, "chart-empty"))
}

func TestConsumerPageNotFound(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	seed(t, b)
	res, page := get(t, srv, "/streams/ORDERS/consumers/nope")
	require.Equal(t, http.StatusNotFound, res.StatusCode)
	require.Contains(t, byTestID(t, page, "not-found")[0], "jetwatch has not seen consumer nope on stream ORDERS")

	res, page = get(t, srv, "/streams/GONE/consumers/billing")
	require.Equal(t, http.StatusNotFound, res.StatusCode)
	require.Contains(t, byTestID(t, page, "not-found")[0], "jetwatch has not seen stream GONE", "the unknown part is named")

	res, _ = get(t, srv, "/streams/ORDERS/consumers/billing?window=-1h")
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
}
