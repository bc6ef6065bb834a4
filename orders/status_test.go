package orders_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ordertracker/ordertracker/internal/pgtest"
	"github.com/ordertracker/ordertracker/orders"
)

// TestDatabaseAllowsExactlyTheMoves holds the two copies of the state
// machine equal: it asks the database's legal_transition about every (from,
// to, actor) triple over every status and actor, legal or not, and compares
// each answer with orders.Moves. A move added, dropped or changed on one side
// alone fails it.
func TestDatabaseAllowsExactlyTheMoves(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	var statuses, actors []string
	for _, s := range orders.Statuses {
		statuses = append(statuses, string(s))
	}
	for _, a := range orders.Actors {
		actors = append(actors, string(a))
	}
	rows, _ := pool.Query(context.Background(), `
		SELECT from_status, to_status, actor, legal_transition(from_status, to_status, actor)
		FROM unnest($1::text[]) AS from_status, unnest($1::text[]) AS to_status, unnest($2::text[]) AS actor`,
		statuses, actors)
	type answer struct {
		From, To, By string
		Legal        bool
	}
	answers, err := pgx.CollectRows(rows, pgx.RowToStructByPos[answer])
	if err != nil {
		t.Fatalf("ask legal_transition: %v", err)
	}
	if got, want := len(answers), len(statuses)*len(statuses)*len(actors); got != want {
		t.Fatalf("legal_transition answered for %d triples, want %d", got, want)
	}
	legal := 0
	for _, a := range answers {
		from, to, by := orders.Status(a.From), orders.Status(a.To), orders.Actor(a.By)
		if got, want := a.Legal, from.CanMove(to, by); got != want {
			t.Errorf("%s to %s by %s: the database says legal %v, orders.Moves says %v", from, to, by, got, want)
		}
		if a.Legal {
			legal++
		}
	}
	if legal != len(orders.Moves) {
		t.Errorf("the database allows %d moves, orders.Moves lists %d (is a move listed twice?)", legal, len(orders.Moves))
	}
}

// TestDatabaseKnowsTheSameStatusesAndActors reads the orders table's CHECK
// constraints on status and actor: they must accept exactly the statuses and
// actors of package orders, so that the triples above are all there are.
func TestDatabaseKnowsTheSameStatusesAndActors(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	quoted := regexp.MustCompile(`'([^']*)'::text`)
	allowed := func(t *testing.T, constraint string) []string {
		t.Helper()
		var def string
		err := pool.QueryRow(context.Background(), `
			SELECT pg_get_constraintdef(oid) FROM pg_constraint
			WHERE conrelid = 'orders'::regclass AND conname = $1`, constraint).Scan(&def)
		if err != nil {
			t.Fatalf("read the constraint %s: %v", constraint, err)
		}
		var values []string
		for _, m := range quoted.FindAllStringSubmatch(def, -1) {
			values = append(values, m[1])
		}
		slices.Sort(values)
		return values
	}
	var statuses, actors []string
	for _, s := range orders.Statuses {
		statuses = append(statuses, string(s))
	}
	for _, a := range orders.Actors {
		actors = append(actors, string(a))
	}
	slices.Sort(statuses)
	slices.Sort(actors)
	if got := allowed(t, "orders_status_check"); !slices.Equal(got, statuses) {
		t.Errorf("the database accepts the statuses %q, package orders has %q", got, statuses)
	}
	if got := allowed(t, "orders_actor_check"); !slices.Equal(got, actors) {
		t.Errorf("the database accepts the actors %q, package orders has %q", got, actors)
	}
}

func TestWhatTheMovesMean(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status      orders.Status
		next        orders.Status // "" for none
		terminal    bool
		cancellable bool
	}{
		{orders.Received, orders.Cooking, false, true},
		{orders.Cooking, orders.OutForDelivery, false, true},
		{orders.OutForDelivery, orders.Delivered, false, false},
		{orders.Delivered, "", true, false},
		{orders.Cancelled, "", true, false},
		{"lost", "", false, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("an order that is %s", tt.status), func(t *testing.T) {
			next, ok := tt.status.Next()
			if next != tt.next || ok != (tt.next != "") {
				t.Errorf("Next() = %q, %v; want %q", next, ok, tt.next)
			}
			if got := tt.status.Terminal(); got != tt.terminal {
				t.Errorf("Terminal() = %v, want %v", got, tt.terminal)
			}
			if got := tt.status.Cancellable(); got != tt.cancellable {
				t.Errorf("Cancellable() = %v, want %v", got, tt.cancellable)
			}
			if got, want := tt.status.Valid(), tt.status != "lost"; got != want {
				t.Errorf("Valid() = %v, want %v", got, want)
			}
		})
	}
	t.Run("the journey is every advance from received", func(t *testing.T) {
		want := []orders.Status{orders.Received, orders.Cooking, orders.OutForDelivery, orders.Delivered}
		if !slices.Equal(orders.Stages, want) {
			t.Errorf("Stages = %q, want %q", orders.Stages, want)
		}
	})
	t.Run("the worker has at most one move out of each status", func(t *testing.T) {
		// Next and the worker's statement pick the worker's move by the
		// status an order is in; two would make the choice arbitrary.
		seen := make(map[orders.Status]bool)
		for _, m := range orders.Moves {
			if m.By != orders.ByWorker {
				continue
			}
			if seen[m.From] {
				t.Errorf("the worker has two moves out of %s", m.From)
			}
			seen[m.From] = true
		}
	})
	t.Run("staff may make every advance by hand", func(t *testing.T) {
		for _, s := range orders.Statuses {
			if next, ok := s.Next(); ok && !s.CanMove(next, orders.ByStaff) {
				t.Errorf("staff may not advance an order from %s to %s", s, next)
			}
		}
	})
}
