package ratelimit

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"
)

func TestAllowGivesEachKeyABurstThenOneAttemptPerInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New(3, time.Minute)
		for i := range 3 {
			if ok, _ := l.Allow("a"); !ok {
				t.Fatalf("attempt %d of the burst was refused", i+1)
			}
		}
		ok, wait := l.Allow("a")
		if ok {
			t.Fatal("the attempt after the burst was allowed")
		}
		if wait <= 0 || wait > time.Minute {
			t.Errorf("retry after %v, want more than 0 and at most a minute", wait)
		}
		if ok, _ := l.Allow("b"); !ok {
			t.Error("another key was refused: keys must not share a bucket")
		}

		time.Sleep(time.Minute)
		if ok, _ := l.Allow("a"); !ok {
			t.Error("after an interval, one more attempt was refused")
		}
		if ok, _ := l.Allow("a"); ok {
			t.Error("after one interval, two more attempts were allowed")
		}
	})
}

func TestSweepForgetsOnlyFullBuckets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New(2, time.Minute)
		l.Allow("busy")
		l.Allow("busy")
		for i := range minSweep - 1 {
			l.Allow(fmt.Sprint("idle", i))
		}
		time.Sleep(time.Minute) // every idle bucket is full again; busy has one token
		l.Allow("newcomer")     // the map is at sweepAt: this sweeps
		l.mu.Lock()
		n := len(l.buckets)
		_, busyKept := l.buckets["busy"]
		l.mu.Unlock()
		if n != 2 || !busyKept {
			t.Errorf("after the sweep %d buckets remain (busy kept: %v), want 2: busy and newcomer", n, busyKept)
		}
		l.Allow("busy")
		if ok, _ := l.Allow("busy"); ok {
			t.Error("the sweep gave a bucket that was not full a fresh burst")
		}
	})
}

func TestAddrKey(t *testing.T) {
	for _, c := range []struct{ remoteAddr, want string }{
		{"192.0.2.7:51234", "192.0.2.7"},
		{"[::ffff:192.0.2.7]:51234", "192.0.2.7"},
		{"[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2::1]:80", "2001:db8:1:2::/64"},
		{"[fe80::1%eth0]:80", "fe80::/64"},
		{"192.0.2.7", "192.0.2.7"},
		{"not an address", "not an address"},
	} {
		if got := AddrKey(c.remoteAddr); got != c.want {
			t.Errorf("AddrKey(%q) = %q, want %q", c.remoteAddr, got, c.want)
		}
	}
}
