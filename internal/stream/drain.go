package stream

import (
	"time"
)

// A drainPlan ends a shard's streams one after another, evenly spread over
// a time, so that their browsers reconnect to the other processes a few at
// a time instead of all at once.
type drainPlan struct {
	spread time.Duration
	queue  []*stream // in the order they end
	start  time.Time
	step   time.Duration
	next   int
	timer  *time.Timer
}

// due delivers the time when the next stream is to end; nil (never) when
// no drain is under way.
func (d *drainPlan) due() <-chan time.Time {
	if d.timer == nil {
		return nil
	}
	return d.timer.C
}

func (d *drainPlan) stop() {
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
}

// startDrain ends the shard's live streams over spread, the first at once.
// Streams still replaying are ended at their hand-over, once their replay
// is out.
func (sh *shard) startDrain(spread time.Duration) {
	d := &sh.drain
	d.stop()
	d.spread = spread
	d.queue = d.queue[:0]
	for _, s := range sh.streams {
		if s.out != nil && s.ending == 0 {
			d.queue = append(d.queue, s)
		}
	}
	d.start, d.next = sh.now, 0
	if len(d.queue) > 0 {
		d.step = spread / time.Duration(len(d.queue))
	}
	sh.drainDue()
}

// drainDue ends the streams whose turn has come, and sets the timer for
// the next.
func (sh *shard) drainDue() {
	d := &sh.drain
	for d.next < len(d.queue) {
		at := d.start.Add(time.Duration(d.next) * d.step)
		if at.After(sh.now) {
			if d.timer == nil {
				d.timer = time.NewTimer(at.Sub(sh.now))
			} else {
				d.timer.Reset(at.Sub(sh.now))
			}
			return
		}
		s := d.queue[d.next]
		d.queue[d.next] = nil
		d.next++
		if s.ending == 0 {
			sh.endDrained(s)
		}
	}
	d.stop()
	d.queue = d.queue[:0]
}
