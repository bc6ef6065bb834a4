package web

import (
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alexedwards/scs/pgxstore"
	"github.com/alexedwards/scs/v2"

	"github.com/ordertracker/ordertracker/internal/pgtest"
)

// countedSessions counts the reads of a session store.
type countedSessions struct {
	scs.Store
	finds atomic.Int64
}

func (c *countedSessions) Find(token string) ([]byte, bool, error) {
	c.finds.Add(1)
	return c.Store.Find(token)
}

// TestBoardsReconnectingAtOnceReadTheirSessionOnce opens many staff
// streams of one session at the same moment, as the boards of a process
// that restarted reconnect: the session is read from the store once, not
// once a stream. The board itself and the moves still read it every time.
func TestBoardsReconnectingAtOnceReadTheirSessionOnce(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	store := &countedSessions{Store: pgxstore.NewWithCleanupInterval(pool, 0)}
	a := newStaffApp(t, staffOptions{pool: pool, sessions: store, sessionCheck: time.Hour})
	session := a.login(t, call{})

	const boards = 50
	before := store.finds.Load()
	var wg sync.WaitGroup
	for range boards {
		wg.Go(func() {
			resp := a.requestStream(t, session)
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("a board's stream = %d, want 200", resp.StatusCode)
			}
		})
	}
	wg.Wait()
	if got := store.finds.Load() - before; got != 1 {
		t.Errorf("%d boards reconnecting read the session %d times, want once", boards, got)
	}

	before = store.finds.Load()
	for range 3 {
		if r := a.send(t, http.MethodGet, "/staff", call{session: session}); r.status != http.StatusOK {
			t.Fatalf("the board = %d, want 200", r.status)
		}
	}
	if got := store.finds.Load() - before; got != 3 {
		t.Errorf("three loads of the board read the session %d times, want three: only streams read it through the cache", got)
	}
}

// TestASessionSignedOutHereLetsNoStreamInFromTheCache signs out while the
// session's last read is still fresh in the cache: the next stream request
// is refused all the same.
func TestASessionSignedOutHereLetsNoStreamInFromTheCache(t *testing.T) {
	t.Parallel()
	a := newStaffApp(t, staffOptions{sessionCheck: time.Hour})
	session := a.login(t, call{})
	s := a.openStream(t, session)
	if r := a.send(t, http.MethodPost, "/staff/logout", call{form: map[string][]string{}, session: session}); r.status != http.StatusSeeOther {
		t.Fatalf("sign-out = %d, want 303", r.status)
	}
	s.waitEnd(t, "after sign-out")
	a.refusesSession(t, session)
}
