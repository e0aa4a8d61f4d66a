package auth

import (
	"fmt"
	"strings"
)

// Role is what an operator may do. Each role may do everything the roles
// below it may.
type Role int

const (
	// NoRole may do nothing: an unknown or signed-out caller.
	NoRole Role = iota
	// Viewer reads pages and the API; payloads are hidden from viewers when
	// jetwatch runs with --hide-payloads.
	Viewer
	// Operator also redelivers, edits and discards dead letters, runs bulk
	// jobs and silences alerts.
	Operator
	// Admin also manages API tokens.
	Admin
)

// Roles lists the roles an operator can be given, lowest first.
var Roles = []Role{Viewer, Operator, Admin}

func (r Role) String() string {
	switch r {
	case Viewer:
		return "viewer"
	case Operator:
		return "operator"
	case Admin:
		return "admin"
	}
	return "none"
}

// Allows reports whether r may do what needs role need.
func (r Role) Allows(need Role) bool { return r >= need && r > NoRole }

// ParseRole reads "viewer", "operator" or "admin".
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if strings.EqualFold(strings.TrimSpace(s), r.String()) {
			return r, nil
		}
	}
	return NoRole, fmt.Errorf("unknown role %q: use viewer, operator or admin", s)
}

// Principal is who made a request, and how jetwatch knows.
type Principal struct {
	// Name is the user, token or proxy-supplied name.
	Name string
	Role Role
	// Method is how the caller was identified: "password" (a session
	// from the sign-in page), "token", "proxy", or "none" when jetwatch
	// runs without authentication on loopback.
	Method string
}

// Actor is how the principal is named in the audit log and on dead-letter
// actions: "alice", "token:ci-bot", "proxy:bob".
func (p Principal) Actor() string {
	switch p.Method {
	case "token", "proxy":
		return p.Method + ":" + p.Name
	}
	return p.Name
}
