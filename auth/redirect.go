package auth

import (
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxRedirectLength bounds where sign-in may send an operator afterwards:
// jetwatch's own links are far shorter, and a longer value is refused
// rather than carried through forms and logs.
const maxRedirectLength = 2048

// maxRedirectDecodes bounds the percent-decoding of a redirect target: a
// value still changing after that many rounds is refused.
const maxRedirectDecodes = 4

// LocalRedirect returns next when it is a path on this server, else "/".
// It is the one check for where sign-in sends an operator afterwards, so
// that no link to jetwatch's sign-in page can send them to another site.
//
// Browsers drop tabs and newlines from URLs and read a backslash as a
// slash, so "/\t/evil" and "/\evil" both lead to //evil, another host. A
// proxy or a second redirect may decode once more than jetwatch does, so
// every percent-decoded form of next, down to the last one that still
// decodes, must be a plain local path too: one leading '/', not "//" or
// "/\", no backslash, no control character, valid UTF-8. next itself must
// parse as a URL with neither scheme nor host, and must not lead back to
// the sign-in page.
func LocalRedirect(next string) string {
	if next == "" || len(next) > maxRedirectLength {
		return "/"
	}
	if u, err := url.Parse(next); err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return "/"
	}
	form := next
	for round := 0; ; round++ {
		if !plainLocalPath(form) {
			return "/"
		}
		decoded, err := url.PathUnescape(form)
		if err != nil || decoded == form {
			break // nothing left to decode (or not an escape a browser would decode either)
		}
		if round == maxRedirectDecodes {
			return "/"
		}
		form = decoded
	}
	return next
}

// plainLocalPath reports whether p, read as a URL by a browser, can only
// mean a path on the same server.
func plainLocalPath(p string) bool {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsRune(p, '\\') || !utf8.ValidString(p) {
		return false
	}
	if p == "/login" || strings.HasPrefix(p, "/login?") || strings.HasPrefix(p, "/login/") || strings.HasPrefix(p, "/login#") {
		return false
	}
	return strings.IndexFunc(p, unicode.IsControl) < 0
}
