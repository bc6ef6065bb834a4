package ratelimit

import (
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestAllowGivesEachKeyABurstThenOneAttemptPerInterval(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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

func TestTheTableNeverHoldsMoreThanMaxKeys(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		l := New(2, time.Hour) // nothing refills during the test: sweeps free nothing
		for i := range MaxKeys + 500 {
			l.Allow(fmt.Sprint("client", i))
		}
		if got := l.keys(); got != MaxKeys {
			t.Errorf("after %d keys the table holds %d, want MaxKeys = %d", MaxKeys+500, got, MaxKeys)
		}
		if ok, _ := l.Allow(fmt.Sprint("client", MaxKeys+499)); !ok {
			t.Error("the newest key lost its bucket to the ones pushed out")
		}
	})
}

func TestAllowIsSafeForConcurrentUse(t *testing.T) {
	t.Parallel()
	l := New(5, time.Hour)
	allowed := make(chan bool, 8*50)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				ok, _ := l.Allow("one client")
				allowed <- ok
			}
		})
	}
	wg.Wait()
	close(allowed)
	n := 0
	for ok := range allowed {
		if ok {
			n++
		}
	}
	if n != 5 {
		t.Errorf("%d of 400 parallel attempts were allowed, want the burst of 5", n)
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want Rate
	}{
		{"10/min,burst=20", Rate{Burst: 20, Every: 6 * time.Second}},
		{" 10 / min , burst=20 ", Rate{Burst: 20, Every: 6 * time.Second}},
		{"10/m", Rate{Burst: 10, Every: 6 * time.Second}},
		{"1/s", Rate{Burst: 1, Every: time.Second}},
		{"600/h,burst=5", Rate{Burst: 5, Every: 6 * time.Second}},
		{"1/6s", Rate{Burst: 1, Every: 6 * time.Second}},
		{"3/1m30s", Rate{Burst: 3, Every: 30 * time.Second}},
		{"off", Rate{}},
	} {
		got, err := Parse(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "10", "ten/min", "0/min", "-1/min", "10/fortnight", "10/-1s", "10/min,20", "10/min,burst=0", "10/min,burst=x", "1000000000000/ns"} {
		if r, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", bad, r)
		}
	}
	if got := (Rate{Burst: 20, Every: 6 * time.Second}).String(); got != "10/min,burst=20" {
		t.Errorf("String = %q, want 10/min,burst=20", got)
	}
	if (Rate{}).NewLimiter() != nil {
		t.Error("the zero Rate made a limiter; it must limit nothing")
	}
}

func TestGiveBackReturnsOneAttempt(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		l := New(2, time.Minute)
		l.Allow("a")
		l.Allow("a")
		if ok, _ := l.Allow("a"); ok {
			t.Fatal("the attempt after the burst was allowed")
		}
		l.GiveBack("a")
		if ok, _ := l.Allow("a"); !ok {
			t.Error("the attempt given back was refused")
		}
		if ok, _ := l.Allow("a"); ok {
			t.Error("one attempt given back allowed two")
		}
		l.GiveBack("unknown") // no bucket: nothing to give back to, and no panic
	})
}

func TestGiveBackNeverGrowsTheBurst(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		l := New(2, time.Minute)
		l.Allow("a")
		for range 5 {
			l.GiveBack("a")
		}
		allowed := 0
		for range 5 {
			if ok, _ := l.Allow("a"); ok {
				allowed++
			}
		}
		if allowed != 2 {
			t.Errorf("%d attempts allowed after giving back more than was spent, want the burst of 2", allowed)
		}
	})
}
