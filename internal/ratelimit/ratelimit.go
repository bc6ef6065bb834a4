// Package ratelimit limits how often each client may try something, such as
// signing in: every key (a client's address) gets a burst of attempts that
// refills at a steady rate, a token bucket from golang.org/x/time/rate.
//
// Counts live in the memory of one process. Several web processes each keep
// their own, so a client may make a burst of attempts at each of them; that
// multiplies the rate by the number of processes but keeps it bounded.
package ratelimit

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// A Limiter keeps one token bucket per key. Its zero value is not usable;
// call New.
type Limiter struct {
	every time.Duration
	burst int

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
	// sweepAt is the number of buckets at which the next Allow forgets the
	// ones that have filled up again, so memory stays bounded by the number
	// of clients seen recently, not ever.
	sweepAt int
}

// minSweep is the fewest buckets worth sweeping.
const minSweep = 1024

// New returns a Limiter that lets each key make burst attempts at once and
// one more every interval after that.
func New(burst int, every time.Duration) *Limiter {
	return &Limiter{every: every, burst: burst, buckets: make(map[string]*rate.Limiter), sweepAt: minSweep}
}

// Allow spends one attempt of key's allowance. It reports whether the
// attempt may go ahead and, when it may not, how long until one may.
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, found := l.buckets[key]
	if !found {
		if len(l.buckets) >= l.sweepAt {
			l.sweep(now)
		}
		b = rate.NewLimiter(rate.Every(l.every), l.burst)
		l.buckets[key] = b
	}
	if b.AllowN(now, 1) {
		return true, 0
	}
	missing := 1 - b.TokensAt(now)
	return false, time.Duration(missing * float64(l.every))
}

// sweep forgets every bucket that is full again: a fresh one would be the
// same. l.mu must be held.
func (l *Limiter) sweep(now time.Time) {
	for key, b := range l.buckets {
		if b.TokensAt(now) >= float64(l.burst) {
			delete(l.buckets, key)
		}
	}
	l.sweepAt = max(minSweep, 2*len(l.buckets))
}

// AddrKey is the key for a client at remoteAddr, an http.Request's
// RemoteAddr: the address the connection came from, which the client cannot
// choose, unlike X-Forwarded-For or any other header. An IPv6 client is keyed
// by its /64, since one subscriber commonly holds a whole /64 and could
// otherwise take a new address for every attempt.
func AddrKey(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is6() {
		return netip.PrefixFrom(addr, 64).Masked().String()
	}
	return addr.String()
}
