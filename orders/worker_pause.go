package orders

import (
	"context"
	"sync"
)

// Pause stops the worker from moving orders, after the batch it may be
// moving now, until Resume: the demo page's control, to watch orders wait
// and then catch up. Orders that fall due meanwhile are moved on Resume, in
// the order they fell due, none skipped. Pausing a paused worker does
// nothing.
func (w *Worker) Pause() { w.pause.set(true) }

// Resume lets a paused worker move orders again at once.
func (w *Worker) Resume() { w.pause.set(false) }

// Paused reports whether the worker is paused.
func (w *Worker) Paused() bool { return w.pause.isPaused() }

// Parked reports whether the worker's Run loop is paused and waiting for
// Resume, having finished the batch it was moving.
func (w *Worker) Parked() bool {
	w.pause.mu.Lock()
	defer w.pause.mu.Unlock()
	return w.pause.parked
}

// A pauseGate holds a worker's Run loop while it is paused. Its zero value
// is open.
type pauseGate struct {
	mu      sync.Mutex
	on      bool
	parked  bool          // Run waits at the gate
	resumed chan struct{} // closed on Resume; nil while open
	pausing chan struct{} // closed on Pause; wakes a Run loop that sleeps
}

func (g *pauseGate) set(on bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if on == g.on {
		return
	}
	g.on = on
	if on {
		g.resumed = make(chan struct{})
		if g.pausing != nil {
			close(g.pausing)
			g.pausing = nil
		}
		return
	}
	close(g.resumed)
	g.resumed = nil
}

func (g *pauseGate) isPaused() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.on
}

// paused delivers when the gate is next closed, for a Run loop that sleeps
// until its next due order.
func (g *pauseGate) paused() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.on {
		done := make(chan struct{})
		close(done)
		return done
	}
	if g.pausing == nil {
		g.pausing = make(chan struct{})
	}
	return g.pausing
}

// wait holds the caller while the gate is closed, and reports false if ctx
// ended meanwhile.
func (g *pauseGate) wait(ctx context.Context) bool {
	g.mu.Lock()
	resumed := g.resumed
	g.parked = resumed != nil
	g.mu.Unlock()
	if resumed == nil {
		return true
	}
	defer func() {
		g.mu.Lock()
		g.parked = false
		g.mu.Unlock()
	}()
	select {
	case <-resumed:
		return true
	case <-ctx.Done():
		return false
	}
}
