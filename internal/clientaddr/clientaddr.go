// Package clientaddr works out, once per request, the address of the client
// behind it: the connection's peer, or, when that peer is a trusted reverse
// proxy, the address the proxies recorded in X-Forwarded-For. Everything that
// limits or logs "the client" (sign-in attempts, order creation, streams, the
// request log) reads it from the request's context through From or Key.
package clientaddr

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Proxies are the reverse proxies whose X-Forwarded-For is believed. The
// zero value trusts none: every client is its connection's peer, whatever
// headers it sends.
type Proxies struct {
	prefixes []netip.Prefix
}

// ParseProxies reads a comma-separated list of CIDR prefixes, such as
// "10.0.0.0/8, 2001:db8::/32"; a bare address stands for itself alone. An
// empty list trusts no one.
func ParseProxies(list string) (Proxies, error) {
	var p Proxies
	for item := range strings.SplitSeq(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		prefix, err := netip.ParsePrefix(item)
		if err != nil {
			addr, addrErr := netip.ParseAddr(item)
			if addrErr != nil || addr.Zone() != "" {
				return Proxies{}, fmt.Errorf("%q is not a CIDR prefix such as 10.0.0.0/8 or an address", item)
			}
			prefix = netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen())
		}
		if prefix.Addr().Is4In6() {
			// ::ffff:10.0.0.0/104 means 10.0.0.0/8: peers are compared unmapped.
			bits := prefix.Bits() - 96
			if bits < 0 {
				return Proxies{}, fmt.Errorf("%q is wider than all of IPv4 written in IPv6", item)
			}
			prefix = netip.PrefixFrom(prefix.Addr().Unmap(), bits)
		}
		p.prefixes = append(p.prefixes, prefix.Masked())
	}
	return p, nil
}

// Trusts reports whether addr is one of the trusted proxies.
func (p Proxies) Trusts(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, prefix := range p.prefixes {
		if prefix.Contains(addr) {
			return true
		}
	}
	return false
}

// Len is the number of prefixes trusted.
func (p Proxies) Len() int { return len(p.prefixes) }

// Client returns the address of the client whose connection comes from
// peer and whose request carries the X-Forwarded-For field lines
// forwardedFor, in the order received.
//
// A peer that is not a trusted proxy is the client: what it says in headers
// changes nothing, since anyone can send them. A trusted proxy appends the
// address of its own peer to X-Forwarded-For, so the list is read from the
// right: each trusted proxy in it is skipped, and the first address that is
// not one is the client. An entry that is not an address ends the walk at
// the last trusted hop before it, since nothing to its left can be told
// apart from what the client made up; and a list of nothing but trusted
// proxies yields its leftmost.
func (p Proxies) Client(peer netip.Addr, forwardedFor []string) netip.Addr {
	client := peer.Unmap().WithZone("")
	if !p.Trusts(client) {
		return client
	}
	for i := len(forwardedFor) - 1; i >= 0; i-- {
		line := forwardedFor[i]
		for line != "" {
			var entry string
			if j := strings.LastIndexByte(line, ','); j >= 0 {
				line, entry = line[:j], line[j+1:]
			} else {
				line, entry = "", line
			}
			entry = strings.TrimSpace(entry)
			if entry == "" {
				continue // an empty list element, which HTTP says to ignore
			}
			addr, ok := parseEntry(entry)
			if !ok {
				return client
			}
			client = addr
			if !p.Trusts(addr) {
				return client
			}
		}
	}
	return client
}

// parseEntry reads one element of X-Forwarded-For: an address, with or
// without a port ("192.0.2.7", "192.0.2.7:1234", "2001:db8::1",
// "[2001:db8::1]", "[2001:db8::1]:443").
func parseEntry(s string) (netip.Addr, bool) {
	if addr, err := netip.ParseAddr(s); err == nil {
		return addr.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	if inner, ok := strings.CutPrefix(s, "["); ok {
		if inner, ok := strings.CutSuffix(inner, "]"); ok {
			if addr, err := netip.ParseAddr(inner); err == nil && addr.Is6() {
				return addr.Unmap().WithZone(""), true
			}
		}
	}
	return netip.Addr{}, false
}

// PeerOf is the address of a connection's far end, from an
// http.Request's RemoteAddr or a net.Addr's String; the zero Addr when it
// is not an IP address (a Unix socket, say).
func PeerOf(remoteAddr string) netip.Addr {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return addr.Unmap().WithZone("")
}

// ctxKey is the context key of the client's address.
type ctxKey struct{}

// Middleware works out each request's client once, from proxies, and puts
// it in the request's context for From and Key.
func Middleware(proxies Proxies) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			client := proxies.Client(PeerOf(r.RemoteAddr), r.Header.Values("X-Forwarded-For"))
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, client)))
		})
	}
}

// From is the address of r's client, as Middleware worked it out. Without
// Middleware it is the connection's peer. It is the zero Addr when the
// peer is not an IP address.
func From(r *http.Request) netip.Addr {
	if addr, ok := r.Context().Value(ctxKey{}).(netip.Addr); ok {
		return addr
	}
	return PeerOf(r.RemoteAddr)
}

// String is From(r) as text for a log line; r.RemoteAddr when that is not
// an IP address.
func String(r *http.Request) string {
	if addr := From(r); addr.IsValid() {
		return addr.String()
	}
	return r.RemoteAddr
}

// Key is what per-client limits count r under: its client's address (see
// KeyOf), or r.RemoteAddr when that is not an IP address.
func Key(r *http.Request) string {
	if addr := From(r); addr.IsValid() {
		return KeyOf(addr)
	}
	return r.RemoteAddr
}

// KeyOf is what per-client limits count addr under: an IPv4 address is its
// own key, and an IPv6 address is grouped with its /64, since one
// subscriber commonly holds a whole /64 and could otherwise take a new
// address for every attempt.
func KeyOf(addr netip.Addr) string {
	addr = addr.Unmap().WithZone("")
	if addr.Is6() {
		return netip.PrefixFrom(addr, 64).Masked().String()
	}
	return addr.String()
}
