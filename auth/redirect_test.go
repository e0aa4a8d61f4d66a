package auth

import (
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLocalRedirectRefusesEveryWayOffSite(t *testing.T) {
	t.Parallel()
	hostile := []string{
		// The hole of issue 11: the tab is dropped by browsers, leaving //evil.example.
		"/\t/evil.example", "/%09/evil.example", "/%2509/evil.example",
		"/\n/evil", "/\r/evil", "/\x00/evil", "/a\x7fb", "/\u0085/evil", "/%C2%85/evil",
		// Browsers read a backslash as a slash.
		`/\evil`, `/\/evil`, `\\evil`, `/%5Cevil`, `/%255Cevil`, `/ok\x`, `/%5C%5Cevil`,
		// Protocol-relative, plainly or percent-encoded (and nested).
		"//evil", "//evil.example/x", "///evil", "/%2F%2Fevil", "/%2Fevil", "%2F%2Fevil", "%2F%2F%2Fevil",
		"/%252F%252Fevil", "/%25252F%25252Fevil", "/%2525252F%2525252Fevil",
		// A scheme or a host.
		"https://evil", "http://evil.example/", "HTTPS://evil", "javascript:alert(1)", "data:text/html,x",
		"mailto:x@evil", "evil.example", "evil.example/x", " /x", " //evil", "https:/evil", "https:evil",
		"//user@evil",
		// Not a path.
		"", "x", "?next=//evil", "#//evil", ".", "..", "../evil",
		// Invalid escapes and UTF-8.
		"/%zz", "/\xff", "/%FF%FE",
		// Back to the sign-in page (a loop).
		"/login", "/login?next=//evil", "/%6Cogin",
		// Very long.
		"/" + strings.Repeat("a", 5000), "/%" + strings.Repeat("25", 3000) + "2F",
	}
	for _, next := range hostile {
		require.Equal(t, "/", LocalRedirect(next), "%q", next)
	}

	// What jetwatch's own links look like survives, encoded names included.
	for _, next := range []string{
		"/", "/dead-letters", "/streams/A?w=1h", "/dead-letters?q=card+declined&status=pending",
		"/streams/" + url.PathEscape("weird?&#%name"), "/streams/ORDERS/consumers/" + url.PathEscape("c%2F1+é"),
		"/dead-letters/42#history", "/logins", "/x@evil", // a path with an @ is still a path here "/streams/%C3%A9t%C3%A9",
	} {
		require.Equal(t, next, LocalRedirect(next), "%q", next)
	}

	// Whatever comes in, what goes out is "/" or a plain local path.
	for _, next := range hostile {
		got := LocalRedirect(next)
		u, err := url.Parse(got)
		require.NoError(t, err)
		require.Empty(t, u.Scheme)
		require.Empty(t, u.Host)
		require.True(t, strings.HasPrefix(got, "/") && !strings.HasPrefix(got, "//"))
	}
}

// FuzzLocalRedirect: whatever next is, the answer is "/" or next itself,
// and a browser can only read it as a path on this server, however many
// times it is decoded.
func FuzzLocalRedirect(f *testing.F) {
	for _, s := range []string{"/", "/dead-letters?q=x", "/%09/evil", `/\evil`, "//evil", "/%252F%252Fevil", "https://evil", "/streams/a%2Fb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, next string) {
		got := LocalRedirect(next)
		if got != "/" && got != next {
			t.Fatalf("LocalRedirect(%q) = %q: neither / nor the input", next, got)
		}
		u, err := url.Parse(got)
		if err != nil || u.Scheme != "" || u.Host != "" {
			t.Fatalf("LocalRedirect(%q) = %q: not a local URL (%v)", next, got, err)
		}
		for form := got; ; {
			if !strings.HasPrefix(form, "/") || strings.HasPrefix(form, "//") || strings.ContainsAny(form, "\\\t\r\n\x00") {
				t.Fatalf("LocalRedirect(%q) = %q, which decodes to %q", next, got, form)
			}
			d, err := url.PathUnescape(form)
			if err != nil || d == form {
				break
			}
			form = d
		}
	})
}
