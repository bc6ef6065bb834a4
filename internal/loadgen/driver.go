package loadgen

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordertracker/ordertracker/orders"
)

// This file drives status changes straight through PostgreSQL, as the
// worker makes them: one UPDATE moves a batch of orders on by one stage, so
// the triggers write one event per order and send one notification per
// statement.

const insertOrders = `
INSERT INTO orders (token, customer_name, items, total_cents, status, actor)
SELECT t, 'Load ' || i, '[{"id":"margherita","name":"Margherita","price_cents":950,"quantity":1}]'::jsonb,
       950, 'received', 'customer'
FROM unnest($1::text[]) WITH ORDINALITY AS u(t, i)
RETURNING id`

// createOrders makes n orders, in statements of up to 5,000, and returns
// their ids and tokens in creation order.
func createOrders(ctx context.Context, pool *pgxpool.Pool, n int) ([]int64, []string, error) {
	ids := make([]int64, 0, n)
	tokens := make([]string, 0, n)
	for len(ids) < n {
		chunk := make([]string, min(5000, n-len(ids)))
		for i := range chunk {
			chunk[i] = orders.NewToken()
		}
		rows, err := pool.Query(ctx, insertOrders, chunk)
		if err != nil {
			return nil, nil, fmt.Errorf("create orders: %w", err)
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, nil, fmt.Errorf("create orders: %w", err)
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, nil, fmt.Errorf("create orders: %w", err)
		}
		tokens = append(tokens, chunk...)
	}
	// A throwaway cluster runs no autovacuum: without statistics the
	// planner would scan every order for each move.
	if _, err := pool.Exec(ctx, `ANALYZE orders; ANALYZE order_events`); err != nil {
		return nil, nil, fmt.Errorf("analyze: %w", err)
	}
	return ids, tokens, nil
}

const moveOrders = `
UPDATE orders
SET status = CASE status WHEN 'received' THEN 'cooking' WHEN 'cooking' THEN 'out_for_delivery'
                         WHEN 'out_for_delivery' THEN 'delivered' END,
    actor = 'worker'
WHERE id = ANY($1) AND status IN ('received', 'cooking', 'out_for_delivery')`

// A mover hands out the moves of a set of orders: every order one stage on,
// then every order the next stage on, up to three rounds in all, so that
// each order ends delivered.
type mover struct {
	mu    sync.Mutex
	ids   []int64
	round int
	next  int
	// rounds is how many rounds it hands out: 0 means all three; -1
	// means without end, for a statement that goes round the statuses.
	rounds int
}

// take returns up to n orders to move on next, none once all are delivered.
func (m *mover) take(n int) []int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.next == len(m.ids) {
		m.round, m.next = m.round+1, 0
	}
	rounds := m.rounds
	if rounds == 0 {
		rounds = 3
	}
	if rounds > 0 && m.round >= rounds {
		return nil
	}
	end := min(m.next+n, len(m.ids))
	batch := m.ids[m.next:end]
	m.next = end
	return batch
}

// driveResult is what a drive did.
type driveResult struct {
	moves   int64
	txs     int64
	elapsed time.Duration
	txTime  Hist // how long each transaction took
}

// A drive moves orders with stmt (an UPDATE of the orders in $1), batch
// per transaction, over conns connections, at rate changes per second (0:
// as fast as they go), for up to d, until stop is closed (nil: never), or
// until the mover runs out.
type drive struct {
	stmt  string
	batch int
	conns int
	rate  int
	d     time.Duration
	stop  <-chan struct{}
}

// run drives. Each connection is its own for the whole drive, and asks at
// the end that its statistics be reported at once (see pgstats.go).
func (dr drive) run(ctx context.Context, pool *pgxpool.Pool, m *mover) (driveResult, error) {
	var res driveResult
	var moves, txs atomic.Int64
	var slot atomic.Int64
	var interval time.Duration
	if dr.rate > 0 {
		interval = time.Duration(float64(dr.batch) / float64(dr.rate) * float64(time.Second))
	}
	start := time.Now()
	end := start.Add(dr.d)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = err
		}
	}
	stopped := func() bool {
		select {
		case <-dr.stop:
			return true
		default:
			return ctx.Err() != nil
		}
	}
	for range dr.conns {
		wg.Go(func() {
			conn, err := pool.Acquire(ctx)
			if err != nil {
				fail(fmt.Errorf("drive: %w", err))
				return
			}
			defer conn.Release()
			var h Hist
			defer func() { mu.Lock(); res.txTime.Merge(&h); mu.Unlock() }()
			defer conn.Exec(ctx, "SELECT pg_stat_force_next_flush()")
			for !stopped() {
				if interval > 0 {
					at := start.Add(time.Duration(slot.Add(1)-1) * interval)
					if at.After(end) {
						return
					}
					select {
					case <-time.After(time.Until(at)):
					case <-dr.stop:
						return
					case <-ctx.Done():
						return
					}
				} else if time.Now().After(end) {
					return
				}
				ids := m.take(dr.batch)
				if len(ids) == 0 {
					return
				}
				began := time.Now()
				tag, err := conn.Exec(ctx, dr.stmt, ids)
				if err != nil {
					fail(fmt.Errorf("move orders: %w", err))
					return
				}
				h.Add(time.Since(began))
				moves.Add(tag.RowsAffected())
				txs.Add(1)
			}
		})
	}
	wg.Wait()
	res.moves, res.txs, res.elapsed = moves.Load(), txs.Load(), time.Since(start)
	return res, firstErr
}

// head is the newest position in the log.
func head(ctx context.Context, pool *pgxpool.Pool) (int64, error) {
	var p int64
	err := pool.QueryRow(ctx, `SELECT coalesce(max(position), 0) FROM order_events`).Scan(&p)
	return p, err
}

// eventsBetween counts the events in (after, upTo].
func eventsBetween(ctx context.Context, pool *pgxpool.Pool, after, upTo int64) (int64, error) {
	var n int64
	err := pool.QueryRow(ctx, `SELECT count(*) FROM order_events WHERE position > $1 AND position <= $2`, after, upTo).Scan(&n)
	return n, err
}
