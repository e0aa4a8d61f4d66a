package web

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestStaticAssetsAreHashedAndImmutable(t *testing.T) {
	t.Parallel()
	srv, _ := setup(t)
	_, page := get(t, srv, "/")
	for name, contentType := range map[string]string{
		"app.css": "text/css; charset=utf-8", "app.js": "text/javascript; charset=utf-8", "favicon.svg": "image/svg+xml",
	} {
		u := srv.assets.url(name)
		require.Regexp(t, `^/static/[0-9a-f]{16}/`+strings.ReplaceAll(name, ".", `\.`)+`$`, u)
		require.Contains(t, page, `"`+u+`"`, "the page links the hashed URL")
		res, body := get(t, srv, u)
		require.Equal(t, http.StatusOK, res.StatusCode, name)
		require.Equal(t, "public, max-age=31536000, immutable", res.Header.Get("Cache-Control"), name)
		require.Equal(t, contentType, res.Header.Get("Content-Type"), name)
		require.NotEmpty(t, body)

		res, _ = get(t, srv, "/static/0000000000000000/"+name)
		require.Equal(t, http.StatusNotFound, res.StatusCode, "a wrong hash is not served")
		require.NotContains(t, res.Header.Get("Cache-Control"), "immutable", "a 404 is not cached forever")
	}
	res, _ := get(t, srv, "/static/"+strings.Split(srv.assets.url("app.css"), "/")[2]+"/nope.css")
	require.Equal(t, http.StatusNotFound, res.StatusCode)
}

func TestLiveRefreshScript(t *testing.T) {
	t.Parallel()
	srv, _ := setup(t)
	_, page := get(t, srv, "/")
	require.Regexp(t, `<body data-refresh-seconds="10">`, page, "the refresh period is the sample interval")
	_, js := get(t, srv, srv.assets.url("app.js"))
	for _, want := range []string{"data-live", "data-refresh-seconds", "visibilitychange", "document.hidden", "live-status"} {
		require.Contains(t, js, want)
	}
}
