package orders_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordertracker/ordertracker/internal/pgtest"
	"github.com/ordertracker/ordertracker/orders"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// collector gathers what a listener hands on.
type collector struct {
	mu     sync.Mutex
	events []orders.Event
	more   chan struct{}
}

func newCollector() *collector { return &collector{more: make(chan struct{}, 1)} }

func (c *collector) add(events []orders.Event) {
	c.mu.Lock()
	c.events = append(c.events, events...)
	c.mu.Unlock()
	select {
	case c.more <- struct{}{}:
	default:
	}
}

// waitFor waits until at least n events have arrived and returns them all.
func (c *collector) waitFor(t *testing.T, n int) []orders.Event {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		c.mu.Lock()
		got := slices.Clone(c.events)
		c.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-c.more:
		case <-deadline:
			t.Fatalf("got %d events, want %d", len(got), n)
		}
	}
}

// startListener runs a listener on config until the test ends and waits
// until it is connected.
func startListener(t *testing.T, config *pgx.ConnConfig) (*orders.Listener, *collector) {
	t.Helper()
	l := orders.NewListener(config, quiet)
	return l, run(t, l)
}

// run runs l until the test ends, collecting what it hands on, and waits
// until it is connected.
func run(t *testing.T, l *orders.Listener) *collector {
	t.Helper()
	c := newCollector()
	l.Handle(c.add)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	waitUntil(t, "the listener connects", l.Connected)
	return c
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func connConfig(t *testing.T, pool *pgxpool.Pool) *pgx.ConnConfig {
	t.Helper()
	return pool.Config().ConnConfig.Copy()
}

// checkExactly fails unless got holds exactly want's events, in order.
func checkExactly(t *testing.T, got []orders.Event, want []orders.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Position != want[i].Position || got[i].Seq != want[i].Seq || got[i].Token != want[i].Token {
			t.Fatalf("event %d: got position %d (%s seq %d), want position %d (%s seq %d)",
				i, got[i].Position, got[i].Token, got[i].Seq, want[i].Position, want[i].Token, want[i].Seq)
		}
	}
}

func allEvents(t *testing.T, s *orders.Store, after int64) []orders.Event {
	t.Helper()
	events, err := s.EventsAfter(context.Background(), after, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	return events
}

// TestListenerDeliversEveryEventOnceInOrder makes 400 changes from many
// goroutines over 100 orders (each created, then moved three times); the
// listener hands on each exactly once, in position order.
func TestListenerDeliversEveryEventOnceInOrder(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	start, _ := s.Head(ctx)
	_, c := startListener(t, connConfig(t, s.Pool()))

	const ordersN = 100
	var wg sync.WaitGroup
	for range ordersN {
		wg.Go(func() {
			o, err := s.Create(ctx, orders.NewOrder{CustomerName: "Ada", Lines: []orders.Line{{MenuID: "funghi", Quantity: 1}}})
			if err != nil {
				t.Error(err)
				return
			}
			for from := orders.Received; from != orders.Delivered; from, _ = from.Next() {
				if _, err := s.Advance(ctx, o.Token, from, orders.ByStaff); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	want := allEvents(t, s, start)
	if len(want) != ordersN*4 {
		t.Fatalf("the log has %d events, want %d", len(want), ordersN*4)
	}
	checkExactly(t, c.waitFor(t, len(want)), want)
}

// TestPositionsFollowCommitOrder is the case that a cursor over all orders
// must survive: a transaction takes a position and is slow to commit while
// another, later one commits first. A reader that saw the later event and
// moved its cursor past it must still get the earlier one: so positions must
// be handed out in commit order, and the later writer must wait.
func TestPositionsFollowCommitOrder(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	first, second := createOrder(t, s), createOrder(t, s)
	cursor, _ := s.Head(ctx)

	slow, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Rollback(ctx)
	if _, err := slow.Exec(ctx, `UPDATE orders SET status = 'cooking', actor = 'staff' WHERE id = $1`, first.ID); err != nil {
		t.Fatal(err)
	}
	fastDone := make(chan error, 1)
	go func() {
		_, err := s.Advance(ctx, second.Token, orders.Received, orders.ByStaff)
		fastDone <- err
	}()
	// Wait until the fast writer has either committed or is waiting for the
	// slow one.
	waitUntil(t, "the second writer commits or waits", func() bool {
		if len(fastDone) > 0 {
			return true
		}
		return count(t, s.Pool(), `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`) > 0
	})
	// A reader follows the log now, as a stream would, and moves its cursor.
	seen := allEvents(t, s, cursor)
	for _, e := range seen {
		cursor = e.Position
	}
	if _, err := slow.Exec(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	if err := <-fastDone; err != nil {
		t.Fatal(err)
	}
	seen = append(seen, allEvents(t, s, cursor)...)
	var tokens []string
	for _, e := range seen {
		tokens = append(tokens, fmt.Sprintf("%d:%s", e.OrderID, e.Status))
	}
	want := []string{fmt.Sprintf("%d:cooking", first.ID), fmt.Sprintf("%d:cooking", second.ID)}
	if !slices.Equal(tokens, want) {
		t.Fatalf("a reader following positions saw %v, want %v: an event that committed late was skipped", tokens, want)
	}
}

// TestConcurrentWritersNeverLeaveAGapBehindTheCursor has writers that hold
// their transactions open for random times while a reader polls the log by
// cursor, as every stream of all orders does: the reader must see every
// event.
func TestConcurrentWritersNeverLeaveAGapBehindTheCursor(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	var list []orders.Order
	for range 40 {
		list = append(list, createOrder(t, s))
	}
	cursor, _ := s.Head(ctx)
	stop := make(chan struct{})
	var seen []orders.Event
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			select {
			case <-stop:
				seen = append(seen, allEvents(t, s, cursor)...)
				return
			default:
			}
			for _, e := range allEvents(t, s, cursor) {
				seen = append(seen, e)
				cursor = e.Position
			}
		}
	}()
	var wg sync.WaitGroup
	for _, o := range list {
		wg.Go(func() {
			err := pgx.BeginFunc(ctx, s.Pool(), func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, `UPDATE orders SET status = 'cooking', actor = 'worker' WHERE id = $1`, o.ID); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, `SELECT pg_sleep($1)`, rand.Float64()*0.02)
				return err
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	close(stop)
	<-readerDone
	if len(seen) != len(list) {
		t.Fatalf("the reader saw %d of %d events: a cursor over positions skipped some", len(seen), len(list))
	}
}

// TestListenerCatchesUpAfterLosingItsConnection cuts the listener off, makes
// ten changes while it cannot get back in, and lets it back: it must hand on
// all ten, in order, once.
func TestListenerCatchesUpAfterLosingItsConnection(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	role := pgtest.NewRole(t, connConfig(t, s.Pool()))
	config := connConfig(t, s.Pool())
	config.User, config.Password = role.Name, role.Password
	l, c := startListener(t, config)

	before := createOrder(t, s)
	c.waitFor(t, 1)

	role.DenyLogin(t)
	role.Terminate(t)
	waitUntil(t, "the listener notices", func() bool { return !l.Connected() })
	// Ten changes: seven new orders and three moves of the first one.
	for i, from := 0, orders.Received; i < 10; i++ {
		if i%3 != 1 || from == orders.Delivered {
			createOrder(t, s)
			continue
		}
		if _, err := s.Advance(ctx, before.Token, from, orders.ByWorker); err != nil {
			t.Fatal(err)
		}
		from, _ = from.Next()
	}
	if l.Connected() {
		t.Fatal("the listener got back in during the outage; the test proves nothing")
	}
	role.AllowLogin(t)
	want := allEvents(t, s, 0)
	got := c.waitFor(t, len(want))
	checkExactly(t, got, want)
	if l.Reconnects() < 1 {
		t.Errorf("Reconnects() = %d, want at least 1", l.Reconnects())
	}
	// Nothing more arrives: no duplicates trail behind.
	time.Sleep(100 * time.Millisecond)
	checkExactly(t, c.waitFor(t, 0), want)
}

// TestTwoListenersBothHearAChangeMadeElsewhere stands for two web processes:
// a change made over a third connection reaches both.
func TestTwoListenersBothHearAChangeMadeElsewhere(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	_, a := startListener(t, connConfig(t, s.Pool()))
	_, b := startListener(t, connConfig(t, s.Pool()))
	o := createOrder(t, s)
	for name, c := range map[string]*collector{"first": a, "second": b} {
		got := c.waitFor(t, 1)
		if len(got) != 1 || got[0].Token != o.Token || got[0].Status != orders.Received {
			t.Errorf("%s listener got %+v, want the new order's event", name, got)
		}
	}
}

// TestListenerFromAPositionHandsOnWhatCameBeforeItConnected: a listener told
// where to start hands on events committed before its first connection.
func TestListenerFromAPositionHandsOnWhatCameBeforeItConnected(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	from, _ := s.Head(ctx)
	early := createOrder(t, s) // committed before the listener exists
	l := orders.NewListener(connConfig(t, s.Pool()), quiet)
	l.From(from)
	c := run(t, l)
	got := c.waitFor(t, 1)
	if len(got) != 1 || got[0].Token != early.Token {
		t.Errorf("got %+v, want the order created before the listener connected", got)
	}
}
