package ratelimit

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// A Rate is how many attempts a client may make: Burst at once, then one
// every Every. The zero Rate limits nothing.
type Rate struct {
	Burst int
	Every time.Duration
}

// Off reports whether r limits nothing.
func (r Rate) Off() bool { return r.Burst == 0 || r.Every == 0 }

// String writes r as Parse reads it.
func (r Rate) String() string {
	if r.Off() {
		return "off"
	}
	if time.Minute%r.Every == 0 {
		return fmt.Sprintf("%d/min,burst=%d", time.Minute/r.Every, r.Burst)
	}
	return fmt.Sprintf("1/%s,burst=%d", r.Every, r.Burst)
}

// NewLimiter returns a Limiter of r, or nil when r limits nothing.
func (r Rate) NewLimiter() *Limiter {
	if r.Off() {
		return nil
	}
	return New(r.Burst, r.Every)
}

// Parse reads a rate such as "10/min,burst=20": ten a minute, after a
// burst of twenty. The units are s, min and h (also sec, second, m,
// minute, hour); "1/6s" is one every six seconds. Without burst=, the burst
// is the number before the slash. "off" limits nothing.
func Parse(s string) (Rate, error) {
	s = strings.TrimSpace(s)
	if s == "off" {
		return Rate{}, nil
	}
	spec, burstText, hasBurst := strings.Cut(s, ",")
	countText, per, ok := strings.Cut(strings.TrimSpace(spec), "/")
	if !ok {
		return Rate{}, errors.New("want a rate such as 10/min,burst=20, or off")
	}
	count, err := strconv.Atoi(strings.TrimSpace(countText))
	if err != nil || count < 1 {
		return Rate{}, fmt.Errorf("%q is not a whole number of attempts, at least 1", countText)
	}
	period, err := parsePeriod(strings.TrimSpace(per))
	if err != nil {
		return Rate{}, err
	}
	r := Rate{Burst: count, Every: period / time.Duration(count)}
	if r.Every <= 0 {
		return Rate{}, fmt.Errorf("%d per %s is too many to count", count, per)
	}
	if hasBurst {
		v, ok := strings.CutPrefix(strings.TrimSpace(burstText), "burst=")
		n, err := strconv.Atoi(v)
		if !ok || err != nil || n < 1 {
			return Rate{}, fmt.Errorf("%q: want burst= and a whole number, at least 1", burstText)
		}
		r.Burst = n
	}
	return r, nil
}

// parsePeriod reads the part after the slash: a unit, or a duration.
func parsePeriod(s string) (time.Duration, error) {
	switch s {
	case "s", "sec", "second":
		return time.Second, nil
	case "m", "min", "minute":
		return time.Minute, nil
	case "h", "hour":
		return time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a unit (s, min, h) or a positive duration", s)
	}
	return d, nil
}
