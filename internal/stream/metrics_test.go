package stream

import (
	"strings"
	"testing"

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
