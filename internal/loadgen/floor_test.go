package loadgen

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ordertracker/ordertracker/internal/sse/ssetest"
	"github.com/ordertracker/ordertracker/internal/stream"
	"github.com/ordertracker/ordertracker/orders"
)

// The floor's streams must get what the web process's would: each event
// after their Last-Event-ID once, in the product's own frames, over a
// chunked body that any HTTP client reads.
func TestFloorSendsEachStreamTheProductsFramesAfterItsCursor(t *testing.T) {
	t.Parallel()
	f := &floor{writers: make([][]floorStream, 2)}
	srv := httptest.NewServer(http.HandlerFunc(f.attach))
	t.Cleanup(srv.Close)

	// Positions may skip numbers; a batch is in position order.
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	events := []orders.Event{
		{Position: 10, Token: "a", Seq: 2, Status: orders.Cooking, Actor: orders.ByWorker, At: at, CustomerName: "Ada", TotalCents: 950},
		{Position: 12, Token: "b", Seq: 3, Status: orders.OutForDelivery, Actor: orders.ByStaff, At: at, CustomerName: "Line\nbreak"},
		{Position: 13, Token: "a", Seq: 3, Status: orders.OutForDelivery, Actor: orders.ByWorker, At: at, CustomerName: "Ada"},
	}
	cases := []struct {
		name   string
		cursor string
		want   []int64
	}{
		{"a stream that has none of the batch gets all of it", "", []int64{10, 12, 13}},
		{"a stream that has the first event gets the rest", "10", []int64{12, 13}},
		{"a stream whose cursor falls in a gap gets what follows it", "11", []int64{12, 13}},
		{"a stream that has the whole batch gets nothing", "13", nil},
	}
	bodies := make([]io.ReadCloser, len(cases))
	for i, c := range cases {
		bodies[i] = openStream(t, srv.URL, c.cursor)
	}

	f.write(events)
	// End every response with the chunked coding's last chunk, so that
	// each body can be read to its end.
	for _, conn := range f.conns {
		if _, err := conn.Write([]byte("0\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body, err := io.ReadAll(bodies[i])
			if err != nil {
				t.Fatalf("read the body: %v", err)
			}
			var got []int64
			for _, ev := range ssetest.Parse(body).Events {
				id, _ := strconv.ParseInt(ev.LastEventID, 10, 64)
				got = append(got, id)
				want := events[slices.IndexFunc(events, func(e orders.Event) bool { return e.Position == id })]
				data, _ := json.Marshal(stream.NewStaffUpdate(want))
				if ev.Type != stream.EventName || ev.Data != string(data) {
					t.Errorf("event %d: type %q, data %s; want %q, %s", id, ev.Type, ev.Data, stream.EventName, data)
				}
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("got events %v, want %v", got, c.want)
			}
		})
	}
	if got := f.missed.Load(); got != 0 {
		t.Errorf("writes skipped: got %d, want 0", got)
	}
}

// openStream opens a stream of the baseline at url after cursor ("" for
// none), checks that it is one, and returns its body.
func openStream(t *testing.T, url, cursor string) io.ReadCloser {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cursor != "" {
		req.Header.Set("Last-Event-ID", cursor)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if got := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || got != "text/event-stream" {
		t.Fatalf("stream after %q: %s, Content-Type %q; want 200 OK, text/event-stream", cursor, resp.Status, got)
	}
	return resp.Body
}
