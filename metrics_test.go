package main

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordertracker/ordertracker/internal/pgtest"
	"github.com/ordertracker/ordertracker/orders"
)

// statementCounter is a pgx tracer that counts statements.
type statementCounter struct{ n atomic.Int64 }

func (c *statementCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return ctx
}

func (c *statementCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func TestDatabaseMetricsAreReadOncePerMaxAge(t *testing.T) {
	t.Parallel()
	cfg, err := pgxpool.ParseConfig(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	statements := &statementCounter{}
	cfg.ConnConfig.Tracer = statements
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	store := orders.NewStore(pool, orders.Options{})
	o, err := store.Create(context.Background(), orders.NewOrder{CustomerName: "Ada", Lines: []orders.Line{{MenuID: "margherita", Quantity: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	listener := orders.NewListener(pool.Config().ConnConfig, nil) // never run: its position is 0

	for _, tt := range []struct {
		name     string
		maxAge   time.Duration
		scrapes  int
		wantRead int64 // readings of the database
	}{
		{"scrapes within the age share one reading", time.Hour, 3, 1},
		{"every scrape reads when the age is zero", 0, 3, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			reg.MustRegister(newDBCollector(store, listener, tt.maxAge))
			before := statements.n.Load()
			for range tt.scrapes {
				if _, err := reg.Gather(); err != nil {
					t.Fatal(err)
				}
			}
			const perReading = 3 // backlog, head, queue usage
			if got := (statements.n.Load() - before) / perReading; got != tt.wantRead {
				t.Errorf("%d scrapes read the database %d times, want %d", tt.scrapes, got, tt.wantRead)
			}
			if got := gauge(t, reg, "ordertracker_listener_lag_events"); got != 1 {
				t.Errorf("listener lag after one event (order %d) and none handed on = %v, want 1", o.ID, got)
			}
		})
	}
}

// gauge gathers reg and returns the value of the named gauge.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}
