package orders_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ordertracker/ordertracker/internal/pgtest"
	"github.com/ordertracker/ordertracker/orders"
)

// TestAPausedWorkerMovesNothingUntilResumed pauses a running worker, makes
// an order due, wakes the worker for it: it stays where it is until Resume,
// and then moves on once.
func TestAPausedWorkerMovesNothingUntilResumed(t *testing.T) {
	t.Parallel()
	c := newClock()
	s := orders.NewStore(pgtest.NewPool(t), orders.Options{Stages: testStages, Now: c.Now})
	w := orders.NewWorker(s, orders.WorkerOptions{Logger: quiet, MaxWait: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { w.Run(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	o := createOrder(t, s)
	if w.Paused() {
		t.Fatal("a new worker is paused")
	}
	w.Pause()
	w.Pause() // twice is once
	if !w.Paused() {
		t.Fatal("Paused() = false after Pause")
	}
	waitUntil(t, "the worker's loop waits at the pause", w.Parked)
	c.Add(testStages.Received)
	w.Wake()
	// Still parked after the wake: it moved nothing.
	if !w.Parked() {
		t.Fatal("a wake let a paused worker go")
	}
	if got := status(t, s, o); got != orders.Received {
		t.Fatalf("while paused the order became %s, want %s", got, orders.Received)
	}
	w.Resume()
	w.Resume()
	// The worker counts a move once it has committed it: the count, not the
	// order's status, says it is done.
	waitUntil(t, "the worker moves the order on after Resume", func() bool { return w.Transitions() > 0 })
	if n := w.Transitions(); n != 1 {
		t.Errorf("Transitions() = %d after Resume, want 1", n)
	}
	if got := status(t, s, o); got != orders.Cooking {
		t.Errorf("after Resume the order is %s, want %s", got, orders.Cooking)
	}
	// A pause while it sleeps until the next due order holds it too.
	w.Pause()
	waitUntil(t, "the sleeping worker parks", w.Parked)
	w.Resume()
	waitUntil(t, "the worker leaves the pause", func() bool { return !w.Parked() })
}
