package loadgen

import (
	"testing"
	"time"
)

func TestHistQuantilesAreWithinOnePercentAndNeverFlatter(t *testing.T) {
	var a, b Hist
	for i := 1; i <= 1000; i++ {
		d := time.Duration(i) * time.Millisecond
		if i%2 == 0 {
			a.Add(d)
		} else {
			b.Add(d)
		}
	}
	b.pack() // as it arrives from a child process
	var h Hist
	h.Merge(&a)
	h.Merge(&b)
	if got := h.Count(); got != 1000 {
		t.Fatalf("count = %d, want 1000", got)
	}
	for _, tt := range []struct {
		q    float64
		want time.Duration
	}{{.5, 500 * time.Millisecond}, {.99, 990 * time.Millisecond}, {1, time.Second}} {
		got := h.Quantile(tt.q)
		if got < tt.want || got > tt.want+tt.want/100 {
			t.Errorf("p%g = %s, want %s to 1%% above it", tt.q*100, got, tt.want)
		}
	}
	for _, us := range []uint64{0, 1, 127, 128, 255, 256, 1000, 123456, 1 << 30} {
		if lo := lowerBound(bucketOf(us)); lo > us || us-lo > us/128 {
			t.Errorf("%d µs falls in a bucket starting at %d", us, lo)
		}
	}
}
