package loadgen

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ordertracker/ordertracker/internal/sse/ssetest"
	"github.com/ordertracker/ordertracker/internal/stream"
	"github.com/ordertracker/ordertracker/orders"
)

// The plain hub's streams, like the floor's, get each event after their
// Last-Event-ID once, in the product's own frames.
func TestPlainSendsEachStreamTheProductsFramesAfterItsCursor(t *testing.T) {
	t.Parallel()
	p := &plain{streams: make(map[*plainStream]struct{})}
	srv := httptest.NewServer(http.HandlerFunc(p.attach))
	t.Cleanup(srv.Close)

	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	events := []orders.Event{
		{Position: 10, Token: "a", Seq: 2, Status: orders.Cooking, Actor: orders.ByWorker, At: at, CustomerName: "Ada", TotalCents: 950},
		{Position: 12, Token: "b", Seq: 3, Status: orders.OutForDelivery, Actor: orders.ByStaff, At: at, CustomerName: "Line\nbreak"},
		{Position: 13, Token: "a", Seq: 3, Status: orders.OutForDelivery, Actor: orders.ByWorker, At: at, CustomerName: "Ada"},
	}
	// A later batch that every stream lacks ends what each test reads.
	last := orders.Event{Position: 20, Token: "c", Seq: 1, Status: orders.Received, Actor: orders.ByCustomer, At: at, CustomerName: "Cy"}
	cases := []struct {
		name   string
		cursor string
		want   []int64
	}{
		{"a stream that has none of the batch gets all of it", "", []int64{10, 12, 13, 20}},
		{"a stream that has the first event gets the rest", "10", []int64{12, 13, 20}},
		{"a stream whose cursor falls in a gap gets what follows it", "11", []int64{12, 13, 20}},
		{"a stream that has the whole batch gets nothing of it", "13", []int64{20}},
	}
	readers := make([]*bufio.Reader, len(cases))
	for i, c := range cases {
		// The stream has joined once its headers are out.
		readers[i] = bufio.NewReader(openStream(t, srv.URL, c.cursor))
	}

	p.write(events)
	p.write([]orders.Event{last})
	all := append(slices.Clone(events), last)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body strings.Builder
			for !strings.HasSuffix(body.String(), "id: 20\nevent: "+stream.EventName+"\n") {
				line, err := readers[i].ReadString('\n')
				if err != nil {
					t.Fatalf("read the body: %v, after %q", err, body.String())
				}
				body.WriteString(line)
			}
			for line := ""; line != "\n"; {
				var err error
				if line, err = readers[i].ReadString('\n'); err != nil {
					t.Fatalf("read the body: %v", err)
				}
				body.WriteString(line)
			}
			var got []int64
			for _, ev := range ssetest.Parse([]byte(body.String())).Events {
				id, _ := strconv.ParseInt(ev.LastEventID, 10, 64)
				got = append(got, id)
				want := all[slices.IndexFunc(all, func(e orders.Event) bool { return e.Position == id })]
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
	if got := p.dropped(); got != 0 {
		t.Errorf("writes dropped: got %d, want 0", got)
	}
}
