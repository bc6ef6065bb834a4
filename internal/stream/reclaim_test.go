package stream

import (
	"testing"
	"time"
)

// TestMemoryIsReleasedOnceABurstOfStreamsEnds hands streams over in a
// burst and then stops: memory is released once, when the burst has
// ended, and not for a handful of streams. The test moves the reclaimer's
// clock and runs its checks itself.
func TestMemoryIsReleasedOnceABurstOfStreamsEnds(t *testing.T) {
	clock := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	releases := 0
	r := &reclaimer{quiet: time.Hour, least: 50, release: func(int) { releases++ }, now: func() time.Time { return clock }}
	t.Cleanup(func() { r.timer.Stop() })

	for range 10 {
		r.added()
	}
	clock = clock.Add(time.Hour)
	r.check()
	if releases != 0 || r.armed {
		t.Fatalf("after 10 streams and a quiet hour: %d releases, armed %v; want none, not armed", releases, r.armed)
	}

	for i := range 60 {
		r.added()
		clock = clock.Add(time.Minute)
		if i == 30 {
			r.check() // streams still arrive: the burst goes on
		}
	}
	if releases != 0 || !r.armed {
		t.Fatalf("during a burst: %d releases, armed %v; want none, armed", releases, r.armed)
	}
	clock = clock.Add(time.Hour)
	r.check()
	if releases != 1 || r.armed || r.count != 0 {
		t.Errorf("after the burst: %d releases, armed %v, count %d; want 1, not armed, 0", releases, r.armed, r.count)
	}
}
