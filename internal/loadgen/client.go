package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
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
	// StaffLast is the position every staff stream must reach;
	// StaffExpected is how many events the log holds after the streams'
	// starting cursor up to it.
	StaffLast     int64 `json:"staff_last"`
	StaffExpected int64 `json:"staff_expected"`
	// OrderFinal is the sequence number each order stream must reach (its
	// terminal event), 0 when order streams are not expected to finish.
	OrderFinal int           `json:"order_final"`
	Timeout    time.Duration `json:"timeout"`
}

// childReport is what a child sends back.
type childReport struct {
	Opened     int    `json:"opened"`
	Failed     int    `json:"failed"`
	FirstError string `json:"first_error,omitempty"`
	Events     uint64 `json:"events"`     // events received, live and replayed
	Live       uint64 `json:"live"`       // events measured for latency
	Duplicates uint64 `json:"duplicates"` // an id not above the last one
	Lost       uint64 `json:"lost"`       // events that should have come and did not
	Reconnects uint64 `json:"reconnects"`
	Finished   int    `json:"finished"` // order streams that got their terminal event and ended
	Heartbeats uint64 `json:"heartbeats"`
	Reached    int64  `json:"reached"`    // unix ns when every stream had what the command asked; 0: never
	FirstLive  int64  `json:"first_live"` // unix ns
	LastLive   int64  `json:"last_live"`
	Latency    Hist   `json:"latency"` // of live events since the previous report
}

// A client is one stream's reader.
type client struct {
	spec  streamSpec
	src   net.IP
	start int64 // the id after which events are live: the cursor given, or the snapshot's

	lat  *sharedHist
	last atomic.Int64 // the last id received
	done atomic.Bool  // an order stream got its terminal event

	mu        sync.Mutex
	events    uint64
	dups      uint64
	gaps      uint64 // order streams: sequence numbers skipped
	inRange   int64  // staff streams: distinct positions after start
	live      uint64
	firstLive int64
	lastLive  int64
	beats     uint64
	reconn    uint64
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
	next := time.Now()
	for i, spec := range cfg.Streams {
		c := &client{spec: spec, src: net.ParseIP(cfg.Sources[i%len(cfg.Sources)]), lat: lat}
		if spec.LastEventID != "" {
			c.start, _ = strconv.ParseInt(spec.LastEventID, 10, 64)
			c.last.Store(c.start)
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
		deadline := time.Now().Add(cmd.Timeout)
		for time.Now().Before(deadline) && !allDone(clients, cmd) {
			time.Sleep(5 * time.Millisecond)
		}
		rep := ready
		if allDone(clients, cmd) {
			rep.Reached = time.Now().UnixNano()
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

// report adds the client's counts to rep, and moves its latencies there.
func (c *client) report(rep *childReport, cmd command) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rep.Events += c.events
	rep.Live += c.live
	rep.Duplicates += c.dups
	rep.Reconnects += c.reconn
	rep.Heartbeats += c.beats
	last := c.last.Load()
	if c.firstLive != 0 && (rep.FirstLive == 0 || c.firstLive < rep.FirstLive) {
		rep.FirstLive = c.firstLive
	}
	rep.LastLive = max(rep.LastLive, c.lastLive)
	switch {
	case c.spec.Staff:
		// Every event in the range must have come exactly once; ids are
		// checked to rise, so what is missing is lost.
		rep.Lost += uint64(max(cmd.StaffExpected-c.inRange, 0))
	case cmd.OrderFinal > 0:
		if c.done.Load() {
			rep.Finished++
		}
		rep.Lost += uint64(max(int64(cmd.OrderFinal)-last, 0)) + c.gaps
	default:
		rep.Lost += c.gaps
	}
}

func allDone(clients []*client, cmd command) bool {
	for _, c := range clients {
		done := c.spec.Staff && c.last.Load() >= cmd.StaffLast || !c.spec.Staff && (cmd.OrderFinal == 0 || c.done.Load())
		if !done {
			return false
		}
	}
	return true
}

// run keeps the stream open, reconnecting after the retry delay as a
// browser would, until ctx ends or an order stream finishes. opened is
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
		case <-time.After(time.Second):
		}
	}
}

// connect makes one connection and reads it until it ends.
func (c *client) connect(ctx context.Context, cfg childConfig, opened func(error)) error {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: c.src}, Timeout: 10 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
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
	if _, err := conn.Write(req.Bytes()); err != nil {
		return err
	}
	br := bufio.NewReaderSize(conn, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNoContent {
		c.done.Store(true)
		opened(nil)
		return nil
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		return fmt.Errorf("%s: %s %q", c.spec.Path, resp.Status, resp.Header.Get("Content-Type"))
	}
	opened(nil)
	return c.read(bufio.NewReaderSize(resp.Body, 4096))
}

var (
	fieldID    = []byte("id: ")
	fieldEvent = []byte("event: ")
	fieldData  = []byte("data: ")
	beatName   = []byte("heartbeat")
	fieldAt    = []byte(`"at":"`)
	finalTrue  = []byte(`"final":true`)
)

// read parses the event stream, checking each event's id against the last.
func (c *client) read(r *bufio.Reader) error {
	var id int64
	var data []byte
	hasID, beat := false, false
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return err // no frame of ours is that long
			}
			return err
		}
		line = bytes.TrimSuffix(line, []byte("\n"))
		switch {
		case len(line) == 0:
			switch {
			case beat:
				c.heartbeat()
			case data != nil:
				if c.event(id, hasID, data) {
					return nil
				}
			}
			data, hasID, beat = nil, false, false
		case line[0] == ':':
			c.heartbeat() // a server's heartbeat before they were events
		case bytes.HasPrefix(line, fieldEvent):
			beat = bytes.Equal(line[len(fieldEvent):], beatName)
		case bytes.HasPrefix(line, fieldID):
			id, _ = strconv.ParseInt(string(line[len(fieldID):]), 10, 64)
			hasID = true
		case bytes.HasPrefix(line, fieldData):
			data = append(data[:0], line[len(fieldData):]...)
		}
	}
}

// heartbeat counts a heartbeat.
func (c *client) heartbeat() {
	c.mu.Lock()
	c.beats++
	c.mu.Unlock()
}

// event records one event and reports whether the stream is finished.
func (c *client) event(id int64, hasID bool, data []byte) bool {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
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
	final := !c.spec.Staff && bytes.Contains(data, finalTrue)
	if final {
		c.done.Store(true)
	}
	c.last.Store(id) // last, so that whoever sees it sees the rest too
	return final
}
