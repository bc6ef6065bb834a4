package web

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/ordertracker/ordertracker/internal/accounts"
)

// A memberCache remembers, for ttl, which account each sign-in belongs to,
// for the staff event streams alone, as cachedStore does their sessions:
// boards reconnecting all at once after a restart cost a query per
// sign-in, not per board. A stream may so connect up to ttl after its
// sign-in ended, and the session watch then ends it within a check, which
// reads the accounts afresh; pages and moves never read the cache.
type memberCache struct {
	accounts *accounts.Store
	ttl      time.Duration

	reads   singleflight.Group
	mu      sync.Mutex
	entries map[string]cachedMember
}

type cachedMember struct {
	account accounts.Account
	err     error // nil or accounts.ErrNoSession
	until   time.Time
}

func newMemberCache(a *accounts.Store, ttl time.Duration) *memberCache {
	return &memberCache{accounts: a, ttl: ttl, entries: make(map[string]cachedMember)}
}

// get returns the account of the sign-in id, as the database had it at most
// ttl ago, or accounts.ErrNoSession.
func (c *memberCache) get(ctx context.Context, id string) (accounts.Account, error) {
	c.mu.Lock()
	e, ok := c.entries[id]
	c.mu.Unlock()
	if ok && time.Now().Before(e.until) {
		return e.account, e.err
	}
	v, err, _ := c.reads.Do(id, func() (any, error) {
		a, err := c.accounts.SessionAccount(ctx, id, false)
		if err != nil && err != accounts.ErrNoSession {
			return nil, err
		}
		e := cachedMember{account: a, err: err, until: time.Now().Add(c.ttl)}
		c.mu.Lock()
		if len(c.entries) >= maxCachedSessions {
			clear(c.entries) // a client making up sign-ins must not grow it without end
		}
		c.entries[id] = e
		c.mu.Unlock()
		return e, nil
	})
	if err != nil {
		return accounts.Account{}, err
	}
	e = v.(cachedMember)
	return e.account, e.err
}

// forget drops what is cached of the sign-in id, which has ended.
func (c *memberCache) forget(id string) {
	c.mu.Lock()
	delete(c.entries, id)
	c.mu.Unlock()
}
