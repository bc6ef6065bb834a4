package stream

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestAShardedHistogramIsCollectedAsOne: what every shard observed, summed
// into one histogram, with every bucket whether or not anything fell in it.
func TestAShardedHistogramIsCollectedAsOne(t *testing.T) {
	h := newShardedHistogram(3, prometheus.HistogramOpts{Name: "test_seconds", Help: "A test.", Buckets: []float64{.1, 1}})
	h.parts[0].Observe(.05)
	h.parts[0].Observe(.5)
	h.parts[2].Observe(.5)
	h.parts[2].Observe(5)
	want := `
# HELP test_seconds A test.
# TYPE test_seconds histogram
test_seconds_bucket{le="0.1"} 1
test_seconds_bucket{le="1"} 3
test_seconds_bucket{le="+Inf"} 4
test_seconds_sum 6.05
test_seconds_count 4
`
	if err := testutil.CollectAndCompare(h, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

// TestTheSendLatencyIsOneHistogramOfEveryShard: the hub's collectors
// register as they are, and a write observed by any shard is in the one
// histogram a scrape sees.
func TestTheSendLatencyIsOneHistogramOfEveryShard(t *testing.T) {
	h := NewHub(Options{Logger: quiet})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(h.Collectors()...)
	now := time.Now()
	for _, sh := range h.shards {
		h.metrics.wrote(sh.index, now.Add(-time.Millisecond), now)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "ordertracker_stream_send_latency_seconds" {
			if got, want := f.GetMetric()[0].GetHistogram().GetSampleCount(), uint64(len(h.shards)); got != want {
				t.Errorf("the histogram counts %d writes, want %d", got, want)
			}
			return
		}
	}
	t.Error("no ordertracker_stream_send_latency_seconds in the scrape")
}

// TestTheWritersClockIsReadOnceEveryFewWrites: the time the writer gives the
// histogram is the time it was set to for clockReads writes, then the
// clock's again, and never earlier than it was set to.
func TestTheWritersClockIsReadOnceEveryFewWrites(t *testing.T) {
	var c coarseClock
	set := time.Now().Add(-time.Hour)
	for range 2 {
		c.set(set)
		for i := range clockReads {
			if got := c.read(); !got.Equal(set) {
				t.Fatalf("read %d gave %v, want %v, the time it was set to", i+1, got, set)
			}
		}
		if got := c.read(); !got.After(set.Add(time.Hour - time.Minute)) {
			t.Fatalf("read %d gave %v, not the clock's time", clockReads+1, got)
		}
		if got := c.read(); got.Before(set) {
			t.Fatalf("read %d gave %v, before the time it was set to", clockReads+2, got)
		}
	}
}
