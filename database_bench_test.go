package main

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordertracker/ordertracker/internal/pgbouncer"
	"github.com/ordertracker/ordertracker/internal/pgtest"
	"github.com/ordertracker/ordertracker/orders"
)

// BenchmarkStoreGet reads one order, as the tracking page and the JSON API
// do, in each of pgx's exec modes, on a direct connection and through
// PgBouncer in transaction mode (where cache_statement fails), to weigh
// what the pooler-safe default costs a direct connection.
func BenchmarkStoreGet(b *testing.B) {
	direct := pgtest.NewDatabase(b)
	pooled := pgbouncer.StartWith(b, direct, pgbouncer.Options{PoolSize: 4})
	for _, route := range []struct{ name, url string }{{"direct", direct}, {"pgbouncer", pooled}} {
		for _, mode := range []pgx.QueryExecMode{
			pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe, pgx.QueryExecModeExec,
			pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeDescribeExec,
		} {
			if route.name == "pgbouncer" && mode == pgx.QueryExecModeCacheStatement {
				continue // fails there: that is the point
			}
			b.Run(route.name+"/"+mode.String(), func(b *testing.B) {
				cfg, err := pgxpool.ParseConfig(route.url)
				if err != nil {
					b.Fatal(err)
				}
				cfg.ConnConfig.DefaultQueryExecMode = mode
				pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
				if err != nil {
					b.Fatal(err)
				}
				defer pool.Close()
				store := orders.NewStore(pool, orders.Options{})
				ctx := context.Background()
				o, err := store.Create(ctx, orders.NewOrder{CustomerName: "Ada", Lines: []orders.Line{{MenuID: "margherita", Quantity: 1}}})
				if err != nil {
					b.Fatal(err)
				}
				for b.Loop() {
					if _, err := store.Get(ctx, o.Token); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
