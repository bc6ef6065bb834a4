package web

import (
	"sync"
	"time"

	"github.com/alexedwards/scs/v2"
	"golang.org/x/sync/singleflight"
)

// A cachedStore is a session store that remembers, for a moment, what it
// read. Staff event streams load their session through it: when a web
// process restarts, every board that was connected to it reconnects at
// once, and without it each reconnect would be a query for the same few
// sessions. Reads of one token at the same moment share one query
// (singleflight), and what was read is kept for ttl, the same time the
// session watch takes to end the streams of a session that ended
// elsewhere (sessionwatch.go): a stream may outlive its session by that
// much either way. Everything else about a session (the board, the moves,
// sign-in and sign-out) reads the store itself.
type cachedStore struct {
	scs.Store
	ttl time.Duration

	reads   singleflight.Group
	mu      sync.Mutex
	entries map[string]cachedSession
}

type cachedSession struct {
	data  []byte
	found bool
	until time.Time
}

// maxCachedSessions bounds the cache: a process serves a few staff
// sessions, and a client that makes up tokens must not grow it without end.
const maxCachedSessions = 10000

func newCachedStore(store scs.Store, ttl time.Duration) *cachedStore {
	return &cachedStore{Store: store, ttl: ttl, entries: make(map[string]cachedSession)}
}

// Find returns the session with the given token, as the store had it at
// most ttl ago.
func (c *cachedStore) Find(token string) ([]byte, bool, error) {
	c.mu.Lock()
	e, ok := c.entries[token]
	c.mu.Unlock()
	if ok && time.Now().Before(e.until) {
		return e.data, e.found, nil
	}
	v, err, _ := c.reads.Do(token, func() (any, error) {
		data, found, err := c.Store.Find(token)
		if err != nil {
			return nil, err
		}
		e := cachedSession{data: data, found: found, until: time.Now().Add(c.ttl)}
		c.remember(token, e)
		return e, nil
	})
	if err != nil {
		return nil, false, err
	}
	e = v.(cachedSession)
	return e.data, e.found, nil
}

func (c *cachedStore) remember(token string, e cachedSession) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= maxCachedSessions {
		now := time.Now()
		for t, old := range c.entries {
			if !now.Before(old.until) {
				delete(c.entries, t)
			}
		}
		if len(c.entries) >= maxCachedSessions {
			clear(c.entries)
		}
	}
	c.entries[token] = e
}

// Commit saves the session and forgets what was cached of it.
func (c *cachedStore) Commit(token string, b []byte, expiry time.Time) error {
	c.forget(token)
	return c.Store.Commit(token, b, expiry)
}

// Delete deletes the session and forgets what was cached of it.
func (c *cachedStore) Delete(token string) error {
	c.forget(token)
	return c.Store.Delete(token)
}

// uncached is the same store for everything but the event streams: it
// reads the store itself, and leaves what it read in the cache; what it
// saves or deletes, the cache forgets. So a session signed out in this
// process, or found ended by the session watch, lets no stream in from the
// cache.
func (c *cachedStore) uncached() scs.Store { return uncachedStore{c} }

type uncachedStore struct{ c *cachedStore }

func (u uncachedStore) Find(token string) ([]byte, bool, error) {
	data, found, err := u.c.Store.Find(token)
	if err == nil {
		u.c.remember(token, cachedSession{data: data, found: found, until: time.Now().Add(u.c.ttl)})
	}
	return data, found, err
}

func (u uncachedStore) Commit(token string, b []byte, expiry time.Time) error {
	return u.c.Commit(token, b, expiry)
}

func (u uncachedStore) Delete(token string) error { return u.c.Delete(token) }

func (c *cachedStore) forget(token string) {
	c.mu.Lock()
	delete(c.entries, token)
	c.mu.Unlock()
}
