package orders_test

import (
	"context"
	"testing"

	"github.com/ordertracker/ordertracker/internal/pgtest"
	"github.com/ordertracker/ordertracker/orders"
)

// TestStaffMovesNameTheirAccount: a staff move's event names the account
// that made it, in the order's history and in the log that streams read;
// the worker's and the customer's moves name nobody, even right after a
// staff move; and the name stays in the log whatever happens to accounts.
func TestStaffMovesNameTheirAccount(t *testing.T) {
	t.Parallel()
	c := newClock()
	s := orders.NewStore(pgtest.NewPool(t), orders.Options{Stages: testStages, Now: c.Now})
	ctx := context.Background()
	ada := orders.StaffMember{ID: 7, Name: "ada"}
	bob := orders.StaffMember{ID: 8, Name: "bob"}

	o := createOrder(t, s)
	if ev, err := s.StaffAdvance(ctx, o.Token, orders.Received, ada); err != nil || ev.Staff != ada || ev.Actor != orders.ByStaff {
		t.Fatalf("StaffAdvance = %+v, %v; want an event by %v", ev, err, ada)
	}
	if got, _ := s.Get(ctx, o.Token); got.Staff != ada {
		t.Errorf("after ada's move the order names %+v as its last mover, want ada", got.Staff)
	}
	// The worker moves it on next: its event names nobody.
	c.Add(testStages.Cooking)
	w := orders.NewWorker(s, orders.WorkerOptions{Logger: quiet})
	if n, err := w.AdvanceDue(ctx); err != nil || n != 1 {
		t.Fatalf("the worker moved %d (%v), want 1", n, err)
	}
	if got, _ := s.Get(ctx, o.Token); got.Staff != (orders.StaffMember{}) {
		t.Errorf("after the worker's move the order still names %+v", got.Staff)
	}
	if ev, err := s.StaffCancel(ctx, createOrder(t, s).Token, bob); err != nil || ev.Staff != bob {
		t.Fatalf("StaffCancel = %+v, %v; want an event by %v", ev, err, bob)
	}
	if _, err := s.Advance(ctx, o.Token, orders.OutForDelivery, orders.ByStaff); err != nil {
		t.Fatal(err)
	}

	events := history(t, s, o)
	want := []orders.StaffMember{{}, ada, {}, {}}
	if len(events) != len(want) {
		t.Fatalf("%d events, want %d: %+v", len(events), len(want), events)
	}
	for i, e := range events {
		if e.Staff != want[i] {
			t.Errorf("event %d (%s by %s) names %+v, want %+v", e.Seq, e.Status, e.Actor, e.Staff, want[i])
		}
	}
	if events[2].Actor != orders.ByWorker {
		t.Errorf("event 3 is by %s, want the worker", events[2].Actor)
	}
	after, err := s.EventsAfter(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	named := map[string]int{}
	for _, e := range after {
		named[e.Staff.Name]++
	}
	if named["ada"] != 1 || named["bob"] != 1 {
		t.Errorf("the log names %v, want ada and bob once each", named)
	}

	t.Run("the database refuses an account on a move that is not staff's", func(t *testing.T) {
		_, err := s.Pool().Exec(ctx, `UPDATE order_events SET staff_name = 'mallory', staff_id = 1 WHERE actor = 'worker'`)
		if err == nil {
			t.Error("a worker's event was given a staff account")
		}
	})
}
