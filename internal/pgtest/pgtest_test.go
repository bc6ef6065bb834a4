package pgtest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordertracker/ordertracker/internal/pglocal"
	"github.com/ordertracker/ordertracker/migrations"
)

func TestMain(m *testing.M) { Main(m) }

// connect opens a connection closed at cleanup.
func connect(t *testing.T, dbURL string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// databaseExists reports whether the server has a database of that name.
func databaseExists(t *testing.T, name string) bool {
	t.Helper()
	var exists bool
	err := connect(t, AdminURL(t)).QueryRow(t.Context(), "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name).Scan(&exists)
	if err != nil {
		t.Fatal(err)
	}
	return exists
}

func TestParallelTestsGetTheirOwnMigratedDatabase(t *testing.T) {
	all, err := migrations.All()
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		seen = map[string]bool{}
	)
	t.Run("group", func(t *testing.T) {
		for i := range 2 {
			t.Run(fmt.Sprintf("test %d", i), func(t *testing.T) {
				t.Parallel()
				pool := NewPool(t)
				var db string
				var applied int
				err := pool.QueryRow(t.Context(), "SELECT current_database(), (SELECT count(*) FROM schema_migrations)").Scan(&db, &applied)
				if err != nil {
					t.Fatalf("query schema_migrations: %v", err)
				}
				if applied != len(all) {
					t.Errorf("schema_migrations has %d rows, want %d", applied, len(all))
				}
				mu.Lock()
				defer mu.Unlock()
				if seen[db] {
					t.Errorf("database %s was handed out twice", db)
				}
				seen[db] = true
			})
		}
	})
	if len(seen) != 2 {
		t.Errorf("got %d distinct databases, want 2", len(seen))
	}
}

func TestEmptyDatabaseHasNoTables(t *testing.T) {
	conn := connect(t, NewEmptyDatabase(t))
	var tables int
	err := conn.QueryRow(t.Context(), "SELECT count(*) FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema')").Scan(&tables)
	if err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Errorf("an empty database has %d tables, want 0", tables)
	}
	n, err := migrations.Apply(t.Context(), conn)
	if err != nil {
		t.Fatalf("migrate empty database: %v", err)
	}
	all, _ := migrations.All()
	if n != len(all) {
		t.Errorf("Apply applied %d migrations, want %d", n, len(all))
	}
}

func TestNotificationsStayInTheirDatabase(t *testing.T) {
	mine, other := NewDatabase(t), NewDatabase(t)
	listener := connect(t, mine)
	if _, err := listener.Exec(t.Context(), "LISTEN order_update"); err != nil {
		t.Fatal(err)
	}
	for _, n := range []struct{ url, payload string }{{other, "from the other database"}, {mine, "from mine"}} {
		if _, err := connect(t, n.url).Exec(t.Context(), "SELECT pg_notify('order_update', $1)", n.payload); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	got, err := listener.WaitForNotification(ctx)
	if err != nil {
		t.Fatalf("wait for notification: %v", err)
	}
	if want := "from mine"; got.Payload != want {
		t.Errorf("payload = %q, want %q", got.Payload, want)
	}
}

func TestDatabaseIsDroppedAtCleanupEvenWithSessionsOpen(t *testing.T) {
	var name string
	t.Run("user", func(t *testing.T) {
		conn, err := pgx.Connect(t.Context(), NewDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		// Left open on purpose; the drop must end it.
		if err := conn.QueryRow(t.Context(), "SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
	})
	if name == "" {
		t.Fatal("the subtest learnt no database name")
	}
	if databaseExists(t, name) {
		t.Errorf("database %s survives its test", name)
	}
}

func TestCreateWaitsForTheTemplateToBeFree(t *testing.T) {
	e := environment(t)
	ctx := t.Context()
	// A template that a session is connected to, as any database may be
	// on a shared server.
	busy, err := e.create(ctx, e.template, e.strategy)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.drop(context.Background(), busy) })
	session := connect(t, e.url(busy))

	time.AfterFunc(200*time.Millisecond, func() { session.Close(context.Background()) })
	began := time.Now()
	copied, err := e.create(ctx, busy, e.strategy)
	if err != nil {
		t.Fatalf("create from a template in use: %v", err)
	}
	t.Cleanup(func() { e.drop(context.Background(), copied) })
	if waited := time.Since(began); waited < 150*time.Millisecond {
		t.Errorf("create took %v, so the template was never busy and the test proves nothing", waited)
	}
}

func TestURL(t *testing.T) {
	tests := []struct {
		name     string
		adminURL string
		want     string
	}{
		{
			name:     "a URL keeps its credentials and options",
			adminURL: "postgres://u:p%40ss@127.0.0.1:5433/postgres?sslmode=disable",
			want:     "postgres://u:p%40ss@127.0.0.1:5433/pgt_1?sslmode=disable",
		},
		{
			name:     "a URL without a database gains one",
			adminURL: "postgresql://u@db",
			want:     "postgresql://u@db/pgt_1",
		},
		{
			name:     "keyword=value pairs get a later dbname",
			adminURL: "host=127.0.0.1 user=u dbname=postgres",
			want:     "host=127.0.0.1 user=u dbname=postgres dbname=pgt_1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := (&env{adminURL: tt.adminURL}).url("pgt_1")
			if got != tt.want {
				t.Errorf("url = %q, want %q", got, tt.want)
			}
			cfg, err := pgx.ParseConfig(got)
			if err != nil {
				t.Fatalf("pgx cannot parse %q: %v", got, err)
			}
			if cfg.Database != "pgt_1" {
				t.Errorf("database = %q, want %q", cfg.Database, "pgt_1")
			}
		})
	}
}

// BenchmarkNewDatabase times copying the migrated template with each
// strategy, and dropping the copy.
func BenchmarkNewDatabase(b *testing.B) {
	e := environment(b)
	for _, strategy := range []string{"FILE_COPY", "WAL_LOG"} {
		b.Run(strategy, func(b *testing.B) {
			ctx := context.Background()
			var creating, dropping time.Duration
			for b.Loop() {
				began := time.Now()
				name, err := e.create(ctx, e.template, strategy)
				if err != nil {
					b.Fatal(err)
				}
				created := time.Now()
				if err := e.drop(ctx, name); err != nil {
					b.Fatal(err)
				}
				creating += created.Sub(began)
				dropping += time.Since(created)
			}
			b.ReportMetric(float64(creating.Microseconds())/1000/float64(b.N), "ms/create")
			b.ReportMetric(float64(dropping.Microseconds())/1000/float64(b.N), "ms/drop")
		})
	}
}

func TestFailureMessageSaysWhatToDo(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{"no binaries", fmt.Errorf("start: %w", pglocal.ErrNoBinaries)},
		{"any other trouble", errors.New("connection refused")},
	}
	t.Setenv(EnvURL, "")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := failureMessage(tt.err)
			for _, want := range []string{"FAIL", "apt-get install -y postgresql", EnvURL + "=postgres://"} {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q lacks %q", msg, want)
				}
			}
		})
	}
	t.Run("a broken TEST_DATABASE_URL", func(t *testing.T) {
		t.Setenv(EnvURL, "postgres://u:secret@127.0.0.1:1/postgres")
		msg := failureMessage(errors.New("connection refused"))
		if want := EnvURL + " is set"; !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
		if strings.Contains(msg, "secret") {
			t.Errorf("message %q shows the password", msg)
		}
	})
}

func TestNewDatabaseSurvivesEndedAdminSessions(t *testing.T) {
	NewDatabase(t) // so the admin pool has sessions to end
	admin := connect(t, AdminURL(t))
	var ended int
	err := admin.QueryRow(t.Context(), `SELECT count(*) FROM (
		SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()) s`).Scan(&ended)
	if err != nil {
		t.Fatal(err)
	}
	if ended == 0 {
		t.Fatal("no admin session was ended, so the test proves nothing")
	}
	NewDatabase(t)
}
