package stream

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/ordertracker/ordertracker/internal/sse/ssetest"
	"github.com/ordertracker/ordertracker/orders"
)

// taggedServer serves /tagged?tag=T&after=P, every order after position P
// on a stream tagged T, from ts's hub and log.
func taggedServer(t *testing.T, ts *testServer) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
		ts.hub.Serve(w, r, AllOrders(after).Tagged(r.URL.Query().Get("tag")), ts.replay(func() []orders.Event {
			return ts.log.after(after, func(orders.Event) bool { return true })
		}))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func openAt(t *testing.T, url string, header ...string) *client {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, want 200", url, resp.Status)
	}
	return &client{resp: resp, r: ssetest.NewReader(resp.Body)}
}

func TestEndAllEndsEveryStreamCleanlyAndLetsThemResume(t *testing.T) {
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t, transport, Options{Retry: 100 * time.Millisecond})
			ts.publish("A", orders.Received)
			var clients []*client
			for len(clients) <= 2*len(ts.hub.shards) {
				clients = append(clients, ts.open(t, "/all"), ts.open(t, "/one/A"), ts.open(t, "/some?orders=A"))
			}
			for _, c := range clients {
				c.next(t)
			}
			// A live event reaches a stream only once its replay is out:
			// then it is live, and EndAll (which leaves a stream still
			// replaying alone) ends it.
			ts.publish("A", orders.Cooking)
			for _, c := range clients {
				if u := decode(t, c.next(t)); u.Seq != 2 {
					t.Fatalf("got seq %d live, want 2", u.Seq)
				}
			}
			ts.hub.EndAll()
			for _, c := range clients {
				if events := c.end(t); len(events) != 0 {
					t.Errorf("got %d events after EndAll", len(events))
				}
				if c.r.Retry < 50 || c.r.Retry > 100 {
					t.Errorf("retry told at the end: %d ms, want from half the retry delay to it", c.r.Retry)
				}
			}
			waitFor(t, "every stream is counted out", func() bool { return ts.hub.Streams() == 0 })
			if ts.hub.Draining() {
				t.Fatal("EndAll left the hub draining")
			}
			// A browser comes back with its Last-Event-ID and misses nothing.
			ts.publish("A", orders.OutForDelivery)
			back := ts.open(t, "/one/A", "Last-Event-ID", "2")
			if u := decode(t, back.next(t)); u.Seq != 3 {
				t.Fatalf("the resumed stream got seq %d first, want 3", u.Seq)
			}
			ts.publish("A", orders.Delivered)
			if u := decode(t, back.next(t)); u.Seq != 4 {
				t.Fatalf("the resumed stream got seq %d live, want 4", u.Seq)
			}
		})
	}
}

func TestStallSilencesTheTaggedStreamsOpenNowAndNoOthers(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, "HTTP/1.1", Options{Heartbeat: 20 * time.Millisecond})
	srv := taggedServer(t, ts)
	ts.publish("A", orders.Received)
	stalled := openAt(t, srv.URL+"/tagged?tag=mine&after=1")
	// Streams of another tag and of none, in every shard.
	var others []*client
	for len(others) < 2*len(ts.hub.shards) {
		others = append(others, openAt(t, srv.URL+"/tagged?tag=theirs&after=1"), ts.open(t, "/all?after=1"))
	}
	if f, err := stalled.r.Next(); err != nil || f.Event.Type != HeartbeatEventName {
		t.Fatalf("the stream's first frame: %+v, %v; want a heartbeat", f, err)
	}
	ts.hub.Stall("mine")
	got := make(chan ssetest.Frame, 100)
	go func() {
		for {
			f, err := stalled.r.Next()
			if err != nil {
				close(got)
				return
			}
			got <- f
		}
	}()
	ts.publish("A", orders.Cooking)
	ts.publish("A", orders.OutForDelivery)
	for _, c := range others {
		for _, want := range []int{2, 3} {
			if u := decode(t, c.next(t)); u.Position != int64(want) {
				t.Fatalf("a stream not stalled got position %d, want %d", u.Position, want)
			}
		}
		// Heartbeats go on too: the shard has written past the events.
		if f, err := c.r.Next(); err != nil || f.Event.Type != HeartbeatEventName {
			t.Fatalf("after the events: %+v, %v; want a heartbeat", f, err)
		}
	}
	select {
	case f, ok := <-got:
		if ok {
			t.Fatalf("the stalled stream got %+v, want nothing at all", f)
		}
		t.Fatal("the stalled stream was closed, want it open and silent")
	default:
	}

	// The browser gives up on it and opens another under the same tag,
	// which is not stalled and resumes from its cursor.
	stalled.resp.Body.Close()
	againAfter := openAt(t, srv.URL+"/tagged?tag=mine&after=1")
	for _, want := range []int64{2, 3} {
		if u := decode(t, againAfter.next(t)); u.Position != want {
			t.Fatalf("the new stream got position %d, want %d", u.Position, want)
		}
	}
	ts.publish("A", orders.Delivered)
	if u := decode(t, againAfter.next(t)); u.Position != 4 {
		t.Fatalf("the new stream got position %d live, want 4", u.Position)
	}
}

func TestStallOfNoTagStallsNothing(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, "HTTP/1.1", Options{})
	ts.publish("A", orders.Received)
	c := ts.open(t, "/all?after=1")
	ts.hub.Stall("")
	ts.publish("A", orders.Cooking)
	if u := decode(t, c.next(t)); u.Position != 2 {
		t.Fatalf("got position %d, want 2", u.Position)
	}
}
