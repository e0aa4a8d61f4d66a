package auth

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// Proxy identifies operators from headers set by an authenticating proxy
// in front of jetwatch (oauth2-proxy, an OIDC ingress). The headers are
// believed only on connections from Trusted addresses: anyone else could
// send them too.
type Proxy struct {
	// UserHeader names the user, e.g. X-Forwarded-User or X-Forwarded-Email.
	UserHeader string
	// GroupsHeader lists the user's groups, comma separated, e.g.
	// X-Forwarded-Groups.
	GroupsHeader string
	// Trusted are the proxy's addresses.
	Trusted []netip.Prefix
	// GroupRoles maps a group to a role; a user gets the highest role of
	// their groups. The group "*" gives a role to every proxied user.
	GroupRoles map[string]Role
}

// ParseCIDRs reads a comma-separated list of addresses and CIDR prefixes.
func ParseCIDRs(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q is not an address or CIDR prefix (like 10.0.0.0/8)", f)
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q is not an address or CIDR prefix (like 10.0.0.0/8)", f)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// ParseGroupRoles reads "group=role,group=role", e.g.
// "sre=admin,payments=operator,*=viewer".
func ParseGroupRoles(s string) (map[string]Role, error) {
	out := map[string]Role{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		g, r, ok := strings.Cut(f, "=")
		if !ok || strings.TrimSpace(g) == "" {
			return nil, fmt.Errorf("group role %q: want group=role (like sre=admin)", f)
		}
		role, err := ParseRole(r)
		if err != nil {
			return nil, fmt.Errorf("group %q: %w", g, err)
		}
		out[strings.TrimSpace(g)] = role
	}
	return out, nil
}

// Enabled reports whether proxy identification is configured.
func (p *Proxy) Enabled() bool { return p != nil && p.UserHeader != "" }

// Check reports what is missing from a configuration.
func (p *Proxy) Check() error {
	if !p.Enabled() {
		return nil
	}
	if len(p.Trusted) == 0 {
		return errors.New("proxy sign-in needs the proxy's addresses (--trusted-proxies): without them anyone could send the user header")
	}
	if len(p.GroupRoles) == 0 {
		return errors.New("proxy sign-in needs --proxy-roles mapping groups to roles (e.g. sre=admin,*=viewer)")
	}
	return nil
}

// Trusts reports whether a connection from remoteAddr ("ip:port") comes
// from a trusted proxy.
func (p *Proxy) Trusts(remoteAddr string) bool {
	ap, err := netip.ParseAddrPort(remoteAddr)
	var a netip.Addr
	if err == nil {
		a = ap.Addr()
	} else if a, err = netip.ParseAddr(remoteAddr); err != nil {
		return false
	}
	a = a.Unmap()
	for _, t := range p.Trusted {
		if t.Contains(a) {
			return true
		}
	}
	return false
}

// ErrNoRole is the answer for a proxied user none of whose groups has a role.
var ErrNoRole = errors.New("none of your groups has a role in jetwatch: ask an admin to map one with --proxy-roles")

// Identify returns the proxied user of a request from remoteAddr. ok is
// false when the request carries no user header or does not come from a
// trusted proxy; err is set when a trusted proxy names a user without a role.
func (p *Proxy) Identify(remoteAddr string, h http.Header) (pr Principal, ok bool, err error) {
	user := strings.TrimSpace(h.Get(p.UserHeader))
	if user == "" || !p.Trusts(remoteAddr) {
		return Principal{}, false, nil
	}
	role := p.GroupRoles["*"]
	if p.GroupsHeader != "" {
		for _, v := range h.Values(p.GroupsHeader) {
			for _, g := range strings.Split(v, ",") {
				if r := p.GroupRoles[strings.TrimSpace(g)]; r > role {
					role = r
				}
			}
		}
	}
	if role == NoRole {
		return Principal{}, true, ErrNoRole
	}
	return Principal{Name: user, Role: role, Method: "proxy"}, true, nil
}
