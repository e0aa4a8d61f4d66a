package web

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestStreamPage(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	seed(t, b)
	res, page := get(t, srv, "/streams/ORDERS")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, []string{"ORDERS"}, byTestID(t, page, "stream-name"))
	require.Equal(t, []string{"1 010"}, byTestID(t, page, "stream-messages"), "in full, grouped")
	require.Equal(t, []string{"orders.>"}, byTestID(t, page, "stream-subjects"))
	require.Equal(t, []string{"7d"}, byTestID(t, page, "max-age"))
	require.Equal(t, []string{"n1"}, byTestID(t, page, "leader"))
	doc := parse(t, page)
	replicas := nodes(doc, "replica-row")
	require.Len(t, replicas, 3)
	require.Equal(t, "warning", attr(replicas[2], "data-level"), "n3 is behind")
	require.Equal(t, []string{"n3", "follower", "no", "yes", "42", "2s ago"}, cells(replicas[2]))

	// Charts over the default hour, with both samples.
	require.Len(t, byTestID(t, page, "chart-messages"), 1)
	require.Len(t, byTestID(t, page, "chart-bytes"), 1)
	require.Empty(t, byTestID(t, page, "chart-empty"))
	windows := nodes(doc, "windows")[0]
	require.Equal(t, []string{"/streams/ORDERS?window=1h", "/streams/ORDERS?window=24h", "/streams/ORDERS?window=7d"}, links(windows))

	consumers := nodes(doc, "consumer-row")
	require.Len(t, consumers, 2)
	require.Equal(t, "shipping", attr(consumers[1], "data-consumer"))
	require.Equal(t, "150", text(nodes(consumers[1], "lag")[0]))
	require.Len(t, nodes(consumers[1], "sparkline"), 1)
	require.Contains(t, text(consumers[1]), "stalled: 150 pending")
	require.Contains(t, byTestID(t, page, "raw-config")[0], `"num_replicas": 3`)
	require.Equal(t, "/streams/ORDERS?fragment=live", liveURL(t, page))

	_, page = get(t, srv, "/streams/ORDERS?window=7d")
	require.Equal(t, "/streams/ORDERS?fragment=live&window=7d", liveURL(t, page), "live refresh keeps the window")
	res, frag := get(t, srv, "/streams/ORDERS?window=7d&fragment=live")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.NotContains(t, frag, "<html")
	require.Len(t, byTestID(t, frag, "consumer-row"), 2)
}

func TestStreamPageLimits(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	seed(t, b)
	_, page := get(t, srv, "/streams/FULL")
	doc := parse(t, page)
	meter := nodes(doc, "usage-msgs")
	require.Len(t, meter, 1)
	require.Equal(t, "meter", meter[0].Data)
	require.Equal(t, "97.0", attr(meter[0], "value"))
	require.Empty(t, nodes(doc, "usage-bytes"), "no bytes limit, no bar")
	require.Equal(t, []string{"new"}, byTestID(t, page, "discard"))
	require.Contains(t, byTestID(t, page, "stream-reasons")[0], "publishes are about to be rejected")
	require.Len(t, byTestID(t, page, "no-cluster"), 1)
	require.Len(t, byTestID(t, page, "no-consumers"), 1)
}

func TestStreamPageErrors(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	seed(t, b)
	res, page := get(t, srv, "/streams/NOPE")
	require.Equal(t, http.StatusNotFound, res.StatusCode)
	nf := byTestID(t, page, "not-found")
	require.Len(t, nf, 1)
	require.Contains(t, nf[0], "jetwatch has not seen stream NOPE; it may have been deleted, or not been sampled yet.")
	require.Contains(t, links(parse(t, page)), "/")

	res, page = get(t, srv, "/streams/ORDERS?window=forever")
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.Contains(t, byTestID(t, page, "error")[0], `history window "forever"`)
}
