package web

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzAPIQuery sends every GET route, pages and API alike, fuzzed path
// parameters and query strings, against one real server setup (NATS,
// SQLite, the desk, audit and alerts). No answer may be a 5xx (the setup
// stays connected, so not even a 503), and the NATS connection must
// survive every request: one bad subject or key once closed it for good.
func FuzzAPIQuery(f *testing.F) {
	srv, d := setupEverything(f)
	var routes []string
	for _, r := range srv.echo.Routes() {
		if r.Method == http.MethodGet {
			routes = append(routes, r.Path)
		}
	}
	slices.Sort(routes)
	routes = slices.Compact(routes)
	require.NotEmpty(f, routes)

	long := strings.Repeat("a", 5000)
	for i := range routes {
		f.Add(uint8(i), "1", "x", "")
	}
	for _, s := range []struct{ a, b, q string }{
		{"9223372036854775808", "billing", "cursor=18446744073709551615&limit=0"},
		{"18446744073709551615", "", "before=9223372036854775808&limit=1001"},
		{"-1", "%2F", "q=" + strings.Repeat("w+", 40) + "&since=1h&until=yesterday"},
		{long, long, "window=106752d&history=9223372036854775807d"},
		{"ORDERS", "billing", "subject=orders.*.x%3E&q=%22%2A%28&status=pending&reason=error"},
		{"0123456789abcdef", "pause", "stream=" + long + "&kind=%00&severity=critical&fragment=live"},
		{"abc", "é", "q=%ff%fe&subject=%00&actor=%0A&action=x&done=redelivered"},
	} {
		for i := range routes {
			f.Add(uint8(i), s.a, s.b, s.q)
		}
	}
	f.Fuzz(func(t *testing.T, route uint8, a, b, query string) {
		path := routes[int(route)%len(routes)]
		params := []string{a, b}
		segments := strings.Split(path, "/")
		for i, seg := range segments {
			if strings.HasPrefix(seg, ":") && len(params) > 0 {
				segments[i], params = url.PathEscape(params[0]), params[1:]
			}
		}
		target := strings.Join(segments, "/") + "?" + query
		u, err := url.ParseRequestURI(target)
		if err != nil || strings.ContainsAny(target, " \t\r\n") {
			return // not a request line an HTTP server would take
		}
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.URL, req.RequestURI = u, target
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		require.Less(t, rec.Code, 500, "%s answered %d: %s", target, rec.Code, clipBody(rec.Body.String()))
		d.connected(t)
	})
}

func clipBody(s string) string {
	if len(s) > 500 {
		return s[:500] + "…"
	}
	return s
}
