package orders

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// A Worker moves orders on to their next stage once they have spent their
// stage's duration in the current one. Any number of workers, in any number
// of processes, may run at once: each claims due orders with FOR UPDATE SKIP
// LOCKED, so no two claim the same order, and a worker that dies mid-batch
// loses nothing, because its transaction rolls back and the orders stay due.
type Worker struct {
	store   *Store
	batch   int
	maxWait time.Duration
	log     *slog.Logger
	wake    chan struct{}

	transitions atomic.Uint64
	pause       pauseGate // Pause and Resume (worker_pause.go)
}

// WorkerOptions configure a Worker.
type WorkerOptions struct {
	// Batch is how many orders one transaction moves at most; zero means 500.
	// Moving many per transaction is what makes the worker fast: Postgres
	// lets one notifying commit through at a time, and the whole batch sends
	// one notification.
	Batch int
	// MaxWait bounds how long the worker sleeps when it has heard of nothing
	// due; zero means one minute. It is a safety net: the worker normally
	// wakes at the next due time or when Wake is called.
	MaxWait time.Duration
	// Logger receives the worker's logs; nil means slog.Default().
	Logger *slog.Logger
}

// NewWorker returns a Worker over store.
func NewWorker(store *Store, opts WorkerOptions) *Worker {
	if opts.Batch <= 0 {
		opts.Batch = 500
	}
	if opts.MaxWait <= 0 {
		opts.MaxWait = time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Worker{store: store, batch: opts.Batch, maxWait: opts.MaxWait, log: opts.Logger, wake: make(chan struct{}, 1)}
}

// Wake tells the worker that something changed (a new order, or a staff move
// that restarted a clock), so it looks again now rather than at the time it
// had planned. It never blocks.
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// WakeOn is a listener handler that wakes the worker for changes it did not
// make itself: its own moves never bring the next due time forward.
func (w *Worker) WakeOn(events []Event) {
	for _, e := range events {
		if e.Actor != ByWorker {
			w.Wake()
			return
		}
	}
}

// Transitions is how many moves this worker has made since it started.
func (w *Worker) Transitions() uint64 { return w.transitions.Load() }

// lockedRetry is how long a worker waits when orders are due but another
// worker holds them; it is about to move them and will notify.
const lockedRetry = 50 * time.Millisecond

// Run moves orders until ctx is done. Database errors are logged and retried
// with backoff; Run returns nil when ctx ends.
func (w *Worker) Run(ctx context.Context) error {
	w.log.Info("worker started", "stages", w.store.stages.String(), "batch", w.batch)
	var backoff time.Duration
	for {
		if !w.pause.wait(ctx) {
			return nil
		}
		wait, err := w.step(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			backoff = min(max(2*backoff, 100*time.Millisecond), 5*time.Second)
			w.log.Warn("worker cannot move orders; retrying", "err", err, "in", backoff)
			wait = backoff
		} else {
			backoff = 0
		}
		if wait <= 0 {
			continue
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-w.wake:
			timer.Stop()
		case <-w.pause.paused():
			timer.Stop()
		case <-timer.C:
		}
	}
}

// step moves one batch and says how long to sleep before the next.
func (w *Worker) step(ctx context.Context) (time.Duration, error) {
	moved, err := w.AdvanceDue(ctx)
	if err != nil {
		return 0, err
	}
	if moved == w.batch {
		return 0, nil // there may be more due right now
	}
	next, ok, err := w.store.NextDue(ctx)
	switch {
	case err != nil:
		return 0, err
	case !ok:
		return w.maxWait, nil
	case next <= 0 && moved == 0:
		return lockedRetry, nil
	}
	return min(max(next, 0), w.maxWait), nil
}

// advanceDue claims a batch of due orders and makes the worker's move of
// each. The moves come in as parameters, three arrays of equal length read
// side by side: the status an order leaves, the one it enters, and how long
// it then stays there (NULL when the new status is terminal). They are the
// worker's rows of Moves, so the statement holds no copy of the state
// machine; an order due in a status the worker has no move from is claimed
// and left as it is.
const advanceDue = `
WITH due AS (
    SELECT id, status FROM orders
    WHERE next_move_at <= coalesce($1::timestamptz, now())
    ORDER BY next_move_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
),
step AS (
    SELECT * FROM unnest($3::text[], $4::text[], $5::bigint[]) AS step (from_status, to_status, stay_us)
)
UPDATE orders o
SET status = step.to_status,
    actor = $6,
    updated_at = coalesce($1::timestamptz, now()),
    next_move_at = coalesce($1::timestamptz, now()) + step.stay_us * interval '1 microsecond'
FROM due JOIN step ON step.from_status = due.status
WHERE o.id = due.id AND o.status = due.status`

// workerSteps are the worker's moves as advanceDue takes them, with the
// stage durations of stages.
type workerSteps struct {
	from, to []string
	stayUs   []*int64
}

func newWorkerSteps(stages StageDurations) workerSteps {
	var steps workerSteps
	for _, m := range Moves {
		if m.By != ByWorker {
			continue
		}
		steps.from = append(steps.from, string(m.From))
		steps.to = append(steps.to, string(m.To))
		steps.stayUs = append(steps.stayUs, micros(stages.For(m.To)))
	}
	return steps
}

// AdvanceDue moves up to one batch of due orders on by one stage, in one
// transaction, and reports how many it moved.
func (w *Worker) AdvanceDue(ctx context.Context) (int, error) {
	s := w.store
	steps := newWorkerSteps(s.stages)
	tag, err := s.pool.Exec(ctx, advanceDue, s.clock(), w.batch, steps.from, steps.to, steps.stayUs, ByWorker)
	if err != nil {
		return 0, fmt.Errorf("advance due orders: %w", err)
	}
	n := int(tag.RowsAffected())
	w.transitions.Add(uint64(n))
	return n, nil
}

// NextDue is how long until the next order is due (negative when one is
// overdue), and false when no order is waiting for the worker.
func (s *Store) NextDue(ctx context.Context) (time.Duration, bool, error) {
	rows, _ := s.pool.Query(ctx, `
		SELECT (extract(epoch FROM min(next_move_at) - coalesce($1::timestamptz, now())) * 1e6)::bigint
		FROM orders WHERE next_move_at IS NOT NULL`, s.clock())
	us, err := pgx.CollectExactlyOneRow(rows, pgx.RowTo[*int64])
	if err != nil {
		return 0, false, fmt.Errorf("find the next due order: %w", err)
	}
	if us == nil {
		return 0, false, nil
	}
	return time.Duration(*us) * time.Microsecond, true, nil
}

// Backlog is what the worker has yet to do: how many orders are due now, and
// how late the most overdue one is.
func (s *Store) Backlog(ctx context.Context) (due int, lag time.Duration, err error) {
	var lagUs int64
	err = s.pool.QueryRow(ctx, `
		SELECT count(*), coalesce((extract(epoch FROM coalesce($1::timestamptz, now()) - min(next_move_at)) * 1e6)::bigint, 0)
		FROM orders WHERE next_move_at <= coalesce($1::timestamptz, now())`, s.clock()).Scan(&due, &lagUs)
	if err != nil {
		return 0, 0, fmt.Errorf("measure the worker's backlog: %w", err)
	}
	return due, time.Duration(lagUs) * time.Microsecond, nil
}
