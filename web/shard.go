package web

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// A shard is a part of the hub's streams with its own lock and, while it
// has attached streams, its own writer goroutine.
type shard struct {
	hub *Hub

	mu      sync.Mutex
	byOrder map[int64]map[*subscription]struct{} // subscriptions of one order
	all     map[*subscription]struct{}           // subscriptions of every order
	nconns  int                                  // attached streams, and those on their way
	queue   []item
	running bool // the writer goroutine runs
	wake    chan struct{}

	// Owned by the writer goroutine.
	conns  []*sseConn           // every attached stream
	staff  []*sseConn           // streams of every order
	orders map[int64][]*sseConn // streams of one order
	ended  []*sseConn           // to take out once the current item is done
	beat   time.Duration        // the shortest heartbeat interval of the streams
}

// An item is one piece of work for a shard's writer.
type item struct {
	published *published    // write a published batch
	attach    *sseConn      // take on a stream...
	backlog   [][]*delivery // ...with what reached it while it replayed
	gone      *sseConn      // the client left
	slow      *sseConn      // a write did not finish in time
	shutdown  *http.Server  // end the streams of a server that shuts down
}

// remove takes s out of the shard and reports whether it was there; sh.mu
// must be held.
func (sh *shard) remove(s *subscription) bool {
	if s.orderID == 0 {
		if _, ok := sh.all[s]; !ok {
			return false
		}
		delete(sh.all, s)
		return true
	}
	set := sh.byOrder[s.orderID]
	if _, ok := set[s]; !ok {
		return false
	}
	delete(set, s)
	if len(set) == 0 {
		delete(sh.byOrder, s.orderID)
	}
	return true
}

// post queues work for the writer and starts it if it is not running;
// sh.mu must be held.
func (sh *shard) post(it item) {
	sh.queue = append(sh.queue, it)
	if !sh.running {
		sh.running = true
		go sh.run()
		return
	}
	select {
	case sh.wake <- struct{}{}:
	default:
	}
}

// postLocked is post for callers that do not hold sh.mu.
func (sh *shard) postLocked(it item) {
	sh.mu.Lock()
	sh.post(it)
	sh.mu.Unlock()
}

// run is the shard's writer. It ends when the shard has no streams and no
// work left.
func (sh *shard) run() {
	var timer *time.Timer
	var work []item
	for {
		sh.mu.Lock()
		work, sh.queue = sh.queue, work[:0]
		if len(work) == 0 && sh.nconns == 0 {
			sh.beat = 0 // the next writer starts afresh, once this one has let go
			sh.running = false
			sh.mu.Unlock()
			if timer != nil {
				timer.Stop()
			}
			return
		}
		sh.mu.Unlock()
		for i := range work {
			sh.handle(&work[i])
			work[i] = item{} // let the batch go
		}
		if len(work) > 0 {
			continue
		}
		if sh.beat > 0 && timer == nil {
			timer = time.NewTimer(sh.tick())
		}
		var tick <-chan time.Time
		if timer != nil {
			tick = timer.C
		}
		select {
		case <-sh.wake:
		case now := <-tick:
			sh.heartbeats(now)
			timer.Reset(sh.tick())
		}
	}
}

// tick is how often the writer looks for streams due a heartbeat: often
// enough that none is more than an eighth of its interval late.
func (sh *shard) tick() time.Duration { return max(sh.beat/8, time.Millisecond) }

func (sh *shard) handle(it *item) {
	switch {
	case it.published != nil:
		sh.deliver(it.published)
	case it.attach != nil:
		sh.add(it.attach, it.backlog)
	case it.gone != nil:
		sh.end(it.gone, false)
	case it.slow != nil:
		sh.end(it.slow, true)
	case it.shutdown != nil:
		for _, c := range sh.conns {
			if c.srv == it.shutdown {
				// The last chunk, so the response ends cleanly.
				sh.write(c, endChunk, 0, time.Time{})
				sh.end(c, false)
			}
		}
	}
	sh.reap()
}

// add takes on an attached stream and sends it what reached it during its
// replay.
func (sh *shard) add(c *sseConn, backlog [][]*delivery) {
	c.all = len(sh.conns)
	sh.conns = append(sh.conns, c)
	if c.orderID == 0 {
		c.kind = len(sh.staff)
		sh.staff = append(sh.staff, c)
	} else {
		list := sh.orders[c.orderID]
		c.kind = len(list)
		sh.orders[c.orderID] = append(list, c)
	}
	if sh.beat == 0 || c.heartbeat < sh.beat {
		sh.beat = c.heartbeat
	}
	c.nextBeat = time.Now().Add(c.heartbeat)
	sent := 0
	for _, b := range backlog {
		if !c.ended {
			sent += sh.deliverOwn(c, b)
		}
	}
	if sent > 0 {
		sh.hub.sent.Add(float64(sent))
	}
	sh.hub.srvMu.Lock()
	shut := sh.hub.servers[c.srv]
	sh.hub.srvMu.Unlock()
	if shut {
		// Its server began to shut down after the stream was handed over
		// and before it got here, so the shutdown did not see it.
		sh.write(c, endChunk, 0, time.Time{})
		sh.end(c, false)
	}
	if stop, ok := watchHangup(c.raw, func() { sh.postLocked(item{gone: c}) }); ok {
		c.unwatch = stop
	} else {
		go c.watch(sh)
	}
}

// deliver writes a batch to every stream of the shard that wants some of
// it. Streams that want the same events get the same bytes.
func (sh *shard) deliver(p *published) {
	sent := 0
	if len(sh.staff) > 0 {
		batch := p.batch
		first, last := batch[0].event.Position, batch[len(batch)-1].event.Position
		var shared []byte // every event, for every stream that has none of them
		for _, c := range sh.staff {
			if c.ended || c.last >= last {
				continue
			}
			if c.last >= first {
				sent += sh.deliverOwn(c, batch) // just attached: it has some already
				continue
			}
			if shared == nil {
				shared = staffChunk(batch)
			}
			c.last = last
			if sh.write(c, shared, len(batch), batch[0].noticed) {
				sent += len(batch)
			}
		}
	}
	if len(sh.orders) > 0 {
		for _, part := range p.parts {
			var shared []byte
			var frames int
			var final bool
			for _, c := range sh.orders[part.orderID] {
				if c.ended {
					continue
				}
				if c.last >= int64(part.batch[0].event.Seq) {
					sent += sh.deliverOwn(c, part.batch)
					continue
				}
				if shared == nil {
					shared, frames, final = orderChunk(part.batch)
				}
				c.last = int64(part.batch[len(part.batch)-1].event.Seq)
				if sh.write(c, shared, frames, part.batch[0].noticed) {
					sent += frames
				}
				if final {
					c.drain = true
					sh.end(c, false)
				}
			}
		}
	}
	if sent > 0 {
		sh.hub.sent.Add(float64(sent))
	}
}

// deliverOwn writes to one stream the events of batch it has not had yet,
// and reports how many.
func (sh *shard) deliverOwn(c *sseConn, batch []*delivery) int {
	if c.orderID == 0 {
		var fresh []*delivery
		for _, d := range batch {
			if d.event.Position > c.last {
				fresh = append(fresh, d)
			}
		}
		if len(fresh) == 0 {
			return 0
		}
		c.last = fresh[len(fresh)-1].event.Position
		if sh.write(c, staffChunk(fresh), len(fresh), fresh[0].noticed) {
			return len(fresh)
		}
		return 0
	}
	var fresh []*delivery
	for _, d := range batch {
		if d.event.OrderID == c.orderID && int64(d.event.Seq) > c.last {
			fresh = append(fresh, d)
		}
	}
	if len(fresh) == 0 {
		return 0
	}
	chunk, frames, final := orderChunk(fresh)
	c.last = int64(fresh[len(fresh)-1].event.Seq)
	ok := sh.write(c, chunk, frames, fresh[0].noticed)
	if final {
		c.drain = true
		sh.end(c, false)
	}
	if ok {
		return frames
	}
	return 0
}

// heartbeats sends a comment to every stream that has been quiet for its
// heartbeat interval. A client that has gone is found here too: the write
// fails, or the watcher hears it.
func (sh *shard) heartbeats(now time.Time) {
	for _, c := range sh.conns {
		if !c.ended && !now.Before(c.nextBeat) {
			sh.write(c, heartbeatChunk, 0, time.Time{})
		}
	}
	sh.reap()
}

// write sends chunk (frames events, heard of at noticed) to c without
// waiting: what the socket does not take at once is left to a flusher
// goroutine, and a stream whose flusher is still busy with earlier batches
// gets this one queued behind them, up to the hub's buffer. It reports
// false if c failed or fell behind.
func (sh *shard) write(c *sseConn, chunk []byte, frames int, noticed time.Time) bool {
	if c.ended {
		return false
	}
	c.nextBeat = time.Now().Add(c.heartbeat)
	c.mu.Lock()
	if c.flushing {
		if c.queued >= sh.hub.buffer {
			c.mu.Unlock()
			sh.end(c, true)
			return false
		}
		c.pending = append(c.pending, chunk)
		c.queued++
		c.mu.Unlock()
		return true
	}
	c.mu.Unlock()
	// A socket with room takes the write at once; one without is a slow
	// client, and waiting for it here would hold up every other stream.
	n, err := c.writeNow(chunk)
	if err != nil {
		sh.end(c, false) // the client has gone
		return false
	}
	if n == len(chunk) {
		if !noticed.IsZero() {
			sh.hub.latency.Observe(time.Since(noticed).Seconds())
		}
		return true
	}
	c.mu.Lock()
	c.flushing = true
	c.pending = append(c.pending[:0], chunk[n:])
	c.queued = 0
	c.noticed = noticed
	c.mu.Unlock()
	go c.flush(sh)
	return true
}

// quickWrite is how long the writer waits for a socket to take a write
// before it hands the rest to a flusher: long enough for the kernel to take
// what fits, short enough that a slow client costs the others little.
const quickWrite = time.Millisecond

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// end takes c out of the shard once the current item is done, and closes
// its connection; slow marks a stream dropped for falling behind.
func (sh *shard) end(c *sseConn, slow bool) {
	if c.ended {
		return
	}
	c.ended = true
	if slow {
		sh.hub.dropped.Add(1)
		sh.hub.log.Warn("dropped a stream that fell behind")
	}
	sh.ended = append(sh.ended, c)
}

// reap takes ended streams out of the shard's lists and closes them. A
// stream with a flusher still writing its terminal event is closed by the
// flusher once the event is out; any other is closed now, even mid-write:
// its client resumes from the last event it got.
func (sh *shard) reap() {
	if len(sh.ended) == 0 {
		return
	}
	for _, c := range sh.ended {
		sh.conns = unlink(sh.conns, c.all, func(m *sseConn, i int) { m.all = i })
		if c.orderID == 0 {
			sh.staff = unlink(sh.staff, c.kind, func(m *sseConn, i int) { m.kind = i })
		} else {
			list := unlink(sh.orders[c.orderID], c.kind, func(m *sseConn, i int) { m.kind = i })
			if len(list) == 0 {
				delete(sh.orders, c.orderID)
			} else {
				sh.orders[c.orderID] = list
			}
		}
		if c.unwatch != nil {
			c.unwatch()
		}
		c.mu.Lock()
		c.closed = true
		wait := c.flushing && c.drain
		c.mu.Unlock()
		if !wait {
			c.conn.Close()
		}
		sh.hub.open.Add(-1)
	}
	sh.mu.Lock()
	sh.nconns -= len(sh.ended)
	sh.mu.Unlock()
	clear(sh.ended)
	sh.ended = sh.ended[:0]
}

// unlink removes list[i], moving the last element into its place.
func unlink(list []*sseConn, i int, moved func(*sseConn, int)) []*sseConn {
	last := len(list) - 1
	if i != last {
		list[i] = list[last]
		moved(list[i], i)
	}
	list[last] = nil
	return list[:last]
}
