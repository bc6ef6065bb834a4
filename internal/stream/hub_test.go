package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ordertracker/ordertracker/internal/sse/ssetest"
	"github.com/ordertracker/ordertracker/orders"
)

// The tests serve streams from a real HTTP server: over HTTP/1.1, whose
// connections the hub takes over and writes to with a descriptor of its
// own; over HTTP/1.1 on connections that give it none (wrapped by a
// listener), which it writes to with a short deadline instead; and over
// HTTP/1.1 and HTTP/2 with TLS, whose responses stay with net/http. They
// read the streams as a browser does, and feed the hub from an in-memory
// log as the listener would. The engine reads no database: the web side's
// tests run it against PostgreSQL.

var quiet = slog.New(slog.DiscardHandler)

// transports are the ways a stream reaches its client.
var transports = []string{"HTTP/1.1", "HTTP/1.1 without a descriptor", "HTTP/1.1 over TLS", "HTTP/2"}

// testLog is an order log in memory: the events committed so far.
type testLog struct {
	mu     sync.Mutex
	events []orders.Event
	seqs   map[string]int
}

func (l *testLog) commit(token string, status orders.Status) orders.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seqs == nil {
		l.seqs = make(map[string]int)
	}
	l.seqs[token]++
	ev := orders.Event{
		Position: int64(len(l.events) + 1), Token: token, Seq: l.seqs[token], Status: status,
		Actor: orders.ByWorker, At: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), CustomerName: "Ada",
		Items: []orders.Item{{MenuID: "margherita", Name: "Margherita", PriceCents: 950, Quantity: 1}}, TotalCents: 950,
	}
	l.events = append(l.events, ev)
	return ev
}

// after returns the events after position p that match keep.
func (l *testLog) after(p int64, keep func(orders.Event) bool) []orders.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []orders.Event
	for _, ev := range l.events[p:] {
		if keep(ev) {
			out = append(out, ev)
		}
	}
	return out
}

// testServer serves the hub's three kinds of stream from a testLog:
//
//	/all?after=P&owner=O&hops every order after position P, owned by O if given, with hops if asked
//	/reset?head=P             every order after a reset to position P
//	/one/TOKEN?after=S        one order after its sequence number S, or Last-Event-ID (none: its current state)
//	/some?orders=A,B&after=S1.S2
//	/recent?after=P           every order after position P, replayed from the hub's window
//	/recent/TOKEN?after=S     one order after its sequence number S, replayed from the hub's window
//
// beforeReplay, when set, runs in every handler between the subscription
// and the replay.
type testServer struct {
	hub          *Hub
	log          *testLog
	srv          *httptest.Server
	client       *http.Client
	beforeReplay func()
}

func newTestServer(t *testing.T, transport string, opts Options) *testServer {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	ts := &testServer{hub: NewHub(opts), log: &testLog{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /all", func(w http.ResponseWriter, r *http.Request) {
		after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
		sub := AllOrders(after)
		if owner := r.URL.Query().Get("owner"); owner != "" {
			sub = sub.OwnedBy(owner)
		}
		if r.URL.Query().Has("hops") {
			sub = sub.WithHops()
		}
		ts.hub.Serve(w, r, sub, ts.replay(func() []orders.Event {
			return ts.log.after(after, func(orders.Event) bool { return true })
		}))
	})
	mux.HandleFunc("GET /reset", func(w http.ResponseWriter, r *http.Request) {
		head, _ := strconv.ParseInt(r.URL.Query().Get("head"), 10, 64)
		ts.hub.Serve(w, r, AllOrdersReset(head), ts.replay(func() []orders.Event {
			return ts.log.after(head, func(orders.Event) bool { return true })
		}))
	})
	mux.HandleFunc("GET /one/{token}", func(w http.ResponseWriter, r *http.Request) {
		token := r.PathValue("token")
		cursor := r.Header.Get("Last-Event-ID")
		if cursor == "" {
			cursor = r.URL.Query().Get("after")
		}
		after, err := strconv.Atoi(cursor)
		if err != nil {
			after = -1
		}
		ts.hub.Serve(w, r, OneOrder(token, after), ts.replay(func() []orders.Event {
			return latestAnd(ts.log.after(0, func(ev orders.Event) bool { return ev.Token == token }), after)
		}))
	})
	mux.HandleFunc("GET /some", func(w http.ResponseWriter, r *http.Request) {
		tokens := strings.Split(r.URL.Query().Get("orders"), ",")
		cursors := make([]string, len(tokens))
		if v := r.URL.Query().Get("after"); v != "" {
			cursors = strings.Split(v, ".")
		}
		ts.hub.Serve(w, r, SomeOrders(tokens, cursors), ts.replay(func() []orders.Event {
			var all []orders.Event
			for i, token := range tokens {
				after, err := strconv.Atoi(cursors[i])
				if err != nil {
					after = -1
				}
				all = append(all, latestAnd(ts.log.after(0, func(ev orders.Event) bool { return ev.Token == token }), after)...)
			}
			sortByPosition(all)
			return all
		}))
	})
	// The window's routes fail the request when the window does not hold
	// the replay: their tests are about the window.
	mux.HandleFunc("GET /recent", func(w http.ResponseWriter, r *http.Request) {
		after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
		ts.hub.Serve(w, r, AllOrders(after), ts.replayRecent(func() ([]orders.Event, bool) {
			events, _, ok := ts.hub.RecentAfter(after)
			return events, ok
		}))
	})
	mux.HandleFunc("GET /recent/{token}", func(w http.ResponseWriter, r *http.Request) {
		token := r.PathValue("token")
		after, _ := strconv.Atoi(r.URL.Query().Get("after"))
		ts.hub.Serve(w, r, OneOrder(token, after), ts.replayRecent(func() ([]orders.Event, bool) {
			return ts.hub.RecentOrderAfter(token, after)
		}))
	})
	ts.srv = httptest.NewUnstartedServer(mux)
	ts.srv.Config.ErrorLog = slog.NewLogLogger(quiet.Handler(), slog.LevelError)
	switch transport {
	case "HTTP/2":
		ts.srv.EnableHTTP2 = true
		ts.srv.StartTLS()
	case "HTTP/1.1 over TLS":
		ts.srv.StartTLS()
	case "HTTP/1.1 without a descriptor":
		ts.srv.Listener = wrappingListener{ts.srv.Listener}
		ts.srv.Start()
	default:
		ts.srv.Start()
	}
	ts.client = ts.srv.Client()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ts.hub.Drain(ctx, 0)
		ts.srv.Close()
	})
	return ts
}

// A wrappingListener wraps the connections it accepts, as a listener that
// counts or limits them may, in a net.Conn that offers nothing more.
type wrappingListener struct{ net.Listener }

func (l wrappingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return struct{ net.Conn }{c}, nil
}

// latestAnd is an order's part of a replay as the web side reads it: the
// events after the cursor, and at least the latest (with no cursor, the
// latest alone).
func latestAnd(events []orders.Event, after int) []orders.Event {
	if len(events) == 0 {
		return nil
	}
	if after < 0 || after >= events[len(events)-1].Seq {
		return events[len(events)-1:]
	}
	return events[after:]
}

func sortByPosition(events []orders.Event) {
	for i := 1; i < len(events); i++ {
		for j := i; j > 0 && events[j].Position < events[j-1].Position; j-- {
			events[j], events[j-1] = events[j-1], events[j]
		}
	}
}

func (ts *testServer) replay(read func() []orders.Event) Replay {
	return func(context.Context) ([]orders.Event, error) {
		if ts.beforeReplay != nil {
			ts.beforeReplay()
		}
		return read(), nil
	}
}

// replayRecent is replay for the window's routes: it fails the replay
// (the client is told to come back later) when the window does not hold it.
func (ts *testServer) replayRecent(read func() ([]orders.Event, bool)) Replay {
	return func(context.Context) ([]orders.Event, error) {
		if ts.beforeReplay != nil {
			ts.beforeReplay()
		}
		events, ok := read()
		if !ok {
			return nil, errors.New("the window does not hold the replay")
		}
		return events, nil
	}
}

// publish commits an event and hands it to the hub, as the listener does.
func (ts *testServer) publish(token string, status orders.Status) orders.Event {
	ev := ts.log.commit(token, status)
	ev.Noticed = time.Now()
	ts.hub.Publish([]orders.Event{ev})
	return ev
}

// client is one reader of a stream.
type client struct {
	resp *http.Response
	r    *ssetest.Reader
}

func (ts *testServer) open(t *testing.T, path string, header ...string) *client {
	t.Helper()
	return ts.openWith(t, ts.client, path, header...)
}

func (ts *testServer) openWith(t *testing.T, hc *http.Client, path string, header ...string) *client {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, ts.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, want 200", path, resp.Status)
	}
	if got := resp.Header.Get("Content-Type"); got != "text/event-stream" {
		t.Fatalf("GET %s: Content-Type %q", path, got)
	}
	return &client{resp: resp, r: ssetest.NewReader(resp.Body)}
}

// next reads the next event, failing the test if none comes in time.
func (c *client) next(t *testing.T) ssetest.Event {
	t.Helper()
	type result struct {
		ev  ssetest.Event
		err error
	}
	done := make(chan result, 1)
	go func() {
		ev, err := nextEvent(c.r)
		done <- result{ev, err}
	}()
	select {
	case res := <-done:
		if res.err != nil {
			t.Fatalf("read an event: %v", res.err)
		}
		return res.ev
	case <-time.After(10 * time.Second):
		c.resp.Body.Close()
		t.Fatal("no event within 10 s")
	}
	return ssetest.Event{}
}

// nextEvent reads the next event that is not a heartbeat.
func nextEvent(r *ssetest.Reader) (ssetest.Event, error) {
	for {
		ev, err := r.NextEvent()
		if err != nil || ev.Type != HeartbeatEventName {
			return ev, err
		}
	}
}

// end reads to the end of the stream and returns the events on the way.
func (c *client) end(t *testing.T) []ssetest.Event {
	t.Helper()
	var events []ssetest.Event
	done := make(chan error, 1)
	go func() {
		for {
			ev, err := nextEvent(c.r)
			if err != nil {
				done <- err
				return
			}
			events = append(events, ev)
		}
	}()
	select {
	case err := <-done:
		if err != io.EOF {
			t.Fatalf("the stream ended with %v, want a clean end", err)
		}
	case <-time.After(10 * time.Second):
		c.resp.Body.Close()
		t.Fatal("the stream did not end within 10 s")
	}
	return events
}

// update is the part of an event's data the tests check.
type update struct {
	Token    string        `json:"token"`
	Seq      int           `json:"seq"`
	Status   orders.Status `json:"status"`
	Position int64         `json:"position"`
}

func decode(t *testing.T, ev ssetest.Event) update {
	t.Helper()
	if ev.Type != EventName {
		t.Fatalf("event type %q, want %q", ev.Type, EventName)
	}
	var u update
	if err := json.Unmarshal([]byte(ev.Data), &u); err != nil {
		t.Fatalf("event data %q: %v", ev.Data, err)
	}
	return u
}

// waitFor polls cond until it holds, for what cannot be waited on
// otherwise (a counter of the hub's).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestLiveEventsReachEveryStreamOnceInOrder(t *testing.T) {
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t, transport, Options{})
			ts.publish("A", orders.Received)
			ts.publish("B", orders.Received)

			staff := ts.open(t, "/all?after=2")
			one := ts.open(t, "/one/A?after=1")
			some := ts.open(t, "/some?orders=A,B&after=1.1")
			if ts.hub.Streams() != 3 {
				t.Fatalf("open streams: got %d, want 3", ts.hub.Streams())
			}
			want := "HTTP/1.1"
			if transport == "HTTP/2" {
				want = "HTTP/2.0"
			}
			overTLS := transport == "HTTP/2" || strings.HasSuffix(transport, "over TLS")
			if staff.resp.Proto != want || (staff.resp.TLS != nil) != overTLS {
				t.Fatalf("the stream came over %s (TLS: %v), want %s", staff.resp.Proto, staff.resp.TLS != nil, transport)
			}

			ts.publish("B", orders.Cooking)
			ts.publish("A", orders.Cooking)
			ts.publish("A", orders.OutForDelivery)

			for i, want := range []int64{3, 4, 5} {
				ev := staff.next(t)
				if got := decode(t, ev).Position; got != want || ev.LastEventID != strconv.FormatInt(want, 10) {
					t.Errorf("staff event %d: position %d, id %q; want %d", i, got, ev.LastEventID, want)
				}
			}
			for _, want := range []int{2, 3} {
				ev := one.next(t)
				if u := decode(t, ev); u.Token != "A" || u.Seq != want || ev.LastEventID != strconv.Itoa(want) {
					t.Errorf("order event: %s#%d id %q; want A#%d", u.Token, u.Seq, ev.LastEventID, want)
				}
			}
			for _, want := range []struct {
				token string
				seq   int
				id    string
			}{{"B", 2, "1.2"}, {"A", 2, "2.2"}, {"A", 3, "3.2"}} {
				ev := some.next(t)
				if u := decode(t, ev); u.Token != want.token || u.Seq != want.seq || ev.LastEventID != want.id {
					t.Errorf("event of several orders: %s#%d id %q; want %s#%d id %q", u.Token, u.Seq, ev.LastEventID, want.token, want.seq, want.id)
				}
			}
		})
	}
}

func TestResumeSendsEveryEventAfterTheCursorOnce(t *testing.T) {
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t, transport, Options{})
			for _, s := range []orders.Status{orders.Received, orders.Cooking} {
				ts.publish("A", s)
			}
			// An event that commits after the subscription and before the
			// replay reads the log is in both: the stream sends it once.
			var once sync.Once
			ts.beforeReplay = func() { once.Do(func() { ts.publish("A", orders.OutForDelivery) }) }

			c := ts.open(t, "/one/A", "Last-Event-ID", "1")
			ts.publish("A", orders.Delivered)
			var got []int
			for _, ev := range c.end(t) {
				got = append(got, decode(t, ev).Seq)
			}
			if fmt.Sprint(got) != "[2 3 4]" {
				t.Errorf("sequence numbers after cursor 1: got %v, want [2 3 4]", got)
			}
			if c.r.Retry != 2000 {
				t.Errorf("retry: got %d, want 2000", c.r.Retry)
			}
		})
	}
}

func TestAStreamWithoutACursorStartsFromTheCurrentState(t *testing.T) {
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t, transport, Options{})
			ts.publish("A", orders.Received)
			ts.publish("A", orders.Cooking)
			c := ts.open(t, "/one/A")
			if u := decode(t, c.next(t)); u.Seq != 2 || u.Status != orders.Cooking {
				t.Errorf("first event: %+v, want the current state, seq 2", u)
			}
		})
	}
}

func TestAFinishedOrderEndsItsStreamAndAClientThatSawTheEndGets204(t *testing.T) {
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t, transport, Options{})
			ts.publish("A", orders.Received)
			c := ts.open(t, "/one/A?after=1")
			ts.publish("A", orders.Cancelled)
			if events := c.end(t); len(events) != 1 || decode(t, events[0]).Status != orders.Cancelled {
				t.Fatalf("got %d events before the end, want the cancellation alone", len(events))
			}
			waitFor(t, "the stream is counted out", func() bool { return ts.hub.Streams() == 0 })

			for _, path := range []string{"/one/A?after=2", "/some?orders=A&after=2"} {
				resp, err := ts.client.Get(ts.srv.URL + path)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusNoContent {
					t.Errorf("GET %s after the end: %s, want 204", path, resp.Status)
				}
			}
		})
	}
}

func TestHeartbeatsKeepAnIdleStreamAlive(t *testing.T) {
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t, transport, Options{Heartbeat: 20 * time.Millisecond})
			c := ts.open(t, "/all")
			// The first comes at once, and each says the interval, so that
			// a client knows when silence means a dead connection.
			for range 4 {
				f, err := c.r.Next()
				if err != nil {
					t.Fatal(err)
				}
				if f.IsComment || f.Event != (ssetest.Event{Type: HeartbeatEventName, Data: `{"interval_ms":20}`}) {
					t.Fatalf("got %+v, want a heartbeat event saying the interval, without an id", f)
				}
			}
		})
	}
}

func TestAStreamOfSeveralOrdersReportsUnknownTokensAndEndsWithTheLastOrder(t *testing.T) {
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t, transport, Options{})
			ts.publish("A", orders.Received)
			ts.publish("B", orders.Received)
			c := ts.open(t, "/some?orders=A,X,B&after=1.7.")
			if ev := c.next(t); ev.Type != UnknownEventName || !strings.Contains(ev.Data, `"X"`) || ev.LastEventID != "" {
				t.Fatalf("first event: %+v, want the unknown token reported without an id", ev)
			}
			if ev := c.next(t); decode(t, ev).Token != "B" || ev.LastEventID != "1.7.1" {
				t.Fatalf("second event: %+v, want B's current state with id 1.7.1", ev)
			}
			ts.publish("A", orders.Cancelled)
			ts.publish("B", orders.Cancelled)
			var ids []string
			for _, ev := range c.end(t) {
				ids = append(ids, ev.LastEventID)
			}
			if fmt.Sprint(ids) != "[2.7.1 2.7.2]" {
				t.Errorf("ids of the last events: got %v, want [2.7.1 2.7.2]", ids)
			}
		})
	}
}

func TestStreamsPastTheCapAreToldToComeBackLater(t *testing.T) {
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t, transport, Options{MaxStreams: 1})
			ts.open(t, "/all")
			c := ts.open(t, "/all")
			if _, err := c.r.Next(); err != nil {
				t.Fatal(err)
			}
			if c.r.Retry != 30000 {
				t.Errorf("retry: got %d, want 30000", c.r.Retry)
			}
			c.end(t)
		})
	}
}

// slowClient is a client whose connection takes little before it stops
// reading: its socket's receive buffer is small on HTTP/1.1, its flow
// control window small on HTTP/2.
func slowClient(ts *testServer) *http.Client {
	tr := ts.client.Transport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
	}}).DialContext
	tr.HTTP2 = &http.HTTP2Config{MaxReceiveBufferPerStream: 64 << 10, MaxReceiveBufferPerConnection: 64 << 10}
	return &http.Client{Transport: tr}
}

func TestAClientThatStopsReadingIsDroppedAndSlowsNobody(t *testing.T) {
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t, transport, Options{Buffer: 4})
			slow := ts.openWith(t, slowClient(ts), "/all")
			healthy := ts.open(t, "/all")
			// Big events fill the slow client's buffers sooner; the healthy
			// client reads each one before the next is published, so only
			// the slow one can fall behind.
			big := strings.Repeat("x", 16<<10)
			for i := 0; ; i++ {
				ev := ts.log.commit("A", orders.Received)
				ev.CustomerName = big
				ts.hub.Publish([]orders.Event{ev})
				if got := decode(t, healthy.next(t)).Position; got != ev.Position {
					t.Fatalf("the healthy client got position %d, want %d", got, ev.Position)
				}
				if testutil.ToFloat64(ts.hub.metrics.dropped) == 1 {
					break
				}
				if i == 100_000 {
					t.Fatal("the slow client was never dropped")
				}
			}
			// Dropped means the response ends: its client reconnects and
			// replays from its last event.
			done := make(chan struct{})
			go func() {
				io.Copy(io.Discard, slow.resp.Body)
				close(done)
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("the dropped stream did not end")
			}
			waitFor(t, "the dropped stream is counted out", func() bool { return ts.hub.Streams() == 1 })
		})
	}
}

func TestDrainEndsEveryStreamCleanlyAndTurnsNewOnesAway(t *testing.T) {
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t, transport, Options{Retry: 100 * time.Millisecond})
			ts.publish("A", orders.Received)
			// More streams than shards, of every kind, so that some shard
			// spreads the ends of two or more.
			var clients []*client
			for len(clients) <= 2*len(ts.hub.shards) {
				clients = append(clients, ts.open(t, "/all"), ts.open(t, "/one/A"), ts.open(t, "/some?orders=A"))
			}
			for _, c := range clients {
				c.next(t)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			const over = 50 * time.Millisecond
			start := time.Now()
			ts.hub.Drain(ctx, over)
			took := time.Since(start)
			if ts.hub.Streams() != 0 {
				t.Fatalf("Drain returned with %d streams open", ts.hub.Streams())
			}
			if took < over/2 {
				t.Errorf("the drain took %v; with two streams or more a shard, the last ends at least halfway into %v", took, over)
			}
			for _, c := range clients {
				if events := c.end(t); len(events) != 0 {
					t.Errorf("got %d events after the drain began", len(events))
				}
				if c.r.Retry < 50 || c.r.Retry > 200 {
					t.Errorf("retry told at the end: %d ms, want from half the retry delay to it plus the drain time", c.r.Retry)
				}
			}
			late := ts.open(t, "/all")
			late.end(t)
			if late.r.Retry < 0 || late.r.Retry > 250 {
				t.Errorf("a stream opened during the drain was told retry %d, want a short one", late.r.Retry)
			}
		})
	}
}

func TestOneClientCannotTakeEveryStream(t *testing.T) {
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t, transport, Options{MaxStreamsPerClient: 2, ClientKey: func(r *http.Request) string {
				return r.Header.Get("X-Test-Client")
			}})
			for _, token := range []string{"A", "B", "C"} {
				ts.publish(token, orders.Received)
			}
			first := ts.open(t, "/all", "X-Test-Client", "greedy")
			ts.open(t, "/some?orders=A,B,C", "X-Test-Client", "greedy") // several orders count once
			refused := ts.open(t, "/all", "X-Test-Client", "greedy")
			refused.end(t)
			if refused.r.Retry != 30000 {
				t.Errorf("the greedy client's third stream: retry %d, want 30000", refused.r.Retry)
			}
			if got := testutil.ToFloat64(ts.hub.metrics.refused.WithLabelValues("client")); got != 1 {
				t.Errorf("refused for its client: %v, want 1", got)
			}
			// Another client is served at once.
			if u := decode(t, ts.open(t, "/one/A", "X-Test-Client", "another").next(t)); u.Token != "A" {
				t.Errorf("another client's stream got %+v", u)
			}
			// A stream that ends gives its place back.
			first.resp.Body.Close()
			waitFor(t, "the closed stream is counted out", func() bool { return ts.hub.Streams() == 2 })
			if u := decode(t, ts.open(t, "/one/B", "X-Test-Client", "greedy").next(t)); u.Token != "B" {
				t.Errorf("the greedy client's stream after one closed got %+v", u)
			}
		})
	}
}

func TestAClientTooFarBehindIsToldToResetAndGoesOnFromTheHead(t *testing.T) {
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t, transport, Options{})
			for range 5 {
				ts.publish("A", orders.Received)
			}
			c := ts.open(t, "/reset?head=5")
			if ev := c.next(t); ev.Type != ResetEventName || ev.LastEventID != "5" {
				t.Fatalf("first event: %+v, want a reset with id 5", ev)
			}
			ts.publish("B", orders.Received)
			if ev := c.next(t); decode(t, ev).Position != 6 {
				t.Fatalf("after the reset: %+v, want position 6", ev)
			}
		})
	}
}

func TestEndOwnerEndsThatOwnersStreamsAndNoOthers(t *testing.T) {
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t, transport, Options{})
			ts.publish("A", orders.Received)
			ada := []*client{ts.open(t, "/all?owner=ada"), ts.open(t, "/all?owner=ada")}
			bob, nobody := ts.open(t, "/all?owner=bob"), ts.open(t, "/all")
			for _, c := range append(ada, bob, nobody) {
				c.next(t)
			}
			owners := ts.hub.Owners()
			slices.Sort(owners)
			if want := []string{"ada", "bob"}; !slices.Equal(owners, want) {
				t.Fatalf("Owners() = %q, want %q", owners, want)
			}

			ts.hub.EndOwner("ada")
			for _, c := range ada {
				if events := c.end(t); len(events) != 0 {
					t.Errorf("got %d events after EndOwner, want the stream to end at once", len(events))
				}
			}
			ts.publish("A", orders.Cooking)
			for _, c := range []*client{bob, nobody} {
				if got := decode(t, c.next(t)); got.Status != orders.Cooking {
					t.Errorf("a stream of another owner got %s, want cooking", got.Status)
				}
			}
			waitFor(t, "only bob owns a stream", func() bool { return slices.Equal(ts.hub.Owners(), []string{"bob"}) })
		})
	}
}

func TestResumeFromTheWindowSendsEveryEventAfterTheCursorOnce(t *testing.T) {
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t, transport, Options{Window: 100})
			ts.hub.PublishFrom(0, nil)
			for _, s := range []orders.Status{orders.Received, orders.Cooking} {
				ts.publish("A", s)
			}
			// An event published after the subscription and before the
			// replay reads the window is in both: the stream sends it once.
			var once sync.Once
			ts.beforeReplay = func() { once.Do(func() { ts.publish("A", orders.OutForDelivery) }) }
			one := ts.open(t, "/recent/A?after=1")
			all := ts.open(t, "/recent?after=1")
			ts.publish("A", orders.Delivered)

			var got []int
			for _, ev := range one.end(t) {
				got = append(got, decode(t, ev).Seq)
			}
			if fmt.Sprint(got) != "[2 3 4]" {
				t.Errorf("the order's stream after sequence number 1: got %v, want [2 3 4]", got)
			}
			var positions []string
			for range 3 {
				positions = append(positions, all.next(t).LastEventID)
			}
			if fmt.Sprint(positions) != "[2 3 4]" {
				t.Errorf("the stream of all orders after position 1: got %v, want [2 3 4]", positions)
			}
		})
	}
}

// TestResumesFromTheWindowWhilePublishingLoseNothing opens streams of all
// orders from the window, each from a cursor a little behind, while events
// are published as fast as the hub takes them: every stream gets every
// event after its cursor, once and in order, whichever way each reached it
// (the window, the batches held while it replayed, or live).
func TestResumesFromTheWindowWhilePublishingLoseNothing(t *testing.T) {
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			const events, streams = 400, 20
			ts := newTestServer(t, transport, Options{Window: events, Buffer: events})
			ts.hub.PublishFrom(0, nil)
			var published atomic.Int64
			for range 10 {
				ts.publish("A", orders.Received)
				published.Add(1)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				for published.Load() < events {
					ts.publish(fmt.Sprint("order-", published.Load()%7), orders.Received)
					published.Add(1)
				}
			}()
			type opened struct {
				c     *client
				after int64
			}
			var all []opened
			for i := range streams {
				after := max(published.Load()-int64(i%5), 0)
				all = append(all, opened{ts.open(t, fmt.Sprintf("/recent?after=%d", after)), after})
			}
			<-done
			for _, o := range all {
				for want := o.after + 1; want <= events; want++ {
					if got := o.c.next(t).LastEventID; got != strconv.FormatInt(want, 10) {
						t.Fatalf("a stream from position %d: got %s, want %d", o.after, got, want)
					}
				}
			}
		})
	}
}

func TestAStreamThatAsksForHopsIsToldWhenEachWriteWasMade(t *testing.T) {
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t, transport, Options{})
			ts.publish("A", orders.Received)
			hops, plain := ts.open(t, "/all?after=1&hops"), ts.open(t, "/all?after=1")
			ev := ts.publish("A", orders.Cooking)

			var u StaffUpdate
			if err := json.Unmarshal([]byte(hops.next(t).Data), &u); err != nil {
				t.Fatal(err)
			}
			if u.Hops == nil || !u.Hops.Heard.Equal(ev.Noticed) {
				t.Fatalf("hops %+v, want when the event was heard, %v", u.Hops, ev.Noticed)
			}
			f, err := hops.r.Next()
			if err != nil {
				t.Fatal(err)
			}
			var hop struct{ Written time.Time }
			if f.Event.Type != HopEventName || f.Event.LastEventID != "2" || json.Unmarshal([]byte(f.Event.Data), &hop) != nil {
				t.Fatalf("after the event: %+v, want a hop event that leaves the last id alone", f)
			}
			if hop.Written.Before(ev.Noticed) {
				t.Errorf("written at %v, before the event was heard at %v", hop.Written, ev.Noticed)
			}

			// A stream that did not ask gets the event and nothing after it.
			if got := plain.next(t); got.LastEventID != "2" {
				t.Fatalf("the plain stream got %+v, want position 2", got)
			}
			ts.publish("A", orders.OutForDelivery)
			if f, err := plain.r.Next(); err != nil || f.Event.Type != EventName || f.Event.LastEventID != "3" {
				t.Errorf("the plain stream's next frame: %+v, %v; want the next event, no hop", f, err)
			}
		})
	}
}
