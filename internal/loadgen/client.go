package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ordertracker/ordertracker/internal/stream"
)

// This file is the client side: a child process that holds a share of the
// streams, each an EventSource-like reader that reconnects with
// Last-Event-ID and checks that it gets every event exactly once, in order.

// streamSpec is one stream a child opens.
type streamSpec struct {
	// Path is /staff/events or /orders/{token}/events.
	Path string `json:"path"`
	// LastEventID is sent on the first connection; "" for none.
	LastEventID string `json:"last_event_id,omitempty"`
	// Staff marks a stream of all orders, whose ids are positions; the
	// others' ids are the order's sequence numbers.
	Staff bool `json:"staff,omitempty"`
}

// childConfig is what the parent sends a child on its standard input.
type childConfig struct {
	Addr     string       `json:"addr"` // the server, host:port
	Cookie   string       `json:"cookie,omitempty"`
	Sources  []string     `json:"sources"` // local addresses to dial from, round robin
	OpenRate int          `json:"open_rate"`
	Streams  []streamSpec `json:"streams"`
}

// A command tells a child what its streams should get, and how long to wait
// for it before it reports.
type command struct {
	// Finish ends the child after its report.
	Finish bool `json:"finish,omitempty"`
	// Mark starts a new account of reconnections: what each stream
	// receives and every connection it makes from now on (see liveCheck).
	// The child reports at once.
	Mark bool `json:"mark,omitempty"`
	// Live asks the child to wait until every stream is live again since
	// the mark, and to report when each became so.
	Live *liveCheck `json:"live,omitempty"`
	// StaffLast is the position every staff stream must reach;
	// StaffExpected is how many events the log holds after the streams'
	// starting cursor up to it.
	StaffLast     int64 `json:"staff_last"`
	StaffExpected int64 `json:"staff_expected"`
	// Positions, when given, are the positions of the log's events after
	// the streams' starting cursor up to StaffLast, in order: a stream
	// that was reset (told to load the board afresh) is then checked for
	// every event but those its resets skipped on purpose.
	Positions []int64 `json:"positions,omitempty"`
	// OrderFinal is the sequence number each order stream must reach (its
	// terminal event), 0 when order streams are not expected to finish.
	OrderFinal int `json:"order_final"`
	// OrderLast, when OrderFinal is 0, is the sequence number each order
	// stream must reach, by its path: for orders that have not finished.
	OrderLast map[string]int64 `json:"order_last,omitempty"`
	Timeout   time.Duration    `json:"timeout"`
}

// childReport is what a child sends back.
type childReport struct {
	Opened       int    `json:"opened"`
	Failed       int    `json:"failed"`
	FirstError   string `json:"first_error,omitempty"`
	Events       uint64 `json:"events"`     // events received, live and replayed
	Live         uint64 `json:"live"`       // events measured for latency
	Duplicates   uint64 `json:"duplicates"` // an id not above the last one
	Lost         uint64 `json:"lost"`       // events that should have come and did not
	Reconnects   uint64 `json:"reconnects"`
	Finished     int    `json:"finished"` // order streams that got their terminal event and ended
	Heartbeats   uint64 `json:"heartbeats"`
	Hops         uint64 `json:"hops"`       // hop events, which streams that ask for them get after each write
	Reached      int64  `json:"reached"`    // unix ns when every stream had what the command asked; 0: never
	FirstLive    int64  `json:"first_live"` // unix ns
	LastLive     int64  `json:"last_live"`
	Latency      Hist   `json:"latency"`       // of live events since the previous report
	Resets       uint64 `json:"resets"`        // times streams of all orders were told to load the board afresh (too far behind)
	ResetStreams int    `json:"reset_streams"` // streams of all orders reset at least once
	Skipped      uint64 `json:"skipped"`       // events those resets skipped on purpose (counted with Positions only)

	// The answer to a liveCheck, for what happened since the mark.
	LiveStreams int    `json:"live_streams"` // streams live again
	NotLive     int    `json:"not_live"`     // streams not live again when the check gave up
	LiveLast    int64  `json:"live_last"`    // unix ns when the last of them was live
	LiveAfter   Hist   `json:"live_after"`   // each stream: from ReadyAt until it was live (0 if before)
	FirstFrame  Hist   `json:"first_frame"`  // each connection: from dialling until the stream's first frame
	FirstEvent  Hist   `json:"first_event"`  // each connection that got one: from dialling until its first order_update
	Refused     uint64 `json:"refused"`      // connections answered with a retry delay and no stream
	Unanswered  uint64 `json:"unanswered"`   // connections refused, cut, or answered with an error
}

// A liveCheck says what a stream must have to be live again after the mark:
// a new connection that has begun a stream (the server's first frame
// came), and every event up to where the log stood at ReadyAt.
type liveCheck struct {
	ReadyAt      int64            `json:"ready_at"`      // unix ns: when the server was ready
	StaffTarget  int64            `json:"staff_target"`  // the log's head at ReadyAt
	OrderTargets map[string]int64 `json:"order_targets"` // each order stream's path: the order's sequence number at ReadyAt
	Timeout      time.Duration    `json:"timeout"`
}

// A client is one stream's reader.
type client struct {
	spec  streamSpec
	src   net.IP
	start int64 // the id after which events are live: the cursor given, or the snapshot's

	lat  *sharedHist
	last atomic.Int64 // the last id received
	done atomic.Bool  // an order stream got its terminal event

	// retry is how long to wait before reconnecting, in nanoseconds: what
	// the server's last retry field said, as a browser keeps it.
	retry atomic.Int64

	mu        sync.Mutex
	events    uint64
	dups      uint64
	gaps      uint64 // order streams: sequence numbers skipped
	inRange   int64  // staff streams: distinct positions after start
	live      uint64
	firstLive int64
	lastLive  int64
	beats     uint64
	hops      uint64
	reconn    uint64
	resets    uint64
	skips     []span // staff streams: the positions each reset skipped

	// What happened since the mark (the start, or the latest Mark).
	mark     int64         // unix ns
	markLast int64         // the last id at the mark
	conns    []*connection // connections dialled since the mark that began a stream
	history  []idAt        // the ids received since the mark, at most one per millisecond
	refused  uint64        // connections answered with a retry delay and no stream
	failed   uint64        // connections that failed: refused, cut, or answered with an error
	liveAt   int64         // when the stream was live again, for the check under way; 0: not yet
}

// defaultRetry is how long a browser waits before reconnecting until a
// server says otherwise (Chromium's default).
const defaultRetry = 3 * time.Second

// A connection is one of a stream's connections.
type connection struct {
	dialed     int64 // unix ns
	started    int64 // the stream's first frame: a heartbeat, an event; 0 until then
	firstEvent int64 // the first order_update; 0 until then
}

// A span is the ids after from up to to.
type span struct{ from, to int64 }

// expectedAfterResets returns how many of positions (sorted) a stream
// of all orders that started after start must have received up to last:
// all those in (start, last], less those in the spans its resets skipped.
func expectedAfterResets(positions []int64, start, last int64, skips []span) (expected, skipped int64) {
	count := func(from, to int64) int64 { // positions in (from, to]
		if to <= from {
			return 0
		}
		i, _ := slices.BinarySearch(positions, from+1)
		j, _ := slices.BinarySearch(positions, to+1)
		return int64(j - i)
	}
	expected = count(start, last)
	for _, s := range skips {
		skipped += count(max(s.from, start), min(s.to, last))
	}
	return expected - skipped, skipped
}

// idAt is an id a stream received, and when.
type idAt struct {
	id, at int64
}

// addHistory records that the stream received id at now (unix ns), folding
// ids that arrive within a millisecond of the one before into one entry,
// the latest, so that a batch costs one entry and not one per event.
func addHistory(h []idAt, id, now int64) []idAt {
	if n := len(h); n > 0 && now-h[n-1].at < int64(time.Millisecond) {
		h[n-1] = idAt{id, now}
		return h
	}
	return append(h, idAt{id, now})
}

// liveTime returns when a stream was live again after its mark: once a
// connection dialled since the mark had begun a stream, and the stream
// had received every id up to target (it had markLast at the mark, and the
// ids of history since, in rising order). It reports false if it is not
// live yet.
func liveTime(conns []*connection, history []idAt, markLast, target int64) (int64, bool) {
	if len(conns) == 0 {
		return 0, false
	}
	caught := int64(0)
	if markLast < target {
		i := sort.Search(len(history), func(i int) bool { return history[i].id >= target })
		if i == len(history) {
			return 0, false
		}
		caught = history[i].at
	}
	return max(conns[0].started, caught), true
}

// markNow starts a new account of reconnections.
func (c *client) markNow() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mark = time.Now().UnixNano()
	c.markLast = c.last.Load()
	c.conns, c.history = nil, nil
	c.refused, c.failed, c.liveAt = 0, 0, 0
}

// checkLive reports whether the stream is live again since the mark, and
// when it became so: a finished order stream counts as live at ReadyAt.
func (c *client) checkLive(lc *liveCheck) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.liveAt != 0 {
		return c.liveAt, true
	}
	if c.done.Load() {
		c.liveAt = lc.ReadyAt
		return c.liveAt, true
	}
	target := lc.StaffTarget
	if !c.spec.Staff {
		target = lc.OrderTargets[c.spec.Path]
	}
	at, ok := liveTime(c.conns, c.history, c.markLast, target)
	if ok {
		c.liveAt = at
	}
	return at, ok
}

// sharedHist is the latency histogram of all of a child's streams.
type sharedHist struct {
	mu sync.Mutex
	h  Hist
}

func (s *sharedHist) add(d time.Duration) {
	s.mu.Lock()
	s.h.Add(d)
	s.mu.Unlock()
}

// take returns the latencies added since the last take.
func (s *sharedHist) take() Hist {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.h
	s.h = Hist{}
	h.pack()
	return h
}

// runChild is a child process: it reads its config, opens its streams,
// says how many opened, and reports when told to finish.
func runChild(ctx context.Context, stdin io.Reader, stdout io.Writer) error {
	in := json.NewDecoder(stdin)
	var cfg childConfig
	if err := in.Decode(&cfg); err != nil {
		return fmt.Errorf("read child config: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	clients := make([]*client, len(cfg.Streams))
	lat := &sharedHist{}
	var opened, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	interval := time.Second / time.Duration(max(cfg.OpenRate, 1))
	began := time.Now()
	next := began
	for i, spec := range cfg.Streams {
		c := &client{spec: spec, src: net.ParseIP(cfg.Sources[i%len(cfg.Sources)]), lat: lat, mark: began.UnixNano()}
		c.retry.Store(int64(defaultRetry))
		if spec.LastEventID != "" {
			c.start, _ = strconv.ParseInt(spec.LastEventID, 10, 64)
			c.last.Store(c.start)
			c.markLast = c.start
		}
		clients[i] = c
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		next = next.Add(interval)
		wg.Go(func() {
			c.run(ctx, cfg, func(err error) {
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					return
				}
				opened.Add(1)
			})
		})
	}
	for deadline := time.Now().Add(60 * time.Second); opened.Load()+failed.Load() < int64(len(clients)) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	out := json.NewEncoder(stdout)
	ready := childReport{Opened: int(opened.Load()), Failed: int(failed.Load())}
	if e, ok := firstErr.Load().(string); ok {
		ready.FirstError = e
	}
	if err := out.Encode(ready); err != nil {
		return err
	}

	for {
		var cmd command
		if err := in.Decode(&cmd); err != nil {
			return fmt.Errorf("read command: %w", err)
		}
		rep := ready
		switch {
		case cmd.Mark:
			for _, c := range clients {
				c.markNow()
			}
		case cmd.Live != nil:
			rep = checkLive(clients, cmd.Live, rep)
		default:
			deadline := time.Now().Add(cmd.Timeout)
			for time.Now().Before(deadline) && !allDone(clients, cmd) {
				time.Sleep(5 * time.Millisecond)
			}
			if allDone(clients, cmd) {
				rep.Reached = time.Now().UnixNano()
			}
		}
		for _, c := range clients {
			c.report(&rep, cmd)
		}
		rep.Latency = lat.take()
		if err := out.Encode(rep); err != nil {
			return err
		}
		if cmd.Finish {
			cancel()
			wg.Wait()
			return nil
		}
	}
}

// checkLive waits until every stream is live again since the mark, or
// until the check's timeout, and adds what it found to rep.
func checkLive(clients []*client, lc *liveCheck, rep childReport) childReport {
	deadline := time.Now().Add(lc.Timeout)
	for {
		all := true
		for _, c := range clients {
			if _, ok := c.checkLive(lc); !ok {
				all = false
				break
			}
		}
		if all || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, c := range clients {
		at, ok := c.checkLive(lc)
		if !ok {
			rep.NotLive++
			continue
		}
		rep.LiveStreams++
		rep.LiveLast = max(rep.LiveLast, at)
		rep.LiveAfter.Add(time.Duration(at - lc.ReadyAt))
		c.mu.Lock()
		for _, conn := range c.conns {
			rep.FirstFrame.Add(time.Duration(conn.started - conn.dialed))
			if conn.firstEvent != 0 {
				rep.FirstEvent.Add(time.Duration(conn.firstEvent - conn.dialed))
			}
		}
		rep.Refused += c.refused
		rep.Unanswered += c.failed
		c.mu.Unlock()
	}
	rep.LiveAfter.pack()
	rep.FirstFrame.pack()
	rep.FirstEvent.pack()
	return rep
}

// report adds the client's counts to rep, and moves its latencies there.
func (c *client) report(rep *childReport, cmd command) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rep.Events += c.events
	rep.Live += c.live
	rep.Duplicates += c.dups
	rep.Reconnects += c.reconn
	rep.Heartbeats += c.beats
	rep.Hops += c.hops
	rep.Resets += c.resets
	last := c.last.Load()
	if c.firstLive != 0 && (rep.FirstLive == 0 || c.firstLive < rep.FirstLive) {
		rep.FirstLive = c.firstLive
	}
	rep.LastLive = max(rep.LastLive, c.lastLive)
	switch {
	case c.spec.Staff:
		// Every event in the range must have come exactly once; ids are
		// checked to rise, so what is missing is lost.
		expected := cmd.StaffExpected
		if len(c.skips) > 0 {
			rep.ResetStreams++
			if cmd.Positions != nil {
				var skipped int64
				expected, skipped = expectedAfterResets(cmd.Positions, c.start, cmd.StaffLast, c.skips)
				rep.Skipped += uint64(skipped)
			}
		}
		rep.Lost += uint64(max(expected-c.inRange, 0))
	case cmd.OrderFinal > 0:
		if c.done.Load() {
			rep.Finished++
		}
		rep.Lost += uint64(max(int64(cmd.OrderFinal)-last, 0)) + c.gaps
	case cmd.OrderLast != nil:
		rep.Lost += uint64(max(cmd.OrderLast[c.spec.Path]-last, 0)) + c.gaps
	default:
		rep.Lost += c.gaps
	}
}

func allDone(clients []*client, cmd command) bool {
	for _, c := range clients {
		if !c.hasAll(cmd) {
			return false
		}
	}
	return true
}

// hasAll reports whether the stream has all that cmd says it must.
func (c *client) hasAll(cmd command) bool {
	switch {
	case c.spec.Staff:
		return c.last.Load() >= cmd.StaffLast
	case cmd.OrderFinal > 0:
		return c.done.Load()
	case cmd.OrderLast != nil:
		return c.done.Load() || c.last.Load() >= cmd.OrderLast[c.spec.Path]
	}
	return true
}

// run keeps the stream open, reconnecting after the retry delay as a
// browser does, until ctx ends or an order stream finishes. opened is
// called once, after the first connection's headers.
func (c *client) run(ctx context.Context, cfg childConfig, opened func(error)) {
	first := true
	for ctx.Err() == nil {
		err := c.connect(ctx, cfg, func(err error) {
			if first {
				first = false
				opened(err)
			}
		})
		if first {
			first = false
			opened(err)
		}
		if c.done.Load() || ctx.Err() != nil {
			return
		}
		c.mu.Lock()
		c.reconn++
		c.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(c.retry.Load())):
		}
	}
}

// connect makes one connection and reads it until it ends.
func (c *client) connect(ctx context.Context, cfg childConfig, opened func(error)) error {
	conn := &connection{dialed: time.Now().UnixNano()}
	answered := false // a 200 (or 204) came
	defer func() { c.ended(ctx, conn, answered) }()
	// No timeout of our own, as a browser has none shorter than the
	// system's: a connection the server cannot accept yet waits in its
	// backlog, and the kernel resends the SYN for about two minutes.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: c.src}}
	nc, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return err
	}
	defer nc.Close()
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	var req bytes.Buffer
	fmt.Fprintf(&req, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n", c.spec.Path, cfg.Addr)
	if last := c.last.Load(); last > 0 {
		fmt.Fprintf(&req, "Last-Event-ID: %d\r\n", last)
	}
	if cfg.Cookie != "" {
		fmt.Fprintf(&req, "Cookie: %s\r\n", cfg.Cookie)
	}
	req.WriteString("\r\n")
	if _, err := nc.Write(req.Bytes()); err != nil {
		return err
	}
	br := bufio.NewReaderSize(nc, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNoContent {
		answered = true
		c.done.Store(true)
		opened(nil)
		return nil
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		return fmt.Errorf("%s: %s %q", c.spec.Path, resp.Status, resp.Header.Get("Content-Type"))
	}
	answered = true
	opened(nil)
	return c.read(bufio.NewReaderSize(resp.Body, 4096), conn)
}

// ended counts a connection dialled since the mark that never began a
// stream: a refusal if it was answered (a 200 holding only a retry delay),
// a failure if not.
func (c *client) ended(ctx context.Context, conn *connection, answered bool) {
	if ctx.Err() != nil || c.done.Load() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case conn.started != 0 || conn.dialed < c.mark:
	case answered:
		c.refused++
	default:
		c.failed++
	}
}

var beatName = []byte(stream.HeartbeatEventName)
var resetName = []byte(stream.ResetEventName)
var hopName = []byte(stream.HopEventName)

var (
	fieldAt   = []byte(`"at":"`)
	finalTrue = []byte(`"final":true`)
)

// read parses the event stream as EventSource does, checking each event's
// id against the last and taking each retry field as the new reconnection
// delay.
func (c *client) read(r *bufio.Reader, conn *connection) error {
	var id int64
	var name, data []byte
	hasID, hasData := false, false
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return err // bufio.ErrBufferFull too: no frame of ours is that long
		}
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		if len(line) == 0 {
			if hasData {
				switch {
				case bytes.Equal(name, beatName):
					c.heartbeat(conn)
				case bytes.Equal(name, resetName):
					c.reset(conn, id, hasID)
				case bytes.Equal(name, hopName):
					c.mu.Lock()
					c.hops++
					c.mu.Unlock()
				default:
					if c.event(conn, id, hasID, data) {
						return nil
					}
				}
			}
			name, data, hasID, hasData = name[:0], data[:0], false, false
			continue
		}
		if line[0] == ':' {
			c.comment()
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			name = append(name[:0], value...)
		case "data":
			if hasData {
				data = append(data, '\n')
			}
			data = append(data, value...)
			hasData = true
		case "id":
			n, err := strconv.ParseInt(string(value), 10, 64)
			id, hasID = n, err == nil
		case "retry":
			if ms, ok := retryValue(value); ok {
				c.retry.Store(int64(time.Duration(min(ms, int64(math.MaxInt64/time.Millisecond))) * time.Millisecond))
			}
		}
	}
}

// retryValue reads a retry field's value, which EventSource takes only if
// it is all ASCII digits.
func retryValue(v []byte) (int64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	for _, b := range v {
		if b < '0' || b > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

// begin notes the stream's first frame on conn; the caller holds c.mu.
func (c *client) begin(conn *connection, now int64) {
	if conn.started == 0 {
		conn.started = now
		if conn.dialed >= c.mark {
			c.conns = append(c.conns, conn)
		}
	}
}

// heartbeat counts a heartbeat event.
func (c *client) heartbeat(conn *connection) {
	now := time.Now().UnixNano()
	c.mu.Lock()
	c.beats++
	c.begin(conn, now)
	c.mu.Unlock()
}

// comment counts a comment line: what servers sent as a heartbeat before
// it was an event, and what a refusal says.
func (c *client) comment() {
	c.mu.Lock()
	c.beats++
	c.mu.Unlock()
}

// reset records that the server told a stream of all orders to load the
// board afresh: it was too far behind, and what it missed is lost to it.
// The reset's id is where the stream goes on from.
func (c *client) reset(conn *connection, id int64, hasID bool) {
	now := time.Now().UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.begin(conn, now)
	c.resets++
	if hasID && id > c.last.Load() {
		c.skips = append(c.skips, span{c.last.Load(), id})
		c.history = addHistory(c.history, id, now)
		c.last.Store(id)
	}
}

// event records one event and reports whether the stream is finished.
func (c *client) event(conn *connection, id int64, hasID bool, data []byte) bool {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.begin(conn, now.UnixNano())
	if conn.firstEvent == 0 {
		conn.firstEvent = now.UnixNano()
	}
	c.events++
	last := c.last.Load()
	if !hasID || id <= last {
		c.dups++
		return false
	}
	switch {
	case c.spec.Staff:
		// Positions may skip numbers (a rolled-back transaction takes
		// some), so staff streams count what they got against what the
		// log holds, at the end.
		if id > c.start {
			c.inRange++
		}
	case last == 0:
		c.start = id // the snapshot: the current state, not a live event
	case id != last+1:
		c.gaps += uint64(id - last - 1) // sequence numbers never skip
	}
	if id > c.start {
		if i := bytes.Index(data, fieldAt); i >= 0 {
			rest := data[i+len(fieldAt):]
			if j := bytes.IndexByte(rest, '"'); j > 0 {
				if at, err := time.Parse(time.RFC3339Nano, string(rest[:j])); err == nil {
					c.lat.add(now.Sub(at))
					c.live++
					if c.firstLive == 0 {
						c.firstLive = now.UnixNano()
					}
					c.lastLive = now.UnixNano()
				}
			}
		}
	}
	c.history = addHistory(c.history, id, now.UnixNano())
	final := !c.spec.Staff && bytes.Contains(data, finalTrue)
	if final {
		c.done.Store(true)
	}
	c.last.Store(id) // last, so that whoever sees it sees the rest too
	return final
}
