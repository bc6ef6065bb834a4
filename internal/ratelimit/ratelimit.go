// Package ratelimit limits how often each client may do something, such as
// signing in or placing an order: every key (a client's address, see
// internal/clientaddr) gets a burst of attempts that refills at a steady
// rate, a token bucket from golang.org/x/time/rate.
//
// Counts live in the memory of one process. Several web processes each keep
// their own, so a client may make a burst of attempts at each of them; that
// multiplies the rate by the number of processes but keeps it bounded.
package ratelimit

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// A Limiter keeps one token bucket per key, for at most MaxKeys keys at
// once. Its zero value is not usable; call New.
type Limiter struct {
	every time.Duration
	burst int

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
	// sweepAt is the number of buckets at which the next new key forgets
	// the ones that have filled up again, so memory follows the number of
	// clients seen recently, not ever. It doubles with what a sweep
	// leaves, so sweeping costs O(1) per key over time.
	sweepAt int
}

// minSweep is the fewest buckets worth sweeping.
const minSweep = 1024

// MaxKeys is the most keys a Limiter holds at once, about 13 MiB of
// buckets. Past it, a new key pushes out an arbitrary other one, which only
// ever gives that client a fresh burst early: a client that can bring
// MaxKeys addresses in one refill time has that many bursts anyway.
const MaxKeys = 1 << 16

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
		for k := range l.buckets {
			if len(l.buckets) < MaxKeys {
				break
			}
			delete(l.buckets, k)
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

// GiveBack returns one attempt to key's allowance, spent by an Allow that
// turned out not to count: a sign-in with the right password, say, which
// must not leave its account less room against guessers. The allowance
// never grows past its burst.
func (l *Limiter) GiveBack(key string) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if b, found := l.buckets[key]; found {
		// A negative reservation adds a token; the bucket caps its tokens at
		// the burst as soon as it next counts them
		// (TestGiveBackNeverGrowsTheBurst holds the library to it).
		b.AllowN(now, -1)
	}
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

// keys is the number of keys held, for tests.
func (l *Limiter) keys() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
