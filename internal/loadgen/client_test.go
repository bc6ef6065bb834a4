package loadgen

import (
	"bufio"
	"io"
	"strings"
	"testing"
	"time"
)

// newTestClient returns a client of one stream, marked at mark (unix ns),
// that has received up to last.
func newTestClient(spec streamSpec, mark, last int64) *client {
	c := &client{spec: spec, lat: &sharedHist{}, mark: mark, markLast: last}
	c.retry.Store(int64(defaultRetry))
	c.last.Store(last)
	c.start = last
	return c
}

// The client reads a stream as EventSource does: fields split at the first
// colon with one space dropped, CRLF or LF, data lines joined, retry taken
// only when all digits, comments ignored, and an event dispatched only at
// a blank line and only if it has data.
func TestClientReadsTheStreamAsEventSourceDoes(t *testing.T) {
	t.Parallel()
	at := time.Now().UTC().Format(time.RFC3339Nano)
	body := "retry: 2000\n\n" +
		"event: heartbeat\ndata: {\"interval_ms\":15000}\n\n" +
		": a comment\n" +
		"id: 11\r\nevent: order_update\r\ndata: {\"at\":\"" + at + "\"}\r\n\r\n" +
		"event: hop\ndata: {\"written\":\"" + at + "\"}\n\n" + // no id, and no event of an order
		"id: 11\nevent: order_update\ndata: {}\n\n" + // a duplicate
		"retry: soon\n\n" + // not digits: ignored
		"retry:4500\n\n" +
		"id: 12\nevent: order_update\n\n" + // no data: not dispatched
		"event: reset\nid: 20\ndata: {}\n\n" +
		"id: 21\ndata: {\"part\":1,\ndata: \"at\":\"x\"}\n\n"
	c := newTestClient(streamSpec{Path: "/staff/events", Staff: true}, 0, 10)
	conn := &connection{dialed: 1}
	if err := c.read(bufio.NewReader(strings.NewReader(body)), conn); err != io.EOF {
		t.Fatalf("read: got %v, want io.EOF at the end of the body", err)
	}
	if got, want := time.Duration(c.retry.Load()), 4500*time.Millisecond; got != want {
		t.Errorf("retry: got %s, want %s (the last all-digit value)", got, want)
	}
	if got, want := c.last.Load(), int64(21); got != want {
		t.Errorf("last id: got %d, want %d", got, want)
	}
	if c.events != 3 || c.dups != 1 || c.resets != 1 || c.inRange != 2 {
		t.Errorf("got %d events, %d duplicates, %d resets, %d in range; want 3, 1, 1, 2", c.events, c.dups, c.resets, c.inRange)
	}
	if c.beats != 2 {
		t.Errorf("heartbeats and comments: got %d, want 2", c.beats)
	}
	if c.hops != 1 {
		t.Errorf("hop events: got %d, want 1", c.hops)
	}
	if c.live != 1 {
		t.Errorf("events timed: got %d, want 1 (the one whose at parses)", c.live)
	}
	if conn.started == 0 || conn.firstEvent < conn.started {
		t.Errorf("connection began at %d, first event at %d: want the heartbeat to begin it, and the event after", conn.started, conn.firstEvent)
	}
	if len(c.conns) != 1 || c.conns[0] != conn {
		t.Errorf("connections since the mark: got %d, want this one", len(c.conns))
	}
}

// A refusal (a 200 holding only a retry delay and a comment) begins no
// stream: it must not count as the stream being back.
func TestARefusalBeginsNoStream(t *testing.T) {
	t.Parallel()
	c := newTestClient(streamSpec{Path: "/orders/x/events"}, 0, 2)
	conn := &connection{dialed: 1}
	c.read(bufio.NewReader(strings.NewReader("retry: 1500\n\n: this server is restarting; reconnect to resume\n\n")), conn)
	if conn.started != 0 || len(c.conns) != 0 {
		t.Errorf("a refusal began a stream: started %d, %d connections", conn.started, len(c.conns))
	}
	if got, want := time.Duration(c.retry.Load()), 1500*time.Millisecond; got != want {
		t.Errorf("retry: got %s, want %s", got, want)
	}
	c.ended(t.Context(), conn, true)
	if c.refused != 1 || c.failed != 0 {
		t.Errorf("got %d refused, %d failed; want 1, 0", c.refused, c.failed)
	}
	c.ended(t.Context(), &connection{dialed: 2}, false)
	if c.failed != 1 {
		t.Errorf("an unanswered connection: got %d failed, want 1", c.failed)
	}
	c.ended(t.Context(), &connection{dialed: -1}, false)
	if c.failed != 1 {
		t.Errorf("a connection dialled before the mark counted: got %d failed, want 1", c.failed)
	}
}

// An order stream's sequence numbers never skip: a gap is lost events.
func TestOrderStreamCountsSkippedSequenceNumbers(t *testing.T) {
	t.Parallel()
	c := newTestClient(streamSpec{Path: "/orders/x/events"}, 0, 0)
	conn := &connection{}
	c.read(bufio.NewReader(strings.NewReader(
		"event: heartbeat\ndata: {}\n\nid: 1\ndata: {}\n\nid: 2\ndata: {}\n\nid: 4\ndata: {\"final\":true}\n\nid: 5\ndata: {}\n\n")), conn)
	if c.gaps != 1 {
		t.Errorf("gaps: got %d, want 1 (3 is missing)", c.gaps)
	}
	if !c.done.Load() || c.last.Load() != 4 {
		t.Errorf("got done %v at %d; want the stream to end at its final event, 4", c.done.Load(), c.last.Load())
	}
}

func TestRetryValue(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"2000", 2000, true},
		{"0", 0, true},
		{"", 0, false},
		{"-5", 0, false},
		{"1.5", 0, false},
		{"20 ", 0, false},
		{"99999999999999999999999", 0, false},
	}
	for _, c := range cases {
		got, ok := retryValue([]byte(c.in))
		if got != c.want || ok != c.ok {
			t.Errorf("retryValue(%q): got %d, %v; want %d, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

// The history keeps one entry per millisecond, the latest id in it, so a
// batch costs one entry and when the stream reached an id is never
// earlier than it was.
func TestHistoryFoldsEachMillisecond(t *testing.T) {
	t.Parallel()
	ms := int64(time.Millisecond)
	var h []idAt
	h = addHistory(h, 5, 10*ms)
	h = addHistory(h, 6, 10*ms+ms/2)
	h = addHistory(h, 7, 12*ms)
	want := []idAt{{6, 10*ms + ms/2}, {7, 12 * ms}}
	if len(h) != len(want) || h[0] != want[0] || h[1] != want[1] {
		t.Errorf("got %v, want %v", h, want)
	}
}

func TestLiveTime(t *testing.T) {
	t.Parallel()
	history := []idAt{{11, 100}, {15, 200}, {20, 300}}
	cases := []struct {
		name     string
		conns    []*connection
		markLast int64
		target   int64
		want     int64
		ok       bool
	}{
		{"with no new connection the stream is not back", nil, 10, 15, 0, false},
		{"a stream that had the target at the mark is live when it begins again", []*connection{{dialed: 50, started: 250}}, 15, 15, 250, true},
		{"a stream is live when it has caught up, if that is after it began", []*connection{{dialed: 50, started: 150}}, 10, 15, 200, true},
		{"a stream that caught up before it began again is live when it began", []*connection{{dialed: 50, started: 350}}, 10, 15, 350, true},
		{"the first connection since the mark counts", []*connection{{started: 120}, {started: 400}}, 10, 11, 120, true},
		{"a stream short of its target is not live", []*connection{{started: 120}}, 10, 21, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := liveTime(c.conns, history, c.markLast, c.target)
			if got != c.want || ok != c.ok {
				t.Errorf("got %d, %v; want %d, %v", got, ok, c.want, c.ok)
			}
		})
	}
}

// checkLive looks each order stream's target up by its path, and a
// finished order stream counts as back.
func TestCheckLiveUsesEachStreamsTarget(t *testing.T) {
	t.Parallel()
	lc := &liveCheck{ReadyAt: 1000, StaffTarget: 30, OrderTargets: map[string]int64{"/orders/a/events": 3}}
	staff := newTestClient(streamSpec{Path: "/staff/events", Staff: true}, 500, 20)
	staff.conns = []*connection{{dialed: 600, started: 700}}
	staff.history = []idAt{{25, 800}}
	if _, ok := staff.checkLive(lc); ok {
		t.Error("a stream of all orders short of the head counts as live")
	}
	staff.history = append(staff.history, idAt{31, 1200})
	if got, ok := staff.checkLive(lc); !ok || got != 1200 {
		t.Errorf("got %d, %v; want 1200, true", got, ok)
	}
	order := newTestClient(streamSpec{Path: "/orders/a/events"}, 500, 3)
	order.conns = []*connection{{dialed: 600, started: 900}}
	if got, ok := order.checkLive(lc); !ok || got != 900 {
		t.Errorf("an order stream at its target: got %d, %v; want 900, true", got, ok)
	}
	done := newTestClient(streamSpec{Path: "/orders/b/events"}, 500, 4)
	done.done.Store(true)
	if got, ok := done.checkLive(lc); !ok || got != lc.ReadyAt {
		t.Errorf("a finished order stream: got %d, %v; want %d, true", got, ok, lc.ReadyAt)
	}
}

// A mark forgets the connections and history before it.
func TestMarkStartsANewAccount(t *testing.T) {
	t.Parallel()
	c := newTestClient(streamSpec{Path: "/staff/events", Staff: true}, 0, 5)
	c.conns = []*connection{{started: 1}}
	c.history = []idAt{{5, 1}}
	c.refused, c.failed, c.liveAt = 2, 3, 4
	c.last.Store(9)
	c.markNow()
	if len(c.conns) != 0 || len(c.history) != 0 || c.refused != 0 || c.failed != 0 || c.liveAt != 0 {
		t.Errorf("the mark kept %d connections, %d ids, %d refused, %d failed, live at %d", len(c.conns), len(c.history), c.refused, c.failed, c.liveAt)
	}
	if c.markLast != 9 || c.mark == 0 {
		t.Errorf("got mark %d at id %d; want now, at 9", c.mark, c.markLast)
	}
}

// The children's reports add up: counts add, the last time is the latest.
func TestTotalAddsTheReconnectionAccounts(t *testing.T) {
	t.Parallel()
	var a, b childReport
	a.LiveStreams, a.NotLive, a.LiveLast, a.Refused, a.Unanswered, a.Resets = 3, 1, 100, 2, 5, 1
	b.LiveStreams, b.LiveLast, b.Refused, b.Unanswered = 4, 90, 1, 1
	a.LiveAfter.Add(time.Second)
	b.LiveAfter.Add(2 * time.Second)
	b.FirstFrame.Add(time.Millisecond)
	got := total([]childReport{a, b})
	if got.LiveStreams != 7 || got.NotLive != 1 || got.LiveLast != 100 || got.Refused != 3 || got.Unanswered != 6 || got.Resets != 1 {
		t.Errorf("got %+v", got)
	}
	if got.LiveAfter.Count() != 2 || got.FirstFrame.Count() != 1 {
		t.Errorf("histograms: got %d and %d, want 2 and 1", got.LiveAfter.Count(), got.FirstFrame.Count())
	}
}

func TestMoverRounds(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		rounds int
		want   int
	}{
		{"by default every order moves three times", 0, 9},
		{"with two rounds every order moves twice", 2, 6},
		{"without end it keeps going", -1, 30},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := &mover{ids: []int64{1, 2, 3}, rounds: c.rounds}
			got := 0
			for range 30 {
				got += len(m.take(1))
			}
			if got != c.want {
				t.Errorf("got %d moves, want %d", got, c.want)
			}
		})
	}
}

// A stream of all orders that was reset skipped on purpose what lay
// between its cursor and the reset's: that is not lost, and the rest is
// checked as for any other stream.
func TestExpectedAfterResets(t *testing.T) {
	t.Parallel()
	positions := []int64{3, 4, 6, 8, 9, 12, 15}
	cases := []struct {
		name                   string
		start, last            int64
		skips                  []span
		wantExpected, wantSkip int64
	}{
		{"without resets every position after the start counts", 3, 15, nil, 6, 0},
		{"a reset skips the positions after the cursor it had, up to its own", 0, 15, []span{{4, 9}}, 4, 3},
		{"two resets skip two spans", 0, 12, []span{{3, 4}, {8, 12}}, 3, 3},
		{"a span beyond the check's end counts only up to it", 5, 9, []span{{6, 20}}, 1, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, skipped := expectedAfterResets(positions, c.start, c.last, c.skips)
			if got != c.wantExpected || skipped != c.wantSkip {
				t.Errorf("got %d expected, %d skipped; want %d, %d", got, skipped, c.wantExpected, c.wantSkip)
			}
		})
	}
}

// The final report of a stream of all orders that was reset counts lost
// only what the reset did not skip.
func TestReportOfAResetStream(t *testing.T) {
	t.Parallel()
	c := newTestClient(streamSpec{Path: "/staff/events", Staff: true}, 0, 2)
	conn := &connection{}
	c.read(bufio.NewReader(strings.NewReader("id: 3\ndata: {}\n\nevent: reset\nid: 7\ndata: {}\n\nid: 9\ndata: {}\n\n")), conn)
	var rep childReport
	c.report(&rep, command{StaffLast: 9, StaffExpected: 5, Positions: []int64{3, 5, 6, 7, 9}})
	if rep.Lost != 0 || rep.Skipped != 3 || rep.ResetStreams != 1 || rep.Resets != 1 {
		t.Errorf("got %d lost, %d skipped, %d reset streams, %d resets; want 0, 3, 1, 1", rep.Lost, rep.Skipped, rep.ResetStreams, rep.Resets)
	}
	rep = childReport{}
	c.report(&rep, command{StaffLast: 10, StaffExpected: 6, Positions: []int64{3, 5, 6, 7, 9, 10}})
	if rep.Lost != 1 {
		t.Errorf("an event after the reset that never came: got %d lost, want 1", rep.Lost)
	}
}
