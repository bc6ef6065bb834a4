package stream

import (
	"log/slog"
	"runtime/debug"
	"sync"
	"time"
)

// A reclaimer gives memory back to the system once a burst of streams has
// been handed over.
//
// Handing a stream over from net/http leaves about 10 KiB of net/http's
// buffers behind as garbage: Hijack passes on the connection's 4 KiB read and
// write buffers, which never return to net/http's pools, and the
// response's 2 KiB buffer goes with them. What stays live is under 2 KiB a
// stream. When 20,000 clients connect at once (after a deploy, or a
// network blip), that is some 200 MiB of garbage, which the runtime keeps,
// with the memory under it, until its next collection: on a process that
// then sits idle, up to two minutes away, holding three times the memory
// its streams need. So once streams stop arriving, the hub has the runtime
// collect and return the memory at once, once per burst.
type reclaimer struct {
	quiet   time.Duration // no new stream for this long ends a burst
	least   int           // streams that make a burst worth a collection
	release func(n int)   // returns the memory after a burst of n streams
	now     func() time.Time

	mu    sync.Mutex
	count int       // streams handed over since the last check that ended a burst
	last  time.Time // when the latest was
	armed bool      // a check is due
	timer *time.Timer
}

func newReclaimer(log *slog.Logger) *reclaimer {
	release := func(n int) {
		start := time.Now()
		debug.FreeOSMemory()
		log.Info("returned memory to the system after a burst of new streams", "streams", n, "took", time.Since(start))
	}
	return &reclaimer{quiet: 500 * time.Millisecond, least: 1000, release: release, now: time.Now}
}

// added counts a stream handed over.
func (r *reclaimer) added() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.count++
	r.last = r.now()
	if r.armed {
		return
	}
	r.armed = true
	if r.timer == nil {
		r.timer = time.AfterFunc(r.quiet, r.check)
	} else {
		r.timer.Reset(r.quiet)
	}
}

// check releases memory if a big enough burst has ended, and waits for
// the end of one that has not.
func (r *reclaimer) check() {
	r.mu.Lock()
	if wait := r.quiet - r.now().Sub(r.last); wait > 0 {
		r.timer.Reset(wait)
		r.mu.Unlock()
		return
	}
	n := r.count
	r.count, r.armed = 0, false
	r.mu.Unlock()
	if n >= r.least {
		r.release(n)
	}
}
