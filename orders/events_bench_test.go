package orders_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/ordertracker/ordertracker/internal/pgtest"
	"github.com/ordertracker/ordertracker/orders"
)

// benchLog fills a fresh database with orders and moves, n events in all,
// as the worker makes them (one statement per batch), and returns a store
// over it.
func benchLog(b *testing.B, n int) *orders.Store {
	b.Helper()
	pool := pgtest.NewPool(b)
	ctx := context.Background()
	const batch = 5000
	for made := 0; made < n; made += 2 * batch {
		// One statement creates a batch of orders (an event each) and
		// another moves them all on (another event each).
		if _, err := pool.Exec(ctx, `
			INSERT INTO orders (token, customer_name, items, total_cents, status, actor)
			SELECT upper(substr(md5(random()::text), 1, 26)), 'Bench ' || i,
			       '[{"id":"margherita","name":"Margherita","price_cents":950,"quantity":2}]'::jsonb, 1900, 'received', 'customer'
			FROM generate_series(1, $1) i`, batch); err != nil {
			b.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `UPDATE orders SET status = 'cooking', actor = 'worker' WHERE status = 'received'`); err != nil {
			b.Fatal(err)
		}
	}
	return orders.NewStore(pool, orders.Options{})
}

// BenchmarkEventsAfter reads the log of all orders a page at a time, as a
// staff stream replays it after its cursor and as the listener catches up.
func BenchmarkEventsAfter(b *testing.B) {
	const logSize = 100_000
	store := benchLog(b, logSize)
	ctx := context.Background()
	for _, page := range []int{1, 100, 500, 1000} {
		b.Run(fmt.Sprintf("page=%d", page), func(b *testing.B) {
			var cursor int64
			events := 0
			for b.Loop() {
				got, err := store.EventsAfter(ctx, cursor, page)
				if err != nil {
					b.Fatal(err)
				}
				if len(got) < page {
					cursor = 0 // wrap around to the start of the log
					continue
				}
				cursor = got[len(got)-1].Position
				events += len(got)
			}
			b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkEvents reads one order's history, as a customer's stream replays
// it after its cursor.
func BenchmarkEvents(b *testing.B) {
	store := benchLog(b, 100_000)
	ctx := context.Background()
	var ids []int64
	rows, err := store.Pool().Query(ctx, `SELECT id FROM orders ORDER BY random() LIMIT 1000`)
	if err != nil {
		b.Fatal(err)
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			b.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		got, err := store.Events(ctx, ids[i%len(ids)], 0)
		if err != nil || len(got) != 2 {
			b.Fatalf("got %d events, %v; want 2", len(got), err)
		}
		i++
	}
}
