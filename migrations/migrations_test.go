package migrations_test

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ordertracker/ordertracker/internal/pgtest"
	"github.com/ordertracker/ordertracker/migrations"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestApplyIsIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn := connect(t, pgtest.NewEmptyDatabase(t))
	all, err := migrations.All()
	if err != nil {
		t.Fatal(err)
	}
	n, err := migrations.Apply(ctx, conn)
	if err != nil || n != len(all) {
		t.Fatalf("first Apply = %d, %v; want %d, nil", n, err, len(all))
	}
	for i := range 2 {
		n, err := migrations.Apply(ctx, conn)
		if err != nil || n != 0 {
			t.Fatalf("Apply number %d = %d, %v; want 0, nil", i+2, n, err)
		}
	}
	pending, err := migrations.Pending(ctx, conn)
	if err != nil || pending != 0 {
		t.Errorf("Pending = %d, %v; want 0", pending, err)
	}
}

// TestConcurrentApply starts several migrators on one empty database at the
// same moment, as several processes starting together would: every one
// succeeds, and each migration is applied exactly once.
func TestConcurrentApply(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewEmptyDatabase(t)
	all, _ := migrations.All()
	const migrators = 4
	conns := make([]*pgx.Conn, migrators)
	for i := range conns {
		conns[i] = connect(t, url)
	}
	var wg sync.WaitGroup
	applied := make([]int, migrators)
	errs := make([]error, migrators)
	start := make(chan struct{})
	for i, conn := range conns {
		wg.Go(func() {
			<-start
			applied[i], errs[i] = migrations.Apply(ctx, conn)
		})
	}
	close(start)
	wg.Wait()
	total := 0
	for i := range migrators {
		if errs[i] != nil {
			t.Errorf("migrator %d: %v", i, errs[i])
		}
		total += applied[i]
	}
	if total != len(all) {
		t.Errorf("migrations applied %d times in all, want %d", total, len(all))
	}
	var rows int
	if err := conns[0].QueryRow(ctx, "SELECT count(*) FROM schema_migrations").Scan(&rows); err != nil || rows != len(all) {
		t.Errorf("schema_migrations has %d rows (%v), want %d", rows, err, len(all))
	}
}

func TestPendingCountsWhatIsMissing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn := connect(t, pgtest.NewDatabase(t))
	all, _ := migrations.All()
	if _, err := conn.Exec(ctx, "DELETE FROM schema_migrations WHERE version = $1", all[len(all)-1].Version); err != nil {
		t.Fatal(err)
	}
	if n, err := migrations.Pending(ctx, conn); err != nil || n != 1 {
		t.Errorf("Pending = %d, %v; want 1", n, err)
	}
}
