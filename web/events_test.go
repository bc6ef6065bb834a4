package web

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/ordertracker/ordertracker/internal/sse/ssetest"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordertracker/ordertracker/internal/pgtest"
	"github.com/ordertracker/ordertracker/internal/stream"
	"github.com/ordertracker/ordertracker/orders"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// liveApp is a store, a listener and a hub wired as in the real process,
// with the two stream handlers served over real HTTP.
type liveApp struct {
	fixtures
	hub      *stream.Hub
	listener *orders.Listener
	server   *httptest.Server
	// published counts the events the listener has handed to the hub.
	published atomic.Int64
}

type appOptions struct {
	// window is the hub's replay window (stream.Options.Window); zero
	// reads every replay from the log.
	window int
	// before runs before the app starts, on its database: what happened
	// before this process, whose latest events start its window.
	before       func(fixtures)
	maxStreams   int
	heartbeat    time.Duration
	listenConfig func(*pgx.ConnConfig)
	wrap         func(Store) Store
}

func newLiveApp(t *testing.T, opts appOptions) *liveApp {
	t.Helper()
	pool := pgtest.NewPool(t)
	a := &liveApp{
		fixtures: fixtures{orders.NewStore(pool, orders.Options{})},
		hub: stream.NewHub(stream.Options{
			MaxStreams: opts.maxStreams, Heartbeat: opts.heartbeat, Retry: 1500 * time.Millisecond,
			Window: opts.window, Logger: quiet,
		}),
	}
	// As a web process starts: the listener hands on, and the window
	// covers, every event after the head read before anything is served.
	if opts.before != nil {
		opts.before(a.fixtures)
	}
	head, err := a.store.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var recent []orders.Event
	if opts.window > 0 {
		if recent, err = a.store.Recent(context.Background(), head, opts.window, 0); err != nil {
			t.Fatal(err)
		}
	}
	a.hub.PublishFrom(head, recent)
	config := pool.Config().ConnConfig.Copy()
	if opts.listenConfig != nil {
		opts.listenConfig(config)
	}
	a.listener, _ = runListener(t, config, head, func(events []orders.Event) {
		a.hub.Publish(events)
		a.published.Add(int64(len(events)))
	}, nil)
	var store Store = a.store
	if opts.wrap != nil {
		store = opts.wrap(store)
	}
	r := chi.NewRouter()
	r.Method(http.MethodGet, "/orders/{token}/events", handleOrderEvents(store, a.hub))
	r.Method(http.MethodGet, "/orders/events", handleMultiOrderEvents(store, a.hub))
	r.Method(http.MethodGet, "/staff/events", handleStaffEvents(store, a.hub))
	a.server = httptest.NewServer(r)
	t.Cleanup(func() {
		a.server.CloseClientConnections()
		a.server.Close()
	})
	// Streams handed over from net/http are the hub's to end.
	t.Cleanup(func() { a.hub.Drain(context.Background(), 0) })
	return a
}

// replayWindows are the two places a stream's replay can come from: the
// hub's window of recent events (the size a web process has by default),
// and the log alone. The tests of exactly-once delivery run with both.
var replayWindows = []struct {
	name string
	size int
}{
	{"replayed from the window", 20000},
	{"replayed from the log", 0},
}

// eachWindow runs test once with each of replayWindows, in parallel.
func eachWindow(t *testing.T, test func(t *testing.T, window int)) {
	for _, w := range replayWindows {
		t.Run(w.name, func(t *testing.T) {
			t.Parallel()
			test(t, w.size)
		})
	}
}

// settle waits until the hub has published every event in the log, so that
// what a stream replays next can come from the window.
func (a *liveApp) settle(t *testing.T) {
	t.Helper()
	var n int64
	if err := a.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM order_events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the hub has published every event", func() bool { return a.published.Load() >= n })
}

// checkReplays checks where the streams' replays came from: some from
// memory when the app has a window, else none.
func (a *liveApp) checkReplays(t *testing.T, window int) {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(a.hub.Collectors()...)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	fromMemory := 0.0
	for _, f := range families {
		if f.GetName() != "ordertracker_stream_replays_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "from" && l.GetValue() == "memory" {
					fromMemory += m.GetCounter().GetValue()
				}
			}
		}
	}
	switch {
	case window > 0 && fromMemory == 0:
		t.Error("no replay came from the window: the test proves nothing about it")
	case window == 0 && fromMemory > 0:
		t.Errorf("%v replays came from a window of size 0", fromMemory)
	}
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

// client is one EventSource-like connection, reading in the background and
// parsing as it goes.
type client struct {
	resp  *http.Response
	mu    sync.Mutex
	raw   []byte         // bytes not yet parsed: an unfinished frame
	seen  ssetest.Stream // what the browser has made of the stream so far, but heartbeats
	beats int            // heartbeat events seen
	done  bool           // the server ended the stream
	more  chan struct{}
}

// open connects to path with the given Last-Event-ID ("" for none).
func (a *liveApp) open(t *testing.T, path, lastEventID string) *client {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, a.server.URL+path, nil)
	req.Header.Set("Accept", "text/event-stream")
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := a.server.Client().Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	c := &client{resp: resp, more: make(chan struct{}, 1), seen: ssetest.Stream{Retry: -1}}
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := resp.Body.Read(buf)
			c.mu.Lock()
			c.raw = append(c.raw, buf[:n]...)
			// Our frames end in a blank line of LFs, so everything up to
			// the last one is whole frames, which parse on their own.
			if end := bytes.LastIndex(c.raw, []byte("\n\n")); end >= 0 {
				s := ssetest.Parse(c.raw[:end+2])
				for _, ev := range s.Events {
					if ev.Type == stream.HeartbeatEventName {
						c.beats++
						continue
					}
					c.seen.Events = append(c.seen.Events, ev)
				}
				c.seen.Comments = append(c.seen.Comments, s.Comments...)
				if s.Retry >= 0 {
					c.seen.Retry = s.Retry
				}
				c.raw = append(c.raw[:0], c.raw[end+2:]...)
			}
			if err != nil {
				c.done = true
			}
			c.mu.Unlock()
			select {
			case c.more <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		resp.Body.Close()
	})
	return c
}

func (c *client) close() { c.resp.Body.Close() }

// parsed is what a browser has made of the stream so far, and whether the
// server has ended it.
func (c *client) parsed() (ssetest.Stream, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.seen
	s.Events = slices.Clone(s.Events)
	s.Comments = slices.Clone(s.Comments)
	return s, c.done
}

// heartbeats is how many heartbeat events the stream has brought.
func (c *client) heartbeats() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.beats
}

// waitEvents waits for at least n events and returns all so far.
func (c *client) waitEvents(t *testing.T, n int) []ssetest.Event {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		s, done := c.parsed()
		if len(s.Events) >= n {
			return s.Events
		}
		if done {
			t.Fatalf("the stream ended after %d events, want %d", len(s.Events), n)
		}
		select {
		case <-c.more:
		case <-deadline:
			t.Fatalf("got %d events, want %d", len(s.Events), n)
		}
	}
}

// waitEnd waits for the server to end the stream and returns its events.
func (c *client) waitEnd(t *testing.T) []ssetest.Event {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		s, done := c.parsed()
		if done {
			return s.Events
		}
		select {
		case <-c.more:
		case <-deadline:
			t.Fatalf("the stream did not end after %d events", len(s.Events))
		}
	}
}

// update is the data of an order_update event.
type update struct {
	Token    string        `json:"token"`
	Seq      int           `json:"seq"`
	Status   orders.Status `json:"status"`
	Label    string        `json:"label"`
	At       time.Time     `json:"at"`
	Actor    orders.Actor  `json:"actor"`
	Final    bool          `json:"final"`
	Position int64         `json:"position"`
	Name     string        `json:"name"`
}

func decode(t *testing.T, ev ssetest.Event) update {
	t.Helper()
	if ev.Type != "order_update" {
		t.Fatalf("event type %q, want order_update", ev.Type)
	}
	var u update
	if err := json.Unmarshal([]byte(ev.Data), &u); err != nil {
		t.Fatalf("data %q is not JSON: %v", ev.Data, err)
	}
	return u
}

// seqs lists the ids of events, checking that each id is its data's seq.
func seqs(t *testing.T, events []ssetest.Event) []int {
	t.Helper()
	var out []int
	for _, ev := range events {
		u := decode(t, ev)
		if ev.LastEventID != strconv.Itoa(u.Seq) {
			t.Errorf("event id %q for seq %d", ev.LastEventID, u.Seq)
		}
		out = append(out, u.Seq)
	}
	return out
}

func eventsPath(o orders.Order) string { return "/orders/" + o.Token + "/events" }

func TestOrderStreamHeadersAndSnapshot(t *testing.T) {
	t.Parallel()
	a := newLiveApp(t, appOptions{})
	o := a.create(t, "Ada")
	a.advance(t, o, orders.Received)
	c := a.open(t, eventsPath(o), "")

	if c.resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200", c.resp.StatusCode)
	}
	for header, want := range map[string]string{
		"Content-Type":      "text/event-stream",
		"Cache-Control":     "no-cache",
		"X-Accel-Buffering": "no",
	} {
		if got := c.resp.Header.Get(header); got != want {
			t.Errorf("%s = %q, want %q", header, got, want)
		}
	}
	events := c.waitEvents(t, 1)
	u := decode(t, events[0])
	if events[0].LastEventID != "2" || u.Seq != 2 || u.Status != orders.Cooking || u.Label != "Cooking" || u.Token != o.Token || u.Actor != orders.ByStaff || u.At.IsZero() {
		t.Errorf("snapshot = id %q %+v, want the current state: seq 2, cooking, by staff", events[0].LastEventID, u)
	}
	if u.Position != 0 || u.Name != "" {
		t.Errorf("a customer's event carries position %d and name %q: it must reveal nothing beyond its order", u.Position, u.Name)
	}
	if s, _ := c.parsed(); s.Retry != 1500 {
		t.Errorf("retry = %d, want 1500", s.Retry)
	}

	raw, err := http.Get(a.server.URL + eventsPath(o))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Body.Close()
	start := make([]byte, len("retry: 1500\n\n"))
	if _, err := io.ReadFull(raw.Body, start); err != nil || string(start) != "retry: 1500\n\n" {
		t.Errorf("the stream starts %q (%v), want the retry frame first", start, err)
	}

	a.advance(t, o, orders.Cooking)
	events = c.waitEvents(t, 2)
	if u := decode(t, events[1]); u.Seq != 3 || u.Status != orders.OutForDelivery || u.Label != "Out for delivery" {
		t.Errorf("live event = %+v, want seq 3 out for delivery", u)
	}
}

func TestOrderStreamResumesFromEveryCursor(t *testing.T) {
	t.Parallel()
	eachWindow(t, func(t *testing.T, window int) {
		a := newLiveApp(t, appOptions{window: window})
		o := a.create(t, "Ada")
		a.deliver(t, o, orders.Received) // 4 events: received, cooking, out for delivery, delivered
		a.settle(t)
		for cursor := 0; cursor <= 3; cursor++ {
			for _, how := range []string{"Last-Event-ID", "since"} {
				t.Run(fmt.Sprintf("after %d by %s", cursor, how), func(t *testing.T) {
					var c *client
					if how == "since" {
						c = a.open(t, eventsPath(o)+"?since="+strconv.Itoa(cursor), "")
					} else {
						c = a.open(t, eventsPath(o), strconv.Itoa(cursor))
					}
					got := seqs(t, c.waitEnd(t))
					var want []int
					for s := cursor + 1; s <= 4; s++ {
						want = append(want, s)
					}
					if fmt.Sprint(got) != fmt.Sprint(want) {
						t.Errorf("got seqs %v, want %v, then the end", got, want)
					}
				})
			}
		}
		t.Run("after the terminal event the answer is 204", func(t *testing.T) {
			for _, c := range []*client{a.open(t, eventsPath(o), "4"), a.open(t, eventsPath(o)+"?since=4", "")} {
				if c.resp.StatusCode != http.StatusNoContent {
					t.Errorf("status %d, want 204", c.resp.StatusCode)
				}
			}
		})
		t.Run("Last-Event-ID wins over since", func(t *testing.T) {
			c := a.open(t, eventsPath(o)+"?since=1", "3")
			if got := seqs(t, c.waitEnd(t)); fmt.Sprint(got) != "[4]" {
				t.Errorf("got seqs %v, want [4]", got)
			}
		})
		a.checkReplays(t, window)
	})
}

func TestOrderStreamTreatsABadCursorAsAbsent(t *testing.T) {
	t.Parallel()
	eachWindow(t, func(t *testing.T, window int) {
		a := newLiveApp(t, appOptions{window: window})
		o := a.create(t, "Ada")
		a.advance(t, o, orders.Received)
		a.settle(t)
		for _, cursor := range []string{"abc", "-1", "3", "99999999999999999999999", "1.5", "0x2", " 1"} {
			t.Run(strconv.Quote(cursor), func(t *testing.T) {
				c := a.open(t, eventsPath(o), cursor)
				if c.resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d, want 200", c.resp.StatusCode)
				}
				if got := seqs(t, c.waitEvents(t, 1)); got[0] != 2 {
					t.Errorf("first event seq %d, want the snapshot, 2", got[0])
				}
			})
		}
		a.checkReplays(t, window)
	})
}

func TestOrderStreamOfAnUnknownOrderIs404(t *testing.T) {
	t.Parallel()
	eachWindow(t, func(t *testing.T, window int) {
		a := newLiveApp(t, appOptions{window: window})
		for _, token := range []string{orders.NewToken(), "nope", strings.Repeat("A", 26)} {
			c := a.open(t, "/orders/"+token+"/events", "")
			if c.resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s: status %d, want 404", token, c.resp.StatusCode)
			}
		}
	})
}

func TestOrderStreamEndsAfterTheTerminalEvent(t *testing.T) {
	t.Parallel()
	eachWindow(t, func(t *testing.T, window int) {
		a := newLiveApp(t, appOptions{window: window})
		o := a.create(t, "Ada")
		c := a.open(t, eventsPath(o), "")
		c.waitEvents(t, 1)
		a.deliver(t, o, orders.Received)
		events := c.waitEnd(t)
		if got := seqs(t, events); fmt.Sprint(got) != "[1 2 3 4]" {
			t.Errorf("got seqs %v, want [1 2 3 4]", got)
		}
		if u := decode(t, events[3]); !u.Final || u.Status != orders.Delivered {
			t.Errorf("last event %+v, want final delivered", u)
		}

		cancelled := a.create(t, "Bo")
		c = a.open(t, eventsPath(cancelled), "")
		c.waitEvents(t, 1)
		if _, err := a.store.Cancel(context.Background(), cancelled.Token, orders.ByStaff); err != nil {
			t.Fatal(err)
		}
		if got := seqs(t, c.waitEnd(t)); fmt.Sprint(got) != "[1 2]" {
			t.Errorf("cancelled: got seqs %v, want [1 2]", got)
		}
	})
}

// hookedStore runs before just before the stream reads the log, after it
// has subscribed: the moment where an event can be both in the log and on
// its way through the hub.
type hookedStore struct {
	Store
	before func()
}

func (h hookedStore) Events(ctx context.Context, orderID int64, afterSeq int) ([]orders.Event, error) {
	h.before()
	return h.Store.Events(ctx, orderID, afterSeq)
}

func (h hookedStore) EventsOf(ctx context.Context, tokens []string, after []*int) ([]orders.Event, error) {
	h.before()
	return h.Store.EventsOf(ctx, tokens, after)
}

func (h hookedStore) EventsAfter(ctx context.Context, position int64, limit int) ([]orders.Event, error) {
	h.before()
	return h.Store.EventsAfter(ctx, position, limit)
}

// TestAnEventBetweenSubscribeAndReplayArrivesOnce commits a change after a
// stream has subscribed and before it reads the log, and waits until the hub
// has handed it to the stream too: the stream must send it exactly once.
func TestAnEventBetweenSubscribeAndReplayArrivesOnce(t *testing.T) {
	t.Parallel()
	var a *liveApp
	var hook func()
	var once sync.Once
	a = newLiveApp(t, appOptions{wrap: func(s Store) Store {
		return hookedStore{Store: s, before: func() { once.Do(hook) }}
	}})
	// moveDuringReplay arms the hook to move o on from status from, and to
	// wait until the hub has published the move.
	moveDuringReplay := func(o orders.Order, from orders.Status) {
		once = sync.Once{}
		hook = func() {
			published := a.published.Load()
			if _, err := a.store.Advance(context.Background(), o.Token, from, orders.ByStaff); err != nil {
				t.Error(err)
				return
			}
			for deadline := time.Now().Add(10 * time.Second); a.published.Load() == published; {
				if time.Now().After(deadline) {
					t.Error("the hub never published the move")
					return
				}
				time.Sleep(time.Millisecond)
			}
		}
	}

	t.Run("on an order's stream", func(t *testing.T) {
		o := a.create(t, "Ada")
		moveDuringReplay(o, orders.Received)
		c := a.open(t, eventsPath(o)+"?since=1", "")
		c.waitEvents(t, 1)
		a.advance(t, o, orders.Cooking)
		if got := seqs(t, c.waitEvents(t, 2)); fmt.Sprint(got) != "[2 3]" {
			t.Errorf("got seqs %v, want [2 3]", got)
		}
	})
	t.Run("on the stream of all orders", func(t *testing.T) {
		o := a.create(t, "Bo")
		head, _ := a.store.Head(context.Background())
		moveDuringReplay(o, orders.Received)
		c := a.open(t, "/staff/events", strconv.FormatInt(head, 10))
		c.waitEvents(t, 1)
		a.advance(t, o, orders.Cooking)
		events := c.waitEvents(t, 2)
		var got []string
		for _, ev := range events {
			u := decode(t, ev)
			got = append(got, string(u.Status))
			if ev.LastEventID != strconv.FormatInt(u.Position, 10) {
				t.Errorf("event id %q for position %d", ev.LastEventID, u.Position)
			}
		}
		if fmt.Sprint(got) != "[cooking out_for_delivery]" {
			t.Errorf("got %v, want [cooking out_for_delivery]", got)
		}
	})
}

// TestManyStreamsGetExactlyTheirOwnEvents watches 100 orders with one
// stream each while 1,000 changes are made at once (250 orders, each
// created and moved to delivery): each stream gets exactly its own order's
// four events, in order, and ends.
func TestManyStreamsGetExactlyTheirOwnEvents(t *testing.T) {
	t.Parallel()
	eachWindow(t, func(t *testing.T, window int) {
		a := newLiveApp(t, appOptions{window: window})
		ctx := context.Background()
		var all []orders.Order
		for i := range 250 {
			all = append(all, a.create(t, fmt.Sprintf("Customer %d", i)))
		}
		watched := all[:100]
		streams := make([]*client, len(watched))
		for i, o := range watched {
			streams[i] = a.open(t, eventsPath(o), "")
			streams[i].waitEvents(t, 1)
		}
		var wg sync.WaitGroup
		for _, o := range all {
			wg.Go(func() {
				for from := orders.Received; from != orders.Delivered; from, _ = from.Next() {
					if _, err := a.store.Advance(ctx, o.Token, from, orders.ByWorker); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		for i, c := range streams {
			events := c.waitEnd(t)
			if got := seqs(t, events); fmt.Sprint(got) != "[1 2 3 4]" {
				t.Errorf("stream %d: got seqs %v, want [1 2 3 4]", i, got)
			}
			for _, ev := range events {
				if u := decode(t, ev); u.Token != watched[i].Token {
					t.Errorf("stream %d got an event of another order", i)
				}
			}
		}
	})
}

// TestStaffStreamSnapshotThenLive starts the stream of all orders without a
// cursor: it gets the newest orders' current states, then every change, with
// positions as ids and nothing repeated.
func TestStaffStreamSnapshotThenLive(t *testing.T) {
	t.Parallel()
	eachWindow(t, func(t *testing.T, window int) {
		a := newLiveApp(t, appOptions{window: window})
		first := a.create(t, "Ada")
		second := a.create(t, "Bo")
		a.advance(t, first, orders.Received)
		c := a.open(t, "/staff/events", "")
		events := c.waitEvents(t, 2)
		got := map[string]orders.Status{}
		var last int64
		for _, ev := range events {
			u := decode(t, ev)
			got[u.Name] = u.Status
			if u.Position <= last {
				t.Errorf("positions not increasing: %d after %d", u.Position, last)
			}
			last = u.Position
		}
		if got["Ada"] != orders.Cooking || got["Bo"] != orders.Received || len(got) != 2 {
			t.Errorf("snapshot = %v, want Ada cooking and Bo received", got)
		}
		third := a.create(t, "Cy")
		a.advance(t, second, orders.Received)
		events = c.waitEvents(t, 4)
		if u := decode(t, events[2]); u.Token != third.Token || u.Status != orders.Received || u.Name != "Cy" {
			t.Errorf("third event = %+v, want Cy's new order", u)
		}
		if u := decode(t, events[3]); u.Token != second.Token || u.Status != orders.Cooking {
			t.Errorf("fourth event = %+v, want Bo cooking", u)
		}
		// Resuming from the second event replays the rest.
		resumed := a.open(t, "/staff/events", events[1].LastEventID)
		// The same events, but for when this process heard of them: an
		// event replayed from the log was never heard.
		replayed := resumed.waitEvents(t, 2)
		for i, want := range events[2:4] {
			if replayed[i].LastEventID != want.LastEventID || decode(t, replayed[i]) != decode(t, want) {
				t.Errorf("resumed event %d: %+v, want %+v", i, replayed[i], want)
			}
		}
		a.checkReplays(t, window)
	})
}

// TestInjectionInDataStaysData puts an SSE frame in a customer's name: it
// must arrive as text inside one event, never as a field or an event of its
// own.
func TestInjectionInDataStaysData(t *testing.T) {
	t.Parallel()
	a := newLiveApp(t, appOptions{})
	name := "x\r\nevent: injected\r\nid: 999\r\n\r\ndata: gotcha <script>"
	// Names cannot hold line breaks, so put it in by hand, as a bug or an
	// attacker with database access might.
	o := a.create(t, "placeholder")
	if _, err := a.store.Pool().Exec(context.Background(), `UPDATE orders SET customer_name = $2 WHERE id = $1`, o.ID, name); err != nil {
		t.Fatal(err)
	}
	c := a.open(t, "/staff/events", "")
	c.waitEvents(t, 1)
	a.advance(t, o, orders.Received)
	events := c.waitEvents(t, 2)
	if len(events) != 2 {
		t.Fatalf("got %d events, want 2: %+v", len(events), events)
	}
	for _, ev := range events {
		if u := decode(t, ev); u.Name != name {
			t.Errorf("name arrived as %q, want %q", u.Name, name)
		}
		if strings.Contains(ev.LastEventID, "999") || ev.Type != "order_update" {
			t.Errorf("injected fields took effect: %+v", ev)
		}
	}
}

// TestStreamsLeaveNoGoroutinesBehind opens and closes many streams; the
// goroutine count returns to where it was.
func TestStreamsLeaveNoGoroutinesBehind(t *testing.T) {
	a := newLiveApp(t, appOptions{})
	o := a.create(t, "Ada")
	// One stream first, so that what lives as long as the process (the
	// hang-up watcher) is running before the count is taken.
	warm := a.open(t, eventsPath(o), "")
	warm.waitEvents(t, 1)
	warm.close()
	waitUntil(t, "the first stream is gone", func() bool { return a.hub.Streams() == 0 })
	a.server.Client().CloseIdleConnections()
	before := streamGoroutines()
	var clients []*client
	for range 50 {
		c := a.open(t, eventsPath(o), "")
		c.waitEvents(t, 1)
		clients = append(clients, c)
	}
	staff := a.open(t, "/staff/events", "")
	staff.waitEvents(t, 1)
	clients = append(clients, staff)
	if n := a.hub.Streams(); n != 51 {
		t.Errorf("hub has %d streams, want 51", n)
	}
	for _, c := range clients {
		c.close()
	}
	a.server.Client().CloseIdleConnections()
	waitUntil(t, "the hub forgets the streams", func() bool { return a.hub.Streams() == 0 })
	waitUntil(t, "the streams' goroutines return to their baseline", func() bool { return streamGoroutines() <= before })
}

// TestStreamsSurviveAListenerOutage cuts the process's LISTEN connection
// while streams are open and makes ten changes while it cannot get back: the
// streams stay open with heartbeats and, once it is back, get all ten, in
// order, once.
func TestStreamsSurviveAListenerOutage(t *testing.T) {
	t.Parallel()
	eachWindow(t, func(t *testing.T, window int) {
		var role *pgtest.Role
		a := newLiveApp(t, appOptions{window: window, heartbeat: 20 * time.Millisecond, listenConfig: func(c *pgx.ConnConfig) {
			role = pgtest.NewRole(t, c)
			c.User, c.Password = role.Name, role.Password
		}})
		o := a.create(t, "Ada")
		staff := a.open(t, "/staff/events", "")
		staff.waitEvents(t, 1)
		customer := a.open(t, eventsPath(o), "")
		customer.waitEvents(t, 1)

		role.DenyLogin(t)
		role.Terminate(t)
		waitUntil(t, "the listener notices", func() bool { return !a.listener.Connected() })
		beats := customer.heartbeats()
		a.deliver(t, o, orders.Received) // 3 changes
		for i := range 7 {
			a.create(t, fmt.Sprintf("During the outage %d", i))
		}
		waitUntil(t, "heartbeats keep flowing during the outage", func() bool {
			return customer.heartbeats() >= beats+2
		})
		if a.listener.Connected() {
			t.Fatal("the listener got back in during the outage; the test proves nothing")
		}
		role.AllowLogin(t)

		if got := seqs(t, customer.waitEnd(t)); fmt.Sprint(got) != "[1 2 3 4]" {
			t.Errorf("customer stream: got seqs %v, want [1 2 3 4]", got)
		}
		// One more change after the outage: if the stream sent anything twice,
		// the twelfth event is not this one.
		sentinel := a.create(t, "After the outage")
		events := staff.waitEvents(t, 12)
		if u := decode(t, events[11]); u.Token != sentinel.Token {
			t.Fatalf("staff stream: the twelfth event is %s#%d, want the order made after the outage: an event came twice", u.Token, u.Seq)
		}
		for i := 1; i < len(events); i++ {
			if decode(t, events[i]).Position <= decode(t, events[i-1]).Position {
				t.Errorf("staff stream out of order at %d", i)
			}
		}
	})
}

// TestNewStreamsWhileTheDatabaseIsDownGet200 asks for streams from a
// process whose database is unreachable: EventSource gives up for good on
// anything but a 200 event stream, so that is the answer, with a retry.
func TestNewStreamsWhileTheDatabaseIsDownGet200(t *testing.T) {
	t.Parallel()
	pool, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none?connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	store := orders.NewStore(pool, orders.Options{})
	hub := stream.NewHub(stream.Options{Logger: quiet})
	r := chi.NewRouter()
	r.Method(http.MethodGet, "/orders/{token}/events", handleOrderEvents(store, hub))
	r.Method(http.MethodGet, "/staff/events", handleStaffEvents(store, hub))
	srv := httptest.NewServer(r)
	defer srv.Close()
	for _, path := range []string{"/orders/" + orders.NewToken() + "/events", "/staff/events"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(bufio.NewReader(resp.Body))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Errorf("%s: %d %s, want 200 text/event-stream", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if s := ssetest.Parse(body); s.Retry <= 0 || len(s.Events) != 0 {
			t.Errorf("%s: retry %d and %d events, want a retry and no events", path, s.Retry, len(s.Events))
		}
	}
}

// TestADrainingProcessTurnsStreamsAwayBeforeAnyQuery: while a process
// drains, every client it sends away reconnects, some of them to it again.
// It tells them to come back, as draining, without asking its database
// anything: here a database it cannot reach, which would have made the
// answer "temporarily unavailable".
func TestADrainingProcessTurnsStreamsAwayBeforeAnyQuery(t *testing.T) {
	t.Parallel()
	pool, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none?connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	store := orders.NewStore(pool, orders.Options{})
	hub := stream.NewHub(stream.Options{Logger: quiet})
	hub.Drain(context.Background(), 0)
	r := chi.NewRouter()
	r.Method(http.MethodGet, "/orders/{token}/events", handleOrderEvents(store, hub))
	r.Method(http.MethodGet, "/orders/events", handleMultiOrderEvents(store, hub))
	r.Method(http.MethodGet, "/staff/events", handleStaffEvents(store, hub))
	srv := httptest.NewServer(r)
	defer srv.Close()
	token := orders.NewToken()
	for _, path := range []string{"/orders/" + token + "/events", "/orders/events?orders=" + token, "/staff/events", "/staff/events?after=7"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		s := ssetest.Parse(body)
		if resp.StatusCode != http.StatusOK || s.Retry <= 0 || len(s.Events) != 0 || !slices.Contains(s.Comments, "this server is restarting; reconnect to resume") {
			t.Errorf("%s: %d, retry %d, %d events, comments %q; want 200, a retry, no events, and that the server is restarting", path, resp.StatusCode, s.Retry, len(s.Events), s.Comments)
		}
	}
}

// TestStreamsPastTheCapComeBackLater fills the process to MAX_STREAMS: the
// next stream gets a 200 that asks the browser to retry much later, never
// an error status that would make EventSource give up.
func TestStreamsPastTheCapComeBackLater(t *testing.T) {
	t.Parallel()
	a := newLiveApp(t, appOptions{maxStreams: 2})
	o := a.create(t, "Ada")
	for range 2 {
		a.open(t, eventsPath(o), "").waitEvents(t, 1)
	}
	for _, path := range []string{eventsPath(o), "/staff/events"} {
		c := a.open(t, path, "")
		events := c.waitEnd(t)
		s, _ := c.parsed()
		if c.resp.StatusCode != http.StatusOK || c.resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Errorf("%s: %d %q, want 200 text/event-stream", path, c.resp.StatusCode, c.resp.Header.Get("Content-Type"))
		}
		if len(events) != 0 || s.Retry != 30000 {
			t.Errorf("%s: %d events and retry %d, want none and 30000", path, len(events), s.Retry)
		}
	}
	if got := metricValue(t, a.hub, "ordertracker_streams_refused_total", "busy"); got != 2 {
		t.Errorf("refused %v streams, want 2", got)
	}
}

// metricValue is the value of one of the hub's metrics, with the given
// label value if it has a label, as /metrics would show it.
func metricValue(t *testing.T, hub *stream.Hub, name string, label ...string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(hub.Collectors()...)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if len(label) > 0 && (len(m.GetLabel()) == 0 || m.GetLabel()[0].GetValue() != label[0]) {
				continue
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

// TestAStaffStreamFarBehindIsToldToReset resumes the stream of all orders
// from a cursor more than a thousand events behind (0, as a client might
// send on purpose): the stream replays none of them, tells the board to
// load afresh with a reset whose id is the head, and goes on live.
func TestAStaffStreamFarBehindIsToldToReset(t *testing.T) {
	t.Parallel()
	eachWindow(t, func(t *testing.T, window int) {
		a := newLiveApp(t, appOptions{window: window})
		ctx := context.Background()
		_, err := a.store.Pool().Exec(ctx, `
			INSERT INTO orders (token, customer_name, items, total_cents, status, actor)
			SELECT upper(substr(md5(random()::text), 1, 26)), 'Guest', '[{"id":"margherita","name":"Margherita","price_cents":950,"quantity":1}]'::jsonb, 950, 'received', 'customer'
			FROM generate_series(1, $1)`, maxStaffReplay+1)
		if err != nil {
			t.Fatal(err)
		}
		head, err := a.store.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		waitUntil(t, "the listener has heard of every new order", func() bool { return a.published.Load() >= int64(maxStaffReplay+1) })
		c := a.open(t, "/staff/events", "0")
		events := c.waitEvents(t, 1)
		if events[0].Type != stream.ResetEventName || events[0].LastEventID != strconv.FormatInt(head, 10) {
			t.Fatalf("first event: %s with id %q, want a reset with id %d", events[0].Type, events[0].LastEventID, head)
		}
		o := a.create(t, "After the reset")
		if u := decode(t, c.waitEvents(t, 2)[1]); u.Token != o.Token {
			t.Errorf("the event after the reset is %+v, want the new order", u)
		}
	})
}

// TestAnEventCarriesItsHops follows an order's stream with ?hops: each
// event says when the database logged it and when this process heard of
// it, and a hop event after it says when the hub wrote it, in that order.
func TestAnEventCarriesItsHops(t *testing.T) {
	t.Parallel()
	a := newLiveApp(t, appOptions{})
	o := a.create(t, "Ada")
	c := a.open(t, eventsPath(o)+"?since=1&hops", "")
	a.advance(t, o, orders.Received)
	events := c.waitEvents(t, 2)
	var u stream.OrderUpdate
	if err := json.Unmarshal([]byte(events[0].Data), &u); err != nil {
		t.Fatal(err)
	}
	var hop struct {
		Written time.Time `json:"written"`
	}
	if events[1].Type != stream.HopEventName || json.Unmarshal([]byte(events[1].Data), &hop) != nil {
		t.Fatalf("after the event: %+v, want a hop event", events[1])
	}
	if u.Hops == nil || u.Hops.Logged.IsZero() || u.Hops.Heard.IsZero() || hop.Written.IsZero() {
		t.Fatalf("hops %+v, written %v: want all three", u.Hops, hop.Written)
	}
	if !u.Hops.Logged.Before(u.Hops.Heard) || hop.Written.Before(u.Hops.Heard) {
		t.Errorf("logged %v, heard %v, written %v: want them in that order", u.Hops.Logged, u.Hops.Heard, hop.Written)
	}
}

// TestAProcessThatStartsResumesTheLastOnesClientsFromMemory starts an app
// on a log that another process wrote, as after a restart: the clients of
// the process it replaces resume from its window, seeded from the log's
// latest events, with every event once; and without a window, from the log.
func TestAProcessThatStartsResumesTheLastOnesClientsFromMemory(t *testing.T) {
	t.Parallel()
	eachWindow(t, func(t *testing.T, window int) {
		var ada, bo orders.Order
		a := newLiveApp(t, appOptions{window: window, before: func(f fixtures) {
			ada, bo = f.create(t, "Ada"), f.create(t, "Bo")
			f.advance(t, ada, orders.Received)
			f.advance(t, bo, orders.Received)
			f.advance(t, ada, orders.Cooking)
		}})
		// Ada's client had seen her first event; a board had seen the
		// first three of the log (positions 1 to 3: both orders placed,
		// Ada's cooking).
		order := a.open(t, eventsPath(ada), "1")
		staff := a.open(t, "/staff/events", "3")
		if got := seqs(t, order.waitEvents(t, 2)); fmt.Sprint(got) != "[2 3]" {
			t.Errorf("Ada's stream from 1: got %v, want [2 3]", got)
		}
		var got []string
		for _, ev := range staff.waitEvents(t, 2) {
			u := decode(t, ev)
			got = append(got, u.Name+" "+string(u.Status))
		}
		if fmt.Sprint(got) != "[Bo cooking Ada out_for_delivery]" {
			t.Errorf("the board from position 3: got %v, want Bo cooking, Ada out for delivery", got)
		}
		a.checkReplays(t, window)
	})
}

// A client that has seen more of its order than this process has heard of
// (another process heard first, and this one's listener has yet to catch
// up) has its replay read from the log: the window would replay nothing,
// and a client that has seen the order delivered would never be told that
// it has seen the end.
func TestAClientAheadOfThisProcessIsToldItHasSeenTheEnd(t *testing.T) {
	t.Parallel()
	f := fixtures{orders.NewStore(pgtest.NewPool(t), orders.Options{})}
	o := f.create(t, "Ada")
	f.moveTo(t, o, orders.OutForDelivery)
	// What this process has heard: everything up to now, through its
	// window, and nothing after, as a listener that lags behind.
	ctx := context.Background()
	head, err := f.store.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	recent, err := f.store.Recent(ctx, head, 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	hub := stream.NewHub(stream.Options{Window: 100, Logger: quiet})
	hub.PublishFrom(head, recent)
	t.Cleanup(func() { hub.Drain(context.Background(), 0) })
	f.advance(t, o, orders.OutForDelivery)
	delivered, err := f.store.Get(ctx, o.Token)
	if err != nil || delivered.Status != orders.Delivered {
		t.Fatalf("the order: %+v, %v; want it delivered", delivered, err)
	}

	r := chi.NewRouter()
	r.Method(http.MethodGet, "/orders/{token}/events", handleOrderEvents(f.store, hub))
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/orders/"+o.Token+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Last-Event-ID", strconv.Itoa(delivered.Seq))
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("a client that has seen the order delivered got %s, want 204 No Content", resp.Status)
	}
}
