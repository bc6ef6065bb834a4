package stream

import (
	"slices"
	"sync"
	"time"

	"github.com/ordertracker/ordertracker/internal/sse"
)

// A shard is a part of the hub's streams with its own lock and, while it
// has streams, its own writer goroutine, which alone touches the streams'
// lists and cursors.
type shard struct {
	hub   *Hub
	index int // in hub.shards

	mu      sync.Mutex
	queue   []job
	count   int  // streams added and not yet reaped
	running bool // the writer goroutine runs
	wake    chan struct{}

	// Owned by the writer goroutine.
	streams []*stream            // every stream
	staff   []*stream            // streams of all orders
	byToken map[string][]*stream // streams of one order, and of several, under each of their tokens
	ended   []*stream            // to take out once the current job is done
	now     time.Time            // when the current job began
	clock   coarseClock          // for the send latency
	drain   drainPlan
}

// A job is one piece of work for a shard's writer.
type job struct {
	op     op
	stream *stream       // opAdd, opHandOver, opEnd
	owner  string        // opEndOwner
	out    transport     // opHandOver
	batch  *published    // opPublish
	why    ending        // opEnd
	spread time.Duration // opDrain
}

type op uint8

const (
	opPublish  op = iota + 1 // write a batch to every stream that wants it
	opAdd                    // take on a stream that is about to replay: hold what reaches it
	opHandOver               // a stream's replay is out: write what it held, then everything
	opEnd                    // end a stream
	opDrain                  // end every stream, spread over a time
	opEndOwner               // end every stream of an owner
)

// post queues work for the writer and starts the writer if it is not
// running.
func (sh *shard) post(j job) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.queue = append(sh.queue, j)
	if j.op == opAdd {
		sh.count++
	}
	sh.start()
}

// postIfBusy is post for work that concerns only the streams the shard
// has: with none, it queues nothing.
func (sh *shard) postIfBusy(j job) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.count == 0 {
		return
	}
	sh.queue = append(sh.queue, j)
	sh.start()
}

// start starts the writer, or wakes it; sh.mu must be held.
func (sh *shard) start() {
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

// run is the shard's writer. It ends when the shard has no streams and no
// work left.
func (sh *shard) run() {
	beat := time.NewTicker(sh.beatCheck())
	defer beat.Stop()
	var work []job
	for {
		sh.mu.Lock()
		work, sh.queue = sh.queue, work[:0]
		if len(work) == 0 && sh.count == 0 {
			// Everything the writer owns is let go before it says it has
			// stopped: the next post starts another writer at once.
			sh.drain.stop()
			sh.running = false
			sh.mu.Unlock()
			return
		}
		sh.mu.Unlock()
		if len(work) > 0 {
			sh.now = time.Now()
			sh.clock.set(sh.now)
			for i := range work {
				sh.do(&work[i])
				work[i] = job{} // let the batch go
			}
			sh.reap()
			continue
		}
		select {
		case <-sh.wake:
		case now := <-beat.C:
			sh.now = now
			sh.clock.set(now)
			sh.heartbeats()
			sh.reap()
		case now := <-sh.drain.due():
			sh.now = now
			sh.clock.set(now)
			sh.drainDue()
			sh.reap()
		}
	}
}

// beatCheck is how often the writer looks for streams due a heartbeat:
// often enough that none is more than an eighth of the interval late.
func (sh *shard) beatCheck() time.Duration { return max(sh.hub.opts.Heartbeat/8, time.Millisecond) }

func (sh *shard) do(j *job) {
	switch j.op {
	case opPublish:
		sh.deliver(j.batch)
	case opAdd:
		sh.add(j.stream)
	case opHandOver:
		sh.handOver(j.stream, j.out)
	case opEnd:
		sh.end(j.stream, j.why)
	case opDrain:
		sh.startDrain(j.spread)
	case opEndOwner:
		for _, s := range sh.streams {
			if s.owner == j.owner {
				sh.end(s, endOwner)
			}
		}
	}
}

// add takes on a stream that is about to replay the log.
func (sh *shard) add(s *stream) {
	s.all = len(sh.streams)
	sh.streams = append(sh.streams, s)
	switch s.cursor.kind {
	case allOrders:
		s.peer = len(sh.staff)
		sh.staff = append(sh.staff, s)
	case oneOrder:
		list := sh.byToken[s.cursor.token]
		s.peer = len(list)
		sh.byToken[s.cursor.token] = append(list, s)
	case someOrders:
		for _, f := range s.cursor.set.orders {
			sh.byToken[f.token] = append(sh.byToken[f.token], s)
		}
	}
}

// hold keeps a batch that reached s while it replayed, to be written after
// the replay; a stream that falls a whole buffer behind while it replays is
// ended at its hand-over.
func (sh *shard) hold(s *stream, batch []*delivery) {
	if s.overflow {
		return
	}
	if len(s.held) >= sh.hub.opts.Buffer {
		s.overflow = true
		s.held = nil
		return
	}
	s.held = append(s.held, batch)
}

// handOver makes a stream whose replay is out live: it writes what reached
// the stream meanwhile, and from now on writes it every batch it wants.
func (sh *shard) handOver(s *stream, out transport) {
	s.out = out
	if s.ending != 0 {
		// It has been let go already: by its handler, or by EndOwner
		// while it replayed, which ends it as cleanly as it would have
		// ended live.
		out.close(s.ending.clean())
		return
	}
	s.nextBeat = sh.now.Add(sh.hub.opts.Heartbeat)
	if t, ok := s.out.(*hijacked); ok {
		t.watch(func() { sh.post(job{op: opEnd, stream: s, why: endGone}) })
	}
	switch {
	case s.overflow:
		sh.end(s, endSlow)
	case sh.hub.Draining():
		sh.endDrained(s)
	default:
		sent := 0
		for _, b := range s.held {
			sent += sh.writeFresh(s, b)
		}
		sh.hub.metrics.sent.Add(float64(sent))
	}
	s.held = nil
}

// deliver writes a batch to every stream of the shard that wants some of
// it. Streams that want the same events get the same bytes.
func (sh *shard) deliver(p *published) {
	sent := 0
	if len(sh.staff) > 0 {
		first, last := p.batch[0].event.Position, p.batch[len(p.batch)-1].event.Position
		var shared payload // every event, for every stream that has none of them
		for _, s := range sh.staff {
			switch {
			case s.ending != 0:
			case s.out == nil:
				sh.hold(s, p.batch)
			case s.cursor.last >= last:
			case s.cursor.last >= first:
				sent += sh.writeFresh(s, p.batch) // it has some of them already
			default:
				// None of them: the same rule, applied to the batch at once.
				if shared.chunk == nil {
					shared = staffPayload(p.batch)
				}
				s.cursor.last = last
				if sh.write(s, shared, p.batch[0].event.Noticed) {
					sent += len(p.batch)
				}
			}
		}
	}
	var several []*stream // streams of several orders that want some of the batch
	for _, part := range p.parts {
		list := sh.byToken[part.token]
		if len(list) == 0 {
			continue
		}
		var shared payload
		var frames int
		var final bool
		first, last := int64(part.batch[0].event.Seq), int64(part.batch[len(part.batch)-1].event.Seq)
		for _, s := range list {
			switch {
			case s.ending != 0:
			case s.cursor.kind == someOrders:
				if s.mark != p {
					s.mark = p
					several = append(several, s)
				}
			case s.out == nil:
				sh.hold(s, part.batch)
			case s.cursor.ended, s.cursor.last >= last:
			case s.cursor.last >= first:
				sent += sh.writeFresh(s, part.batch)
			default:
				if shared.chunk == nil {
					shared, frames, final = orderPayload(part.batch)
				}
				s.cursor.last = int64(part.batch[frames-1].event.Seq)
				s.cursor.ended = final
				if sh.write(s, shared, part.batch[0].event.Noticed) {
					sent += frames
				}
				if final {
					sh.end(s, endFinished)
				}
			}
		}
	}
	for _, s := range several {
		if s.out == nil {
			sh.hold(s, p.batch)
			continue
		}
		sent += sh.writeFresh(s, p.batch)
	}
	if sent > 0 {
		sh.hub.metrics.sent.Add(float64(sent))
	}
}

// staffPayload is the payload of the staff frames of batch.
func staffPayload(batch []*delivery) payload {
	frames := make([][]byte, len(batch))
	for i, d := range batch {
		frames[i] = d.staffFrame()
	}
	return newPayload(frames...)
}

// orderPayload is the payload of the order frames of part, all of one
// order, up to and with its terminal event.
func orderPayload(part []*delivery) (p payload, frames int, final bool) {
	list := make([][]byte, 0, len(part))
	for _, d := range part {
		list = append(list, d.orderFrame())
		if d.event.Status.Terminal() {
			final = true
			break
		}
	}
	return newPayload(list...), len(list), final
}

// writeFresh writes to s the events of batch it has yet to send, and
// reports how many; after an event that finishes the stream, it ends it.
func (sh *shard) writeFresh(s *stream, batch []*delivery) int {
	frames, noticed := s.freshFrames(batch)
	if len(frames) == 0 {
		return 0
	}
	ok := sh.write(s, newPayload(frames...), noticed)
	if s.cursor.finished() {
		sh.end(s, endFinished)
	}
	if !ok {
		return 0
	}
	return len(frames)
}

// write sends p to s without waiting: what the connection does not take at
// once is left to a flusher, and a stream whose flusher is still busy gets
// p queued behind, up to the hub's Buffer. It reports false if s has
// failed or fell too far behind, and ends it.
func (sh *shard) write(s *stream, p payload, noticed time.Time) bool {
	if s.ending != 0 {
		return false
	}
	s.nextBeat = sh.now.Add(sh.hub.opts.Heartbeat)
	if s.tagged && sh.hub.stalls.stalled(s) {
		return true // silenced by the demo's Stall: the bytes are dropped
	}
	if s.hops && !noticed.IsZero() {
		// Live events, to a stream that wants to know when they were
		// written: its own bytes, unlike every other stream's.
		p = p.withHop(time.Now())
	}
	b := s.out.form(p)
	if queued, tooSlow := s.enqueue(b, noticed); tooSlow {
		sh.end(s, endSlow)
		return false
	} else if queued {
		return true
	}
	n, err := s.out.writeNow(b)
	if err != nil {
		sh.end(s, endGone)
		return false
	}
	if n == len(b) {
		sh.hub.metrics.wrote(sh.index, noticed, sh.clock.read())
		return true
	}
	// A socket without room is a slow client, and waiting for it here
	// would hold up every other stream.
	s.flushFrom(b[n:], noticed)
	return true
}

// A coarseClock is the time a shard's writer gives the send-latency
// histogram: it reads the clock once every clockReads writes, not once a
// write. On a virtual machine a read of the clock costs about 1 % of a
// fan-out's CPU, as much as all the rest of the histogram. A write is
// observed as at most clockReads-1 writes earlier than it was, about a
// tenth of a millisecond in a fan-out, a fifth of the smallest bucket. It
// is set when the writer takes up work, so that it is never earlier than
// the events it is asked about were heard of.
type coarseClock struct {
	at   time.Time
	left int // reads of at before the clock is read again
}

const clockReads = 8

func (c *coarseClock) set(now time.Time) { c.at, c.left = now, clockReads }

func (c *coarseClock) read() time.Time {
	if c.left == 0 {
		c.set(time.Now())
	}
	c.left--
	return c.at
}

// heartbeats sends a heartbeat event to every live stream that has been
// quiet for the heartbeat interval. A client that has gone is found here too: the
// write fails.
func (sh *shard) heartbeats() {
	for _, s := range sh.streams {
		if s.out != nil && s.ending == 0 && !sh.now.Before(s.nextBeat) {
			sh.write(s, sh.hub.heartbeat, time.Time{})
		}
	}
}

// end marks s to be taken out once the current job is done.
func (sh *shard) end(s *stream, why ending) {
	if s.ending != 0 {
		return
	}
	s.ending = why
	if why == endSlow {
		sh.hub.metrics.dropped.Inc()
		sh.hub.log.Warn("dropped a stream that fell behind")
	}
	sh.ended = append(sh.ended, s)
}

// endDrained tells s when to come back, and ends it cleanly.
func (sh *shard) endDrained(s *stream) {
	retry := sh.hub.drainRetry(sh.drain.spread)
	sh.write(s, newPayload(sse.AppendRetry(nil, retry)), time.Time{})
	sh.end(s, endDrained)
}

// reap takes the streams that ended out of the shard's lists and lets them
// go.
func (sh *shard) reap() {
	if len(sh.ended) == 0 {
		return
	}
	for _, s := range sh.ended {
		sh.streams = unlink(sh.streams, s.all, func(m *stream, i int) { m.all = i })
		switch s.cursor.kind {
		case allOrders:
			sh.staff = unlink(sh.staff, s.peer, movedPeer)
		case oneOrder:
			sh.forget(s.cursor.token, unlink(sh.byToken[s.cursor.token], s.peer, movedPeer))
		case someOrders:
			// Streams of several orders are few; they keep no index.
			for _, f := range s.cursor.set.orders {
				list := sh.byToken[f.token]
				if i := slices.Index(list, s); i >= 0 {
					sh.forget(f.token, unlink(list, i, movedPeer))
				}
			}
		}
		s.release()
		sh.hub.ended(s)
	}
	sh.mu.Lock()
	sh.count -= len(sh.ended)
	sh.mu.Unlock()
	clear(sh.ended)
	sh.ended = sh.ended[:0]
}

// forget stores the list of streams under token, or removes token when the
// list is empty.
func (sh *shard) forget(token string, list []*stream) {
	if len(list) == 0 {
		delete(sh.byToken, token)
		return
	}
	sh.byToken[token] = list
}

// movedPeer tells a stream its new index in a list of its peers.
func movedPeer(m *stream, i int) { m.peer = i }

// unlink removes list[i], moving the last element into its place and
// telling it its new index.
func unlink(list []*stream, i int, moved func(*stream, int)) []*stream {
	last := len(list) - 1
	if i != last {
		list[i] = list[last]
		moved(list[i], i)
	}
	list[last] = nil
	return list[:last]
}
