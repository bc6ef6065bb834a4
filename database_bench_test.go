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
// PgBouncer in transaction mode, to weigh what the pooler-safe mode
// (cache_describe) would cost a direct connection, and so whether
// execMode is right to keep cache_statement there. Through PgBouncer,
// cache_statement fails (that is the point) and describe_exec is unsafe
// (a pooler may change sessions between its two round trips), so neither
// is measured there.
//
//	go test -run '^$' -bench BenchmarkStoreGet -count 10 . | benchstat -
func BenchmarkStoreGet(b *testing.B) {
	direct := pgtest.NewDatabase(b)
	pooled := pgbouncer.StartWith(b, direct, pgbouncer.Options{PoolSize: 4})
	ctx := context.Background()
	// The order is made in the default mode: exec and simple_protocol
	// cannot send its items (see execMode), but can read it.
	setup, err := pgxpool.New(ctx, direct)
	if err != nil {
		b.Fatal(err)
	}
	o, err := orders.NewStore(setup, orders.Options{}).Create(ctx, orders.NewOrder{
		CustomerName: "Ada", Lines: []orders.Line{{MenuID: "margherita", Quantity: 1}},
	})
	setup.Close()
	if err != nil {
		b.Fatal(err)
	}
	for _, route := range []struct {
		name  string
		url   string
		modes []pgx.QueryExecMode
	}{
		{"direct", direct, []pgx.QueryExecMode{
			pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe, pgx.QueryExecModeDescribeExec,
			pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol,
		}},
		{"pgbouncer", pooled, []pgx.QueryExecMode{
			pgx.QueryExecModeCacheDescribe, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol,
		}},
	} {
		for _, mode := range route.modes {
			b.Run(route.name+"/"+mode.String(), func(b *testing.B) {
				cfg, err := pgxpool.ParseConfig(route.url)
				if err != nil {
					b.Fatal(err)
				}
				cfg.ConnConfig.DefaultQueryExecMode = mode
				pool, err := pgxpool.NewWithConfig(ctx, cfg)
				if err != nil {
					b.Fatal(err)
				}
				defer pool.Close()
				store := orders.NewStore(pool, orders.Options{})
				for b.Loop() {
					if _, err := store.Get(ctx, o.Token); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
