package loadgen

import (
	"fmt"
	"math/bits"
	"time"
)

// subBuckets is how many buckets each power of two of microseconds is cut
// into: values are kept to within 1/128 (under 1%) of what they were.
const subBuckets = 128

// histBuckets covers up to 2^40 µs, far beyond any run.
const histBuckets = subBuckets + 33*subBuckets

// A Hist counts durations in log-linear buckets of microseconds, like an
// HDR histogram: exact below 128 µs, within 1% above. The zero value is
// empty and ready; Hists from several processes add up with Merge.
type Hist struct {
	Counts map[int]uint64 `json:"counts"` // bucket -> count; sparse, for sending between processes
	dense  []uint64
}

func bucketOf(us uint64) int {
	if us < subBuckets {
		return int(us)
	}
	shift := bits.Len64(us) - 8 // us >> shift is in [128, 256)
	return subBuckets + shift*subBuckets + int(us>>shift) - subBuckets
}

// lowerBound is the smallest value, in µs, that falls in bucket b.
func lowerBound(b int) uint64 {
	if b < subBuckets {
		return uint64(b)
	}
	b -= subBuckets
	shift := b / subBuckets
	return uint64(subBuckets+b%subBuckets) << shift
}

// Add counts one duration; negative ones count as zero.
func (h *Hist) Add(d time.Duration) {
	if h.dense == nil {
		h.dense = make([]uint64, histBuckets)
	}
	us := max(d.Microseconds(), 0)
	b := min(bucketOf(uint64(us)), histBuckets-1)
	h.dense[b]++
}

// pack moves the counts into the sparse map, for JSON.
func (h *Hist) pack() {
	if h.Counts == nil {
		h.Counts = make(map[int]uint64)
	}
	for b, n := range h.dense {
		if n > 0 {
			h.Counts[b] += n
		}
	}
	h.dense = nil
}

// Merge adds the counts of o to h.
func (h *Hist) Merge(o *Hist) {
	o.pack()
	if h.dense == nil {
		h.dense = make([]uint64, histBuckets)
	}
	for b, n := range o.Counts {
		h.dense[b] += n
	}
}

// Count is how many durations h holds.
func (h *Hist) Count() uint64 {
	var n uint64
	for _, c := range h.dense {
		n += c
	}
	for _, c := range h.Counts {
		n += c
	}
	return n
}

// Quantile returns the q-quantile (0 < q <= 1), as the upper end of its
// bucket, so it never flatters.
func (h *Hist) Quantile(q float64) time.Duration {
	h.pack()
	total := h.Count()
	if total == 0 {
		return 0
	}
	rank := uint64(q * float64(total))
	if rank == 0 {
		rank = 1
	}
	var seen uint64
	for b := range histBuckets {
		seen += h.Counts[b]
		if seen >= rank {
			return time.Duration(lowerBound(b+1)) * time.Microsecond
		}
	}
	return time.Duration(lowerBound(histBuckets)) * time.Microsecond
}

// Max is the upper end of the highest bucket in use.
func (h *Hist) Max() time.Duration {
	h.pack()
	top := -1
	for b := range h.Counts {
		top = max(top, b)
	}
	if top < 0 {
		return 0
	}
	return time.Duration(lowerBound(top+1)) * time.Microsecond
}

// String is the usual summary: count, p50, p90, p99, p99.9, max.
func (h *Hist) String() string {
	return fmt.Sprintf("n=%d p50=%s p90=%s p99=%s p99.9=%s max=%s", h.Count(),
		round(h.Quantile(.5)), round(h.Quantile(.9)), round(h.Quantile(.99)), round(h.Quantile(.999)), round(h.Max()))
}

func round(d time.Duration) time.Duration {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond)
	case d < time.Second:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Millisecond)
}
