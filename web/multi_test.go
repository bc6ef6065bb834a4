package web

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/ordertracker/ordertracker/internal/sse/ssetest"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ordertracker/ordertracker/orders"
)

func multiPath(list ...orders.Order) string {
	tokens := make([]string, len(list))
	for i, o := range list {
		tokens[i] = o.Token
	}
	return "/orders/events?orders=" + strings.Join(tokens, ",")
}

// multiEvent is an event of the multiplexed stream, read as a client would.
type multiEvent struct {
	id    string
	token string
	seq   int
}

func (e multiEvent) String() string { return fmt.Sprintf("%s#%d@%s", e.token[:4], e.seq, e.id) }

func readMulti(t *testing.T, events []ssetest.Event) []multiEvent {
	t.Helper()
	var out []multiEvent
	for _, ev := range events {
		u := decode(t, ev)
		out = append(out, multiEvent{id: ev.LastEventID, token: u.Token, seq: u.Seq})
	}
	return out
}

func checkMulti(t *testing.T, got []multiEvent, want ...multiEvent) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got events\n  %v\nwant\n  %v", got, want)
	}
}

// checkMultiLive checks live events of several orders, which arrive in the
// order they happened, each with every order's cursor after it as its id.
// The ids are worked out from the id from (tokens give the order of its
// parts) and the events, so want needs none.
func checkMultiLive(t *testing.T, got []multiEvent, tokens []string, from string, want ...multiEvent) {
	t.Helper()
	cursors := strings.Split(from, ".")
	for i := range want {
		cursors[slices.Index(tokens, want[i].token)] = strconv.Itoa(want[i].seq)
		want[i].id = strings.Join(cursors, ".")
	}
	checkMulti(t, got, want...)
}

func TestMultiStreamStartsFromEachOrdersCurrentStateThenGoesLive(t *testing.T) {
	t.Parallel()
	eachWindow(t, func(t *testing.T, window int) {
		a := newLiveApp(t, appOptions{window: window})
		ada, bo := a.create(t, "Ada"), a.create(t, "Bo")
		a.advance(t, ada, orders.Received)
		// The current state is what this process has heard: until it has
		// heard Ada's move, the window's current state of her order is
		// the move before, which the stream would send and then the move.
		a.settle(t)
		c := a.open(t, multiPath(ada, bo), "")
		if c.resp.StatusCode != http.StatusOK || c.resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("%d %s, want 200 text/event-stream", c.resp.StatusCode, c.resp.Header.Get("Content-Type"))
		}
		// The current states first, in the order they happened (Bo's order
		// was placed after Ada's, and Ada's moved on after that); an order not
		// yet sent keeps an empty part in the id, so a reconnect starts it
		// afresh too.
		checkMulti(t, readMulti(t, c.waitEvents(t, 2)),
			multiEvent{".1", bo.Token, 1},
			multiEvent{"2.1", ada.Token, 2},
		)
		a.advance(t, bo, orders.Received)
		a.advance(t, ada, orders.Cooking)
		checkMultiLive(t, readMulti(t, c.waitEvents(t, 4))[2:], []string{ada.Token, bo.Token}, "2.1",
			multiEvent{"2.2", bo.Token, 2},
			multiEvent{"3.2", ada.Token, 3},
		)
		if s, _ := c.parsed(); s.Retry != 1500 {
			t.Errorf("retry = %d, want 1500", s.Retry)
		}
	})
}

func TestMultiStreamResumesEveryOrderFromItsCursor(t *testing.T) {
	t.Parallel()
	eachWindow(t, func(t *testing.T, window int) {
		a := newLiveApp(t, appOptions{window: window})
		ada, bo := a.create(t, "Ada"), a.create(t, "Bo")
		a.deliver(t, ada, orders.Received) // seq 1..4
		a.advance(t, bo, orders.Received)  // seq 1..2
		path := multiPath(ada, bo)
		a.settle(t)

		t.Run("from Last-Event-ID", func(t *testing.T) {
			c := a.open(t, path, "2.1")
			checkMulti(t, readMulti(t, c.waitEvents(t, 3)),
				multiEvent{"3.1", ada.Token, 3},
				multiEvent{"4.1", ada.Token, 4},
				multiEvent{"4.2", bo.Token, 2},
			)
		})
		t.Run("from since", func(t *testing.T) {
			c := a.open(t, path+"&since=3.2", "")
			checkMulti(t, readMulti(t, c.waitEvents(t, 1)), multiEvent{"4.2", ada.Token, 4})
		})
		t.Run("Last-Event-ID wins over since", func(t *testing.T) {
			c := a.open(t, path+"&since=0.0", "4.1")
			checkMulti(t, readMulti(t, c.waitEvents(t, 1)), multiEvent{"4.2", bo.Token, 2})
		})
		t.Run("an empty part starts that order from its current state", func(t *testing.T) {
			c := a.open(t, path, "3.")
			checkMulti(t, readMulti(t, c.waitEvents(t, 2)),
				multiEvent{"4.", ada.Token, 4},
				multiEvent{"4.2", bo.Token, 2},
			)
		})
		t.Run("a cursor past the order's end counts as none", func(t *testing.T) {
			c := a.open(t, path, "4.99")
			checkMulti(t, readMulti(t, c.waitEvents(t, 1)), multiEvent{"4.2", bo.Token, 2})
		})
		t.Run("a client that has seen every order end gets 204", func(t *testing.T) {
			a.deliver(t, bo, orders.Cooking)
			c := a.open(t, path, "4.4")
			if c.resp.StatusCode != http.StatusNoContent {
				t.Errorf("status %d, want 204", c.resp.StatusCode)
			}
		})
		a.checkReplays(t, window)
	})
}

// TestMultiStreamSendsAnEventBetweenSubscribeAndReplayOnce moves one order
// after the stream has subscribed to it and before it reads its log, and
// waits until the hub has handed the move to the stream: it is then both in
// the log and on its way live, and must be sent once.
func TestMultiStreamSendsAnEventBetweenSubscribeAndReplayOnce(t *testing.T) {
	t.Parallel()
	var a *liveApp
	var bo orders.Order
	var once sync.Once
	moveBo := func() {
		published := a.published.Load()
		a.advance(t, bo, orders.Received)
		waitUntil(t, "the hub publishes the move", func() bool { return a.published.Load() > published })
	}
	a = newLiveApp(t, appOptions{wrap: func(s Store) Store {
		return hookedStore{Store: s, before: func() { once.Do(moveBo) }}
	}})
	ada := a.create(t, "Ada")
	bo = a.create(t, "Bo")
	c := a.open(t, multiPath(ada, bo)+"&since=1.1", "")
	c.waitEvents(t, 1)
	a.advance(t, ada, orders.Received)
	a.advance(t, bo, orders.Cooking)
	events := readMulti(t, c.waitEvents(t, 3))
	checkMulti(t, events[:1], multiEvent{"1.2", bo.Token, 2})
	checkMultiLive(t, events[1:], []string{ada.Token, bo.Token}, "1.2",
		multiEvent{"", ada.Token, 2},
		multiEvent{"", bo.Token, 3},
	)
}

func TestMultiStreamTreatsAMalformedCursorAsAbsent(t *testing.T) {
	t.Parallel()
	a := newLiveApp(t, appOptions{})
	ada, bo := a.create(t, "Ada"), a.create(t, "Bo")
	a.advance(t, ada, orders.Received)
	path := multiPath(ada, bo)
	for _, id := range []string{"x", "1", "1.0.0", "-1.0", "1.+0", "1. 0", "1,0", "1..", "99999999999999999999.0", "1.0\x00"} {
		t.Run(fmt.Sprintf("%q", id), func(t *testing.T) {
			// Malformed everywhere: the current states.
			c := a.open(t, path+"&since="+url.QueryEscape(id), "")
			if c.resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200", c.resp.StatusCode)
			}
			checkMulti(t, readMulti(t, c.waitEvents(t, 2)),
				multiEvent{".1", bo.Token, 1},
				multiEvent{"2.1", ada.Token, 2},
			)
			if strings.ContainsRune(id, 0) {
				return // no HTTP client sends NUL in a header
			}
			// A malformed Last-Event-ID falls back to a good since.
			c = a.open(t, path+"&since=1.0", id)
			checkMulti(t, readMulti(t, c.waitEvents(t, 2)),
				multiEvent{"1.1", bo.Token, 1},
				multiEvent{"2.1", ada.Token, 2},
			)
		})
	}
}

func TestMultiStreamReportsUnknownOrdersAndServesTheRest(t *testing.T) {
	t.Parallel()
	eachWindow(t, func(t *testing.T, window int) {
		a := newLiveApp(t, appOptions{window: window})
		ada := a.create(t, "Ada")
		ghost := orders.NewToken()
		c := a.open(t, "/orders/events?orders="+ghost+","+ada.Token+",not-a-token&since=5.1.", "")
		if c.resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, want 200: an unknown order must not make EventSource give up on the others", c.resp.StatusCode)
		}
		a.advance(t, ada, orders.Received)
		events := c.waitEvents(t, 3)
		var unknown []string
		for _, ev := range events[:2] {
			if ev.Type != "order_unknown" || ev.LastEventID != "" {
				t.Fatalf("event %+v, want an order_unknown report without an id", ev)
			}
			var d struct{ Token string }
			if err := json.Unmarshal([]byte(ev.Data), &d); err != nil {
				t.Fatal(err)
			}
			unknown = append(unknown, d.Token)
		}
		if fmt.Sprint(unknown) != fmt.Sprint([]string{ghost, "not-a-token"}) {
			t.Errorf("reported %v as unknown, want %v", unknown, []string{ghost, "not-a-token"})
		}
		// The unknown orders keep the cursors the client gave.
		checkMulti(t, readMulti(t, events[2:]), multiEvent{"5.2.", ada.Token, 2})
	})
}

func TestMultiStreamRefusesAListItCanNeverServe(t *testing.T) {
	t.Parallel()
	a := newLiveApp(t, appOptions{})
	many := make([]string, maxMultiOrders+1)
	for i := range many {
		many[i] = orders.NewToken()
	}
	for _, query := range []string{"", "?orders=", "?orders=,,", "?orders=" + strings.Join(many, ",")} {
		resp, err := http.Get(a.server.URL + "/orders/events" + query)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%.60s: status %d, want 400", query, resp.StatusCode)
		}
	}
}

func TestMultiStreamCountsARepeatedOrderOnce(t *testing.T) {
	t.Parallel()
	a := newLiveApp(t, appOptions{})
	ada, bo := a.create(t, "Ada"), a.create(t, "Bo")
	c := a.open(t, "/orders/events?orders="+ada.Token+","+bo.Token+","+ada.Token+"&since=1.1", "")
	a.advance(t, ada, orders.Received)
	checkMulti(t, readMulti(t, c.waitEvents(t, 1)), multiEvent{"2.1", ada.Token, 2})
}

// TestMultiStreamEndsWhenEveryOrderHasEnded follows two orders to their
// ends; the stream ends after the last terminal event, and each order's
// events come exactly once, in order.
func TestMultiStreamEndsWhenEveryOrderHasEnded(t *testing.T) {
	t.Parallel()
	eachWindow(t, func(t *testing.T, window int) {
		a := newLiveApp(t, appOptions{window: window})
		ada, bo := a.create(t, "Ada"), a.create(t, "Bo")
		c := a.open(t, multiPath(ada, bo)+"&since=1.1", "")
		var wg sync.WaitGroup
		wg.Go(func() { a.deliver(t, ada, orders.Received) })
		wg.Go(func() {
			a.advance(t, bo, orders.Received)
			if _, err := a.store.Cancel(context.Background(), bo.Token, orders.ByStaff); err != nil {
				t.Error(err)
			}
		})
		wg.Wait()
		got := readMulti(t, c.waitEnd(t))
		seqs := map[string][]int{}
		for _, e := range got {
			seqs[e.token] = append(seqs[e.token], e.seq)
		}
		if fmt.Sprint(seqs[ada.Token]) != "[2 3 4]" || fmt.Sprint(seqs[bo.Token]) != "[2 3]" {
			t.Errorf("got %v, want Ada's 2 3 4 and Bo's 2 3, each once", got)
		}
		if last := got[len(got)-1].id; last != "4.3" {
			t.Errorf("the last id is %q, want 4.3", last)
		}
	})
}

// TestManyOrdersOnOneStreamGetExactlyTheirEvents follows twenty orders on
// one stream while they and others all move at once.
func TestManyOrdersOnOneStreamGetExactlyTheirEvents(t *testing.T) {
	t.Parallel()
	eachWindow(t, func(t *testing.T, window int) {
		a := newLiveApp(t, appOptions{window: window})
		var all []orders.Order
		for i := range 40 {
			all = append(all, a.create(t, fmt.Sprintf("Customer %d", i)))
		}
		watched := all[:maxMultiOrders]
		c := a.open(t, multiPath(watched...), "")
		c.waitEvents(t, len(watched))
		var wg sync.WaitGroup
		for _, o := range all {
			wg.Go(func() {
				for from := orders.Received; from != orders.Delivered; from, _ = from.Next() {
					if _, err := a.store.Advance(context.Background(), o.Token, from, orders.ByWorker); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		got := readMulti(t, c.waitEnd(t))
		seqs := map[string][]int{}
		for _, e := range got {
			seqs[e.token] = append(seqs[e.token], e.seq)
		}
		for i, o := range watched {
			if fmt.Sprint(seqs[o.Token]) != "[1 2 3 4]" {
				t.Errorf("order %d: got seqs %v, want [1 2 3 4]", i, seqs[o.Token])
			}
		}
		if len(seqs) != len(watched) {
			t.Errorf("the stream carried %d orders, want %d", len(seqs), len(watched))
		}
		want := strings.TrimSuffix(strings.Repeat("4.", len(watched)), ".")
		if last := got[len(got)-1].id; last != want {
			t.Errorf("the last id is %q, want %q", last, want)
		}
	})
}

func TestMultiStreamsLeaveNoGoroutinesBehind(t *testing.T) {
	a := newLiveApp(t, appOptions{})
	ada, bo := a.create(t, "Ada"), a.create(t, "Bo")
	a.server.Client().CloseIdleConnections()
	before := streamGoroutines()
	var clients []*client
	for range 20 {
		c := a.open(t, multiPath(ada, bo), "")
		c.waitEvents(t, 2)
		clients = append(clients, c)
	}
	if n := a.hub.Streams(); n != 20 {
		t.Errorf("hub has %d streams, want 20: one per connection, however many orders it follows", n)
	}
	for _, c := range clients {
		c.close()
	}
	a.server.Client().CloseIdleConnections()
	waitUntil(t, "the hub forgets the streams", func() bool { return a.hub.Streams() == 0 })
	waitUntil(t, "the streams' goroutines return to their baseline", func() bool { return streamGoroutines() <= before })
}

func TestMultiStreamIsTurnedAwayAtTheStreamCap(t *testing.T) {
	t.Parallel()
	a := newLiveApp(t, appOptions{maxStreams: 2})
	list := []orders.Order{a.create(t, "Ada"), a.create(t, "Bo"), a.create(t, "Cy"), a.create(t, "Di")}
	// A stream of four orders counts as one stream, as its connection is one.
	a.open(t, multiPath(list...), "").waitEvents(t, 4)
	a.open(t, multiPath(list[0]), "").waitEvents(t, 1)
	c := a.open(t, multiPath(list...), "")
	s := c.waitEnd(t)
	if c.resp.StatusCode != http.StatusOK || len(s) != 0 {
		t.Errorf("status %d with %d events, want 200 and none: a stream over the cap is asked to come back", c.resp.StatusCode, len(s))
	}
	if n := a.hub.Streams(); n != 2 {
		t.Errorf("the hub has %d streams after refusing one at its cap of 2", n)
	}
}
