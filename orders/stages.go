package orders

import (
	"fmt"
	"strings"
	"time"
)

// StageDurations says how long an order spends in each stage before the
// worker moves it on.
type StageDurations struct {
	Received       time.Duration
	Cooking        time.Duration
	OutForDelivery time.Duration
}

// DefaultStageDurations are used where nothing else is configured.
var DefaultStageDurations = StageDurations{
	Received:       10 * time.Second,
	Cooking:        30 * time.Second,
	OutForDelivery: 45 * time.Second,
}

// For is the time an order spends in status s, and false for a terminal status.
func (d StageDurations) For(s Status) (time.Duration, bool) {
	switch s {
	case Received:
		return d.Received, true
	case Cooking:
		return d.Cooking, true
	case OutForDelivery:
		return d.OutForDelivery, true
	}
	return 0, false
}

// Remaining is how long an order in status s still has to go, from entering
// s to delivery.
func (d StageDurations) Remaining(s Status) time.Duration {
	var total time.Duration
	for _, stage := range Stages[:3] {
		if stage == s || total > 0 {
			dur, _ := d.For(stage)
			total += dur
		}
	}
	return total
}

// String formats d the way ParseStageDurations reads it.
func (d StageDurations) String() string {
	return fmt.Sprintf("received=%s,cooking=%s,out_for_delivery=%s", d.Received, d.Cooking, d.OutForDelivery)
}

// ParseStageDurations reads "received=10s,cooking=30s,out_for_delivery=45s".
// Stages left out keep their default; an unknown stage, a repeated one, or a
// duration that is not positive is an error that says which.
func ParseStageDurations(s string) (StageDurations, error) {
	d := DefaultStageDurations
	if strings.TrimSpace(s) == "" {
		return d, nil
	}
	seen := make(map[string]bool)
	for part := range strings.SplitSeq(s, ",") {
		name, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || name == "" {
			return d, fmt.Errorf("%q is not stage=duration (for example received=10s)", part)
		}
		if seen[name] {
			return d, fmt.Errorf("stage %q is given twice", name)
		}
		seen[name] = true
		dur, err := time.ParseDuration(value)
		if err != nil {
			return d, fmt.Errorf("stage %s: %q is not a duration like 10s or 1m30s", name, value)
		}
		if dur <= 0 {
			return d, fmt.Errorf("stage %s: duration must be positive, not %s", name, value)
		}
		switch Status(name) {
		case Received:
			d.Received = dur
		case Cooking:
			d.Cooking = dur
		case OutForDelivery:
			d.OutForDelivery = dur
		default:
			return d, fmt.Errorf("unknown stage %q (the stages are received, cooking and out_for_delivery)", name)
		}
	}
	return d, nil
}
