package natsconn

import "strings"

// RedactURL strips user information (user:password@ or token@) from a URL
// or a comma-separated list of URLs, so it can be logged or shown.
//
// It does not parse URLs: a password may hold characters that make a URL
// unparsable, or even a comma that splits the list, and it must not leak
// then either. Everything between a scheme's "://" (or the start) and the
// last "@" before the next "://" is dropped; a list that mixes URLs with
// and without credentials may lose more than the userinfo, never less.
func RedactURL(s string) string {
	pieces := strings.Split(s, "://")
	for i, p := range pieces {
		if at := strings.LastIndex(p, "@"); at >= 0 {
			pieces[i] = p[at+1:]
		}
	}
	return strings.Join(pieces, "://")
}
