package stream

import (
	"sync"
	"time"
)

// This file holds what the demo page's controls (DEMO_CONTROLS) ask of the
// hub: end every stream, as a restart would, and make one browser's streams
// go silent, as a connection that died without closing would. Neither is
// for production; each is here so that a learner can break the streams on
// purpose and watch the browser recover.

// EndAll ends every live stream of this process at once and cleanly, each
// told to come back after a random delay up to its retry delay, as Drain
// does but without turning new streams away: every browser reconnects at
// once, with its Last-Event-ID, and resumes. A stream still replaying is
// left alone.
func (h *Hub) EndAll() {
	for _, sh := range h.shards {
		sh.post(job{op: opDrain})
	}
}

// Tagged returns the subscription with a tag, a name the client chose for
// its streams (the demo page's random id), under which Stall finds them.
func (s Subscription) Tagged(tag string) Subscription {
	s.tag = tag
	return s
}

// Stall makes every stream tagged tag that is open now silent: from now
// until it ends, nothing more is written to it, not even a heartbeat, and
// its connection stays open. Its browser sees no bytes, takes the stream
// for dead once its watchdog runs out, and opens a new one, which Stall
// does not touch. An empty tag stalls nothing.
func (h *Hub) Stall(tag string) {
	if tag == "" {
		return
	}
	h.stalls.stall(tag, time.Now())
}

// stalls are the tags that Stall was called for, with when: a stream of
// that tag opened before then is silent.
type stalls struct {
	mu    sync.Mutex
	since map[string]time.Time
}

// stallsKept is how long a stall is remembered: far longer than any
// watchdog takes to find the stream dead and end it.
const stallsKept = 10 * time.Minute

func (st *stalls) stall(tag string, now time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.since == nil {
		st.since = make(map[string]time.Time)
	}
	for t, at := range st.since {
		if now.Sub(at) > stallsKept {
			delete(st.since, t)
		}
	}
	st.since[tag] = now
}

// stalled reports whether s, a tagged stream, is to be silent. The writer
// asks it of tagged streams only, so every other stream costs a look at a
// flag it reads anyway.
func (st *stalls) stalled(s *stream) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	at, ok := st.since[s.tag]
	return ok && !s.opened.After(at)
}
