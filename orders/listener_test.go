package orders_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordertracker/ordertracker/internal/pgbouncer"
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

// queryCounter is a pgx tracer that counts the statements that contain a
// piece of SQL.
type queryCounter struct {
	sql string
	n   atomic.Int64
}

func (q *queryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if strings.Contains(data.SQL, q.sql) {
		q.n.Add(1)
	}
	return ctx
}

func (q *queryCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// newTracedPool opens a pool on url whose statements containing sql are
// counted.
func newTracedPool(t *testing.T, url, sql string) (*pgxpool.Pool, *queryCounter) {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	counter := &queryCounter{sql: sql}
	cfg.ConnConfig.Tracer = counter
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool, counter
}

func TestListenerHearsItsOwnProbeOnADirectConnection(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	l := orders.NewListener(connConfig(t, s.Pool()), quiet)
	l.Probe(s.Pool(), orders.ProbeOptions{})
	if err := l.Ready(); !errors.Is(err, orders.ErrNotListening) {
		t.Errorf("Ready() before Run = %v, want ErrNotListening", err)
	}
	run(t, l)
	waitUntil(t, "its first probe comes back", func() bool { return l.Ready() == nil })
	if !l.Hears() {
		t.Error("Hears() = false after Ready() = nil")
	}
}

// TestListenerIgnoresOtherListenersProbes: every process probes on the one
// channel, so each listener hears everyone's probes; none of them may be
// taken for news of events and cost a read of the log.
func TestListenerIgnoresOtherListenersProbes(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	config := connConfig(t, s.Pool())
	reads := &queryCounter{sql: "FROM order_events"}
	config.Tracer = reads
	l := orders.NewListener(config, quiet)
	l.Probe(s.Pool(), orders.ProbeOptions{Interval: time.Hour, SafetyNet: time.Hour})
	c := run(t, l)
	waitUntil(t, "its first probe comes back", l.Hears)
	before := reads.n.Load()

	// Another listener's probes, then an event: notifications arrive in
	// the order they were sent, so once the event is handed on, the probes
	// have been handled.
	other := orders.NewListener(connConfig(t, s.Pool()), quiet)
	other.Probe(s.Pool(), orders.ProbeOptions{Interval: 10 * time.Millisecond})
	run(t, other)
	waitUntil(t, "the other listener hears its own probe", other.Hears)
	for i := range 3 {
		if _, err := s.Pool().Exec(context.Background(), `SELECT pg_notify($1, $2)`, orders.Channel, fmt.Sprintf(`{"probe":"someone-else.%d"}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	o := createOrder(t, s)
	if got := c.waitFor(t, 1); len(got) != 1 || got[0].Token != o.Token {
		t.Fatalf("got %+v, want the new order's event alone", got)
	}
	if got := reads.n.Load() - before; got != 1 {
		t.Errorf("the listener read the log %d times for three foreign probes and one event, want once", got)
	}
}

// TestListenerBehindATransactionPoolerSaysSoAndStillDeliversEverything puts
// PgBouncer in transaction mode between the listener and the database, as
// a DATABASE_DIRECT_URL left at a pooled DATABASE_URL would: LISTEN
// succeeds there and hears nothing. The listener must notice, say so once,
// and hand on every event all the same, by reading the log.
func TestListenerBehindATransactionPoolerSaysSoAndStillDeliversEverything(t *testing.T) {
	t.Parallel()
	direct := pgtest.NewDatabase(t)
	probes, sent := newTracedPool(t, direct, "pg_notify")
	s := orders.NewStore(probes, orders.Options{})
	config, err := pgx.ParseConfig(pgbouncer.Start(t, direct))
	if err != nil {
		t.Fatal(err)
	}
	config.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe // as the program chooses behind a pooler
	var logged syncBuffer
	l := orders.NewListener(config, slog.New(slog.NewTextHandler(&logged, nil)))
	// Probes every 100 ms: a listener that seemed to hear now and then
	// would say so, and say it cannot hear again.
	l.Probe(probes, orders.ProbeOptions{Interval: 100 * time.Millisecond, Timeout: 300 * time.Millisecond,
		DeafInterval: 50 * time.Millisecond, Fix: "give it a direct connection"})
	c := run(t, l)
	waitUntil(t, "the listener finds it cannot hear", func() bool { return errors.Is(l.Ready(), orders.ErrDeaf) })
	if err := l.Ready(); !strings.Contains(err.Error(), "give it a direct connection") {
		t.Errorf("Ready() = %v, want the fix in it", err)
	}
	if l.Hears() {
		t.Error("Hears() = true for a listener that cannot hear")
	}

	for range 5 {
		o := createOrder(t, s)
		if _, err := s.Advance(context.Background(), o.Token, orders.Received, orders.ByStaff); err != nil {
			t.Fatal(err)
		}
	}
	want := allEvents(t, s, 0)
	checkExactly(t, c.waitFor(t, len(want)), want)
	// It keeps probing while deaf, and says so once, not at every probe.
	probesThen := sent.n.Load()
	waitUntil(t, "three more probes go unheard", func() bool { return sent.n.Load() >= probesThen+3 })
	if n := strings.Count(logged.String(), "listener cannot hear"); n != 1 {
		t.Errorf("the log says %d times that the listener cannot hear, want once:\n%s", n, logged.String())
	}
	if !errors.Is(l.Ready(), orders.ErrDeaf) {
		t.Errorf("Ready() = %v, want ErrDeaf still", l.Ready())
	}
}

// TestListenerOnAnotherDatabaseHandsOnEverythingByReadingTheLog: LISTEN and
// NOTIFY are per database, so a DATABASE_DIRECT_URL that names another
// database than DATABASE_URL's hears none of the writers' notifications.
// Every event must reach the handlers all the same, each by the safety net.
func TestListenerOnAnotherDatabaseHandsOnEverythingByReadingTheLog(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	elsewhere, err := pgx.ParseConfig(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	l := orders.NewListener(elsewhere, quiet)
	l.Probe(s.Pool(), orders.ProbeOptions{Timeout: 200 * time.Millisecond, DeafInterval: 20 * time.Millisecond})
	c := run(t, l)
	waitUntil(t, "the listener finds it cannot hear", func() bool { return errors.Is(l.Ready(), orders.ErrDeaf) })
	for range 5 {
		createOrder(t, s)
	}
	want := allEvents(t, s, 0)
	checkExactly(t, c.waitFor(t, len(want)), want)
	if got := l.SafetyNetEvents(); got != uint64(len(want)) {
		t.Errorf("SafetyNetEvents() = %d, want %d: every event came by reading the log", got, len(want))
	}
}

// TestListenerMakesAStalledConnectionAnew: a connection that stops
// carrying anything, without closing (a NAT that forgot it, a frozen
// server), hears no probe and answers no ping; the listener must leave it
// for a new one and miss nothing.
func TestListenerMakesAStalledConnectionAnew(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	proxy := newStallingProxy(t, connConfig(t, s.Pool()))
	l := orders.NewListener(proxy.config, quiet)
	l.Probe(s.Pool(), orders.ProbeOptions{Interval: 100 * time.Millisecond, Timeout: 500 * time.Millisecond})
	c := run(t, l)
	waitUntil(t, "the listener hears its probe", l.Hears)

	proxy.stall()
	o := createOrder(t, s) // its notification goes nowhere
	waitUntil(t, "the listener makes a new connection", func() bool { return l.Reconnects() >= 1 })
	if got := c.waitFor(t, 1); len(got) != 1 || got[0].Token != o.Token {
		t.Fatalf("got %+v, want the order created while the connection was stalled", got)
	}
	waitUntil(t, "the listener hears again", l.Hears)
}

// stallingProxy forwards TCP connections to a PostgreSQL server until stall
// is called; from then on, the connections it already carries swallow
// everything without closing. Connections made later are carried again.
type stallingProxy struct {
	config *pgx.ConnConfig // the server's configuration, pointed at the proxy

	mu      sync.Mutex
	stalled []*atomic.Bool // one per connection so far
}

func newStallingProxy(t *testing.T, target *pgx.ConnConfig) *stallingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallingProxy{config: target.Copy()}
	p.config.Host, p.config.Port = "127.0.0.1", uint16(ln.Addr().(*net.TCPAddr).Port)
	server := net.JoinHostPort(target.Host, strconv.Itoa(int(target.Port)))
	var conns sync.WaitGroup
	var open []net.Conn
	var openMu sync.Mutex
	t.Cleanup(func() {
		ln.Close()
		openMu.Lock()
		for _, c := range open {
			c.Close()
		}
		openMu.Unlock()
		conns.Wait()
	})
	conns.Go(func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			backend, err := net.Dial("tcp", server)
			if err != nil {
				client.Close()
				continue
			}
			openMu.Lock()
			open = append(open, client, backend)
			openMu.Unlock()
			stalled := new(atomic.Bool)
			p.mu.Lock()
			p.stalled = append(p.stalled, stalled)
			p.mu.Unlock()
			conns.Go(func() { forward(backend, client, stalled) })
			conns.Go(func() { forward(client, backend, stalled) })
		}
	})
	return p
}

// forward copies from src to dst until either closes, dropping what it
// reads once stalled is set.
func forward(dst, src net.Conn, stalled *atomic.Bool) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		if stalled.Load() {
			continue
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}

// stall makes every connection so far swallow everything.
func (p *stallingProxy) stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.stalled {
		s.Store(true)
	}
}

// syncBuffer is a bytes.Buffer that a logger may write while a test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
