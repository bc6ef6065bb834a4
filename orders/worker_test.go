package orders_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordertracker/ordertracker/internal/pgtest"
	"github.com/ordertracker/ordertracker/orders"
)

// clock is a time that moves only when told to.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

var testStages = orders.StageDurations{Received: 10 * time.Second, Cooking: 30 * time.Second, OutForDelivery: 45 * time.Second}

func createMany(t *testing.T, s *orders.Store, n int) []orders.Order {
	t.Helper()
	out := make([]orders.Order, n)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := g; i < n; i += 8 {
				o, err := s.Create(context.Background(), orders.NewOrder{
					CustomerName: fmt.Sprintf("Customer %d", i),
					Lines:        []orders.Line{{MenuID: "funghi", Quantity: 1}},
				})
				if err != nil {
					t.Error(err)
					return
				}
				out[i] = o
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return out
}

func status(t *testing.T, s *orders.Store, o orders.Order) orders.Status {
	t.Helper()
	got, err := s.Get(context.Background(), o.Token)
	if err != nil {
		t.Fatal(err)
	}
	return got.Status
}

// TestWorkerRespectsStageDurations moves a clock by hand: the order moves at
// the end of each stage, not a moment before, one stage at a time.
func TestWorkerRespectsStageDurations(t *testing.T) {
	t.Parallel()
	c := newClock()
	s := orders.NewStore(pgtest.NewPool(t), orders.Options{Stages: testStages, Now: c.Now})
	w := orders.NewWorker(s, orders.WorkerOptions{Logger: quiet})
	ctx := context.Background()
	o := createOrder(t, s)

	for _, step := range []struct {
		stay time.Duration
		then orders.Status
	}{
		{testStages.Received, orders.Cooking},
		{testStages.Cooking, orders.OutForDelivery},
		{testStages.OutForDelivery, orders.Delivered},
	} {
		before := status(t, s, o)
		wait, ok, err := s.NextDue(ctx)
		if err != nil || !ok || wait != step.stay {
			t.Fatalf("in %s: NextDue = %v, %v, %v; want %v", before, wait, ok, err, step.stay)
		}
		c.Add(step.stay - time.Millisecond)
		if n, err := w.AdvanceDue(ctx); err != nil || n != 0 {
			t.Fatalf("a millisecond before the end of %s: moved %d (%v), want 0", before, n, err)
		}
		c.Add(time.Millisecond)
		if n, err := w.AdvanceDue(ctx); err != nil || n != 1 {
			t.Fatalf("at the end of %s: moved %d (%v), want 1", before, n, err)
		}
		if got := status(t, s, o); got != step.then {
			t.Fatalf("after %s: %s, want %s", before, got, step.then)
		}
	}
	c.Add(24 * time.Hour)
	if n, _ := w.AdvanceDue(ctx); n != 0 {
		t.Errorf("a delivered order was moved again")
	}
	if _, ok, _ := s.NextDue(ctx); ok {
		t.Errorf("NextDue reports work when every order is finished")
	}
	events := history(t, s, o)
	for i, e := range events {
		if e.Seq != i+1 || e.Status != orders.Stages[i] {
			t.Errorf("event %d: seq %d %s, want seq %d %s", i, e.Seq, e.Status, i+1, orders.Stages[i])
		}
		if i > 0 && e.Actor != orders.ByWorker {
			t.Errorf("event %d by %s, want the worker", i, e.Actor)
		}
	}
}

// TestStaffMoveRestartsTheClock: after staff move an order on by hand, the
// worker gives it the whole of its new stage.
func TestStaffMoveRestartsTheClock(t *testing.T) {
	t.Parallel()
	c := newClock()
	s := orders.NewStore(pgtest.NewPool(t), orders.Options{Stages: testStages, Now: c.Now})
	w := orders.NewWorker(s, orders.WorkerOptions{Logger: quiet})
	ctx := context.Background()
	o := createOrder(t, s)
	c.Add(4 * time.Second)
	if _, err := s.Advance(ctx, o.Token, orders.Received, orders.ByStaff); err != nil {
		t.Fatal(err)
	}
	if wait, _, _ := s.NextDue(ctx); wait != testStages.Cooking {
		t.Errorf("after the staff move the next move is in %v, want the whole cooking stage, %v", wait, testStages.Cooking)
	}
	c.Add(testStages.Cooking - time.Second)
	if n, _ := w.AdvanceDue(ctx); n != 0 {
		t.Errorf("moved before the cooking stage was over")
	}
}

func TestWorkerNeverMovesAFinishedOrder(t *testing.T) {
	t.Parallel()
	c := newClock()
	s := orders.NewStore(pgtest.NewPool(t), orders.Options{Stages: testStages, Now: c.Now})
	w := orders.NewWorker(s, orders.WorkerOptions{Logger: quiet})
	ctx := context.Background()
	received, cooking := createOrder(t, s), createOrder(t, s)
	if _, err := s.Advance(ctx, cooking.Token, orders.Received, orders.ByStaff); err != nil {
		t.Fatal(err)
	}
	for _, o := range []orders.Order{received, cooking} {
		if _, err := s.Cancel(ctx, o.Token, orders.ByStaff); err != nil {
			t.Fatal(err)
		}
	}
	c.Add(365 * 24 * time.Hour)
	if n, err := w.AdvanceDue(ctx); err != nil || n != 0 {
		t.Fatalf("moved %d cancelled orders (%v)", n, err)
	}
	for _, o := range []orders.Order{received, cooking} {
		if got := status(t, s, o); got != orders.Cancelled {
			t.Errorf("order is %s, want cancelled", got)
		}
	}
}

// TestFourWorkersMoveAThousandOrdersExactlyOnce runs four workers, each with
// its own pool as separate processes would have, over 1,000 due orders:
// every order goes through every stage exactly once.
func TestFourWorkersMoveAThousandOrdersExactlyOnce(t *testing.T) {
	t.Parallel()
	c := newClock()
	url := pgtest.NewDatabase(t)
	newWorker := func() (*orders.Store, *orders.Worker) {
		pool, err := pgxpool.New(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		s := orders.NewStore(pool, orders.Options{Stages: testStages, Now: c.Now})
		return s, orders.NewWorker(s, orders.WorkerOptions{Batch: 100, Logger: quiet})
	}
	s, _ := newWorker()
	const n = 1000
	created := createMany(t, s, n)

	var workers []*orders.Worker
	for range 4 {
		_, w := newWorker()
		workers = append(workers, w)
	}
	for _, stay := range []time.Duration{testStages.Received, testStages.Cooking, testStages.OutForDelivery} {
		c.Add(stay)
		var wg sync.WaitGroup
		for _, w := range workers {
			wg.Go(func() {
				for {
					moved, err := w.AdvanceDue(context.Background())
					if err != nil {
						t.Error(err)
						return
					}
					if moved == 0 {
						return
					}
				}
			})
		}
		wg.Wait()
	}
	var total uint64
	busy := 0
	for _, w := range workers {
		total += w.Transitions()
		if w.Transitions() > 0 {
			busy++
		}
	}
	if total != 3*n {
		t.Errorf("workers made %d transitions, want %d", total, 3*n)
	}
	if busy < 2 {
		t.Logf("only %d of 4 workers found work; the claim did not spread (not an error)", busy)
	}
	checkJourneys(t, s, created)
}

// checkJourneys checks that every order was delivered through exactly one
// event per stage, numbered 1 to 4.
func checkJourneys(t *testing.T, s *orders.Store, list []orders.Order) {
	t.Helper()
	rows := count(t, s.Pool(), `SELECT count(*) FROM order_events`)
	if rows != 4*len(list) {
		t.Errorf("the log has %d events, want %d", rows, 4*len(list))
	}
	bad := count(t, s.Pool(), `
		SELECT count(*) FROM (
			SELECT order_id FROM order_events GROUP BY order_id
			HAVING count(*) <> 4 OR min(seq) <> 1 OR max(seq) <> 4
			    OR count(*) FILTER (WHERE seq = 1 AND status = 'received') <> 1
			    OR count(*) FILTER (WHERE seq = 2 AND status = 'cooking') <> 1
			    OR count(*) FILTER (WHERE seq = 3 AND status = 'out_for_delivery') <> 1
			    OR count(*) FILTER (WHERE seq = 4 AND status = 'delivered') <> 1
		) wrong`)
	if bad != 0 {
		t.Errorf("%d orders have a wrong history", bad)
	}
	if n := count(t, s.Pool(), `SELECT count(*) FROM orders WHERE status <> 'delivered'`); n != 0 {
		t.Errorf("%d orders are not delivered", n)
	}
}

// TestRunningWorkersDeliverEverything runs four workers' Run loops against
// the real clock with short stages: they sleep until orders are due, wake,
// and deliver all of them.
func TestRunningWorkersDeliverEverything(t *testing.T) {
	t.Parallel()
	stages := orders.StageDurations{Received: 50 * time.Millisecond, Cooking: 50 * time.Millisecond, OutForDelivery: 50 * time.Millisecond}
	pool := pgtest.NewPool(t)
	s := orders.NewStore(pool, orders.Options{Stages: stages})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 4 {
		// A long safety net: only due times and wake-ups may drive them.
		w := orders.NewWorker(s, orders.WorkerOptions{Batch: 50, MaxWait: time.Hour, Logger: quiet})
		wg.Go(func() { w.Run(ctx) })
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	list := createMany(t, s, 300)
	waitUntil(t, "every order is delivered", func() bool {
		return count(t, pool, `SELECT count(*) FROM orders WHERE status = 'delivered'`) == len(list)
	})
	checkJourneys(t, s, list)
}

// TestAKilledWorkerLosesNothing stalls one worker in the middle of its
// transaction, with the orders it claimed locked, and terminates its
// backend: the transaction rolls back and another worker moves the order,
// once.
func TestAKilledWorkerLosesNothing(t *testing.T) {
	t.Parallel()
	c := newClock()
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	newStore := func(app string) *orders.Store {
		cfg, err := pgxpool.ParseConfig(url)
		if err != nil {
			t.Fatal(err)
		}
		cfg.ConnConfig.RuntimeParams["application_name"] = app
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		return orders.NewStore(pool, orders.Options{Stages: testStages, Now: c.Now})
	}
	doomedStore, healthyStore := newStore("doomed-worker"), newStore("healthy-worker")
	o := createOrder(t, healthyStore)
	// Make the doomed worker's transaction stall after it has claimed and
	// changed the order, before it can commit.
	_, err := healthyStore.Pool().Exec(ctx, `
		CREATE FUNCTION stall() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF current_setting('application_name') = 'doomed-worker' THEN PERFORM pg_sleep(60); END IF;
			RETURN NULL;
		END $$;
		CREATE TRIGGER stall AFTER UPDATE ON orders FOR EACH STATEMENT EXECUTE FUNCTION stall();`)
	if err != nil {
		t.Fatal(err)
	}
	doomed := orders.NewWorker(doomedStore, orders.WorkerOptions{Logger: quiet})
	healthy := orders.NewWorker(healthyStore, orders.WorkerOptions{Logger: quiet})
	c.Add(testStages.Received)

	doomedErr := make(chan error, 1)
	go func() {
		_, err := doomed.AdvanceDue(ctx)
		doomedErr <- err
	}()
	waitUntil(t, "the doomed worker stalls mid-transaction", func() bool {
		return count(t, healthyStore.Pool(), `SELECT count(*) FROM pg_stat_activity WHERE application_name = 'doomed-worker' AND wait_event = 'PgSleep'`) == 1
	})
	if n, err := healthy.AdvanceDue(ctx); err != nil || n != 0 {
		t.Fatalf("the healthy worker moved %d (%v) while the order was claimed, want 0", n, err)
	}
	if _, err := healthyStore.Pool().Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'doomed-worker'`); err != nil {
		t.Fatal(err)
	}
	if err := <-doomedErr; err == nil {
		t.Fatal("the doomed worker's transaction succeeded; it should have died")
	}
	// The client hears of the death before the backend has rolled back and
	// let go of its row locks; the backend leaves pg_stat_activity only
	// after that.
	waitUntil(t, "the doomed worker's backend is gone", func() bool {
		return count(t, healthyStore.Pool(), `SELECT count(*) FROM pg_stat_activity WHERE application_name = 'doomed-worker'`) == 0
	})
	if n, err := healthy.AdvanceDue(ctx); err != nil || n != 1 {
		t.Fatalf("the healthy worker moved %d (%v) after the other died, want 1", n, err)
	}
	events := history(t, healthyStore, o)
	if len(events) != 2 || events[1].Status != orders.Cooking || events[1].Actor != orders.ByWorker {
		t.Errorf("history = %+v, want received then cooking, once", events)
	}
}

func TestWorkerWakesOnOthersChangesOnly(t *testing.T) {
	t.Parallel()
	w := orders.NewWorker(nil, orders.WorkerOptions{Logger: quiet})
	w.WakeOn([]orders.Event{{Actor: orders.ByWorker}})
	select {
	case <-orders.WakeChannel(w):
		t.Error("the worker was woken by its own move")
	default:
	}
	w.WakeOn([]orders.Event{{Actor: orders.ByWorker}, {Actor: orders.ByCustomer}})
	select {
	case <-orders.WakeChannel(w):
	default:
		t.Error("a new order did not wake the worker")
	}
}
