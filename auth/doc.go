// Package auth decides who an operator is and what they may do: roles,
// the built-in users file, signed session cookies, sign-in lockout, API
// bearer tokens (kept hashed in a JetStream KV bucket) and identities
// handed over by a trusted proxy.
//
// It knows nothing about HTTP routes or pages: web asks it questions
// ("is this password right?", "whose token is this?") and enforces the
// answers. It must never log or return a password, token or hash.
package auth
