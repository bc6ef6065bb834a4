package orders_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordertracker/ordertracker/internal/pgtest"
	"github.com/ordertracker/ordertracker/orders"
)

func newStore(t *testing.T) *orders.Store {
	t.Helper()
	return orders.NewStore(pgtest.NewPool(t), orders.Options{})
}

func createOrder(t *testing.T, s *orders.Store) orders.Order {
	t.Helper()
	o, err := s.Create(context.Background(), orders.NewOrder{
		CustomerName: "Ada",
		Lines:        []orders.Line{{MenuID: "margherita", Quantity: 2}, {MenuID: "lemonade", Quantity: 1}},
	})
	if err != nil {
		t.Fatalf("create order: %v", err)
	}
	return o
}

// pathTo lists the moves that bring a new order to status s.
func pathTo(s orders.Status) []orders.Status {
	switch s {
	case orders.Cooking:
		return []orders.Status{orders.Cooking}
	case orders.OutForDelivery:
		return []orders.Status{orders.Cooking, orders.OutForDelivery}
	case orders.Delivered:
		return []orders.Status{orders.Cooking, orders.OutForDelivery, orders.Delivered}
	case orders.Cancelled:
		return []orders.Status{orders.Cancelled}
	}
	return nil
}

// orderIn returns a new order moved, legally, to status s.
func orderIn(t *testing.T, s *orders.Store, status orders.Status) orders.Order {
	t.Helper()
	ctx := context.Background()
	o := createOrder(t, s)
	from := orders.Received
	for _, to := range pathTo(status) {
		var err error
		if to == orders.Cancelled {
			_, err = s.Cancel(ctx, o.Token, orders.ByStaff)
		} else {
			_, err = s.Advance(ctx, o.Token, from, orders.ByStaff)
		}
		if err != nil {
			t.Fatalf("move order from %s to %s: %v", from, to, err)
		}
		from = to
	}
	o, err := s.Get(ctx, o.Token)
	if err != nil || o.Status != status {
		t.Fatalf("order is %s (%v), want %s", o.Status, err, status)
	}
	return o
}

func history(t *testing.T, s *orders.Store, o orders.Order) []orders.Event {
	t.Helper()
	events, err := s.Events(context.Background(), o.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	return events
}

func TestCreateStoresAReceivedOrderWithItsFirstEvent(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	o := createOrder(t, s)
	if o.Status != orders.Received || o.Seq != 1 || !orders.ValidToken(o.Token) {
		t.Errorf("got status %s, seq %d, token %q; want received, 1, a valid token", o.Status, o.Seq, o.Token)
	}
	if got, want := o.TotalCents, 2*950+350; got != want {
		t.Errorf("total = %d, want %d", got, want)
	}
	if o.NextMoveAt.Sub(o.CreatedAt) != orders.DefaultStageDurations.Received {
		t.Errorf("next move %v after creation, want %v", o.NextMoveAt.Sub(o.CreatedAt), orders.DefaultStageDurations.Received)
	}
	got, err := s.Get(context.Background(), o.Token)
	if err != nil || got.CustomerName != "Ada" || len(got.Items) != 2 || got.Items[0].Name != "Margherita" {
		t.Errorf("Get = %+v, %v", got, err)
	}
	events := history(t, s, o)
	if len(events) != 1 || events[0].Seq != 1 || events[0].Status != orders.Received || events[0].Actor != orders.ByCustomer {
		t.Errorf("history = %+v, want one received event by the customer", events)
	}
}

func TestCreateRefusesInvalidOrders(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	_, err := s.Create(context.Background(), orders.NewOrder{CustomerName: " "})
	var invalid *orders.ValidationError
	if !errors.As(err, &invalid) || invalid.Fields["name"] == "" || invalid.Fields["items"] == "" {
		t.Fatalf("Create error = %v, want a ValidationError naming name and items", err)
	}
	if n := count(t, s.Pool(), "SELECT count(*) FROM orders"); n != 0 {
		t.Errorf("%d orders stored, want none", n)
	}
}

func TestGetUnknownOrMalformedTokensAreNotFound(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	for _, token := range []string{orders.NewToken(), "short", "'; DROP TABLE orders; --", ""} {
		if _, err := s.Get(context.Background(), token); !errors.Is(err, orders.ErrNotFound) {
			t.Errorf("Get(%q) error = %v, want ErrNotFound", token, err)
		}
	}
}

// TestEveryLegalMove makes every move of the state machine through the
// store, the way the application makes it.
func TestEveryLegalMove(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	for _, tt := range orders.Moves {
		t.Run(fmt.Sprintf("%s to %s by %s", tt.From, tt.To, tt.By), func(t *testing.T) {
			o := orderIn(t, s, tt.From)
			var ev orders.Event
			var err error
			switch next, _ := tt.From.Next(); tt.To {
			case orders.Cancelled:
				ev, err = s.Cancel(ctx, o.Token, tt.By)
			case next:
				ev, err = s.Advance(ctx, o.Token, tt.From, tt.By)
			default:
				t.Fatalf("the store has no method that makes this move")
			}
			if err != nil {
				t.Fatalf("move: %v", err)
			}
			if ev.Status != tt.To || ev.Seq != o.Seq+1 || ev.Actor != tt.By || ev.Token != o.Token || ev.Position == 0 {
				t.Errorf("event = %+v, want %s, seq %d, by %s", ev, tt.To, o.Seq+1, tt.By)
			}
			events := history(t, s, o)
			if len(events) != o.Seq+1 {
				t.Fatalf("%d events, want %d", len(events), o.Seq+1)
			}
			for i, e := range events {
				if e.Seq != i+1 {
					t.Errorf("event %d has seq %d", i, e.Seq)
				}
			}
			after, _ := s.Get(ctx, o.Token)
			if after.Status != tt.To || after.Seq != o.Seq+1 {
				t.Errorf("order is %s seq %d, want %s seq %d", after.Status, after.Seq, tt.To, o.Seq+1)
			}
			if tt.To.Terminal() != after.NextMoveAt.IsZero() {
				t.Errorf("next move at %v for a %s order", after.NextMoveAt, tt.To)
			}
		})
	}
}

func TestStoreRefusesIllegalMoves(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	t.Run("advancing from a status the order has left", func(t *testing.T) {
		o := orderIn(t, s, orders.Cooking)
		if _, err := s.Advance(ctx, o.Token, orders.Received, orders.ByStaff); !errors.Is(err, orders.ErrIllegalTransition) {
			t.Errorf("error = %v, want ErrIllegalTransition", err)
		}
	})
	t.Run("advancing a delivered order", func(t *testing.T) {
		o := orderIn(t, s, orders.Delivered)
		if _, err := s.Advance(ctx, o.Token, orders.Delivered, orders.ByStaff); !errors.Is(err, orders.ErrIllegalTransition) {
			t.Errorf("error = %v, want ErrIllegalTransition", err)
		}
	})
	t.Run("advancing a cancelled order", func(t *testing.T) {
		o := orderIn(t, s, orders.Cancelled)
		if _, err := s.Advance(ctx, o.Token, orders.Cancelled, orders.ByStaff); !errors.Is(err, orders.ErrIllegalTransition) {
			t.Errorf("error = %v, want ErrIllegalTransition", err)
		}
	})
	for _, status := range []orders.Status{orders.OutForDelivery, orders.Delivered, orders.Cancelled} {
		t.Run("cancelling an order that is "+string(status), func(t *testing.T) {
			o := orderIn(t, s, status)
			if _, err := s.Cancel(ctx, o.Token, orders.ByStaff); !errors.Is(err, orders.ErrIllegalTransition) {
				t.Errorf("error = %v, want ErrIllegalTransition", err)
			}
			if n := len(history(t, s, o)); n != o.Seq {
				t.Errorf("%d events after a refused cancel, want %d", n, o.Seq)
			}
		})
	}
	t.Run("the worker cancelling", func(t *testing.T) {
		o := orderIn(t, s, orders.Received)
		if _, err := s.Cancel(ctx, o.Token, orders.ByWorker); !errors.Is(err, orders.ErrIllegalTransition) {
			t.Errorf("error = %v, want ErrIllegalTransition", err)
		}
	})
	t.Run("moving an unknown order", func(t *testing.T) {
		if _, err := s.Advance(ctx, orders.NewToken(), orders.Received, orders.ByStaff); !errors.Is(err, orders.ErrNotFound) {
			t.Errorf("error = %v, want ErrNotFound", err)
		}
	})
}

// TestDatabaseRefusesEveryIllegalTransition goes around the store and its
// compare-and-set: the database alone must refuse every move that is not in
// the state machine, including a repeat of the current status, and change
// nothing.
func TestDatabaseRefusesEveryIllegalTransition(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	checked := 0
	for _, from := range orders.Statuses {
		for _, to := range orders.Statuses {
			for _, by := range orders.Actors {
				if from.CanMove(to, by) {
					continue
				}
				checked++
				t.Run(fmt.Sprintf("%s to %s by %s", from, to, by), func(t *testing.T) {
					o := orderIn(t, s, from)
					_, err := s.Pool().Exec(ctx, `UPDATE orders SET status = $2, actor = $3 WHERE id = $1`, o.ID, to, by)
					var pgErr *pgconn.PgError
					if !errors.As(err, &pgErr) || pgErr.ConstraintName != "order_transition" {
						t.Fatalf("UPDATE error = %v, want the state machine guard to refuse it", err)
					}
					after, _ := s.Get(ctx, o.Token)
					if after.Status != from || after.Seq != o.Seq || len(history(t, s, o)) != o.Seq {
						t.Errorf("after a refused move: status %s, seq %d, %d events; want %s, %d, %d",
							after.Status, after.Seq, len(history(t, s, o)), from, o.Seq, o.Seq)
					}
				})
			}
		}
	}
	if want := len(orders.Statuses)*len(orders.Statuses)*len(orders.Actors) - len(orders.Moves); checked != want {
		t.Errorf("checked %d illegal moves, want %d", checked, want)
	}
}

func TestDatabaseRefusesANewOrderThatIsNotReceived(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	_, err := s.Pool().Exec(context.Background(), `
		INSERT INTO orders (token, customer_name, items, total_cents, status, actor)
		VALUES ($1, 'Eve', '[{"id":"margherita"}]', 0, 'delivered', 'customer')`, orders.NewToken())
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.ConstraintName != "order_transition" {
		t.Fatalf("INSERT error = %v, want the guard to refuse it", err)
	}
}

// TestConcurrentMovesHaveOneWinner makes the same move on one order from 50
// goroutines at once, for every step of the journey: exactly one wins, the
// rest learn that the move is no longer possible, and the log has exactly
// one event per step.
func TestConcurrentMovesHaveOneWinner(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	o := createOrder(t, s)
	for _, from := range []orders.Status{orders.Received, orders.Cooking, orders.OutForDelivery} {
		t.Run("advance from "+string(from), func(t *testing.T) {
			wins, losses := race(50, func() error {
				_, err := s.Advance(ctx, o.Token, from, orders.ByStaff)
				return err
			}, orders.ErrIllegalTransition)
			if wins != 1 || losses != 49 {
				t.Errorf("%d won and %d lost, want 1 and 49", wins, losses)
			}
		})
	}
	events := history(t, s, o)
	if len(events) != 4 {
		t.Fatalf("%d events, want 4: %+v", len(events), events)
	}
	for i, e := range events {
		if e.Seq != i+1 || e.Status != orders.Stages[i] {
			t.Errorf("event %d: seq %d status %s, want seq %d status %s", i, e.Seq, e.Status, i+1, orders.Stages[i])
		}
	}

	t.Run("cancel", func(t *testing.T) {
		o := createOrder(t, s)
		wins, losses := race(50, func() error {
			_, err := s.Cancel(ctx, o.Token, orders.ByStaff)
			return err
		}, orders.ErrIllegalTransition)
		if wins != 1 || losses != 49 {
			t.Errorf("%d won and %d lost, want 1 and 49", wins, losses)
		}
		if n := len(history(t, s, o)); n != 2 {
			t.Errorf("%d events, want 2", n)
		}
	})
}

// TestConcurrentRawUpdatesHaveOneWinner races 50 plain UPDATEs that do not
// compare and set: only the database guard stands between them and 50
// "successful" moves.
func TestConcurrentRawUpdatesHaveOneWinner(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	o := createOrder(t, s)
	wins, losses := race(50, func() error {
		_, err := s.Pool().Exec(ctx, `UPDATE orders SET status = 'cooking', actor = 'staff' WHERE id = $1`, o.ID)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.ConstraintName == "order_transition" {
			return orders.ErrIllegalTransition
		}
		return err
	}, orders.ErrIllegalTransition)
	if wins != 1 || losses != 49 {
		t.Errorf("%d won and %d lost, want 1 and 49", wins, losses)
	}
	if n := len(history(t, s, o)); n != 2 {
		t.Errorf("%d events, want 2", n)
	}
}

// race runs f from n goroutines released together and counts the nil
// results and the results that are lose; any other error fails the count.
func race(n int, f func() error, lose error) (wins, losses int) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			err := f()
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, lose):
				losses++
			}
		})
	}
	close(start)
	wg.Wait()
	return wins, losses
}

func TestListIsNewestFirstAndPaged(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	var created []orders.Order
	for range 7 {
		created = append(created, createOrder(t, s))
	}
	orderIn(t, s, orders.Delivered) // an eighth, finished
	page1, err := s.List(ctx, orders.ListOptions{Limit: 3, Active: true})
	if err != nil {
		t.Fatal(err)
	}
	page2, err := s.List(ctx, orders.ListOptions{Limit: 3, Active: true, Before: page1[len(page1)-1].ID})
	if err != nil {
		t.Fatal(err)
	}
	got := append(page1, page2...)
	for i, o := range got {
		if want := created[len(created)-1-i]; o.ID != want.ID {
			t.Errorf("position %d: order %d, want %d", i, o.ID, want.ID)
		}
	}
	all, _ := s.List(ctx, orders.ListOptions{})
	if len(all) != 8 || all[0].Status != orders.Delivered {
		t.Errorf("List() without options: %d orders, first %s; want 8, the delivered one first", len(all), all[0].Status)
	}
}

func count(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	rows, _ := pool.Query(context.Background(), sql, args...)
	n, err := pgx.CollectExactlyOneRow(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// byKey sorts orders by their place in their status, oldest first: when
// they entered it, then token.
func byKey(list []orders.Order) []orders.Order {
	list = slices.Clone(list)
	slices.SortFunc(list, func(a, b orders.Order) int {
		if c := a.UpdatedAt.Compare(b.UpdatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.Token, b.Token)
	})
	return list
}

// tokens lists the orders' tokens, for comparing lists of orders.
func tokens(list []orders.Order) []string {
	out := make([]string, len(list))
	for i, o := range list {
		out[i] = o.Token
	}
	return out
}

// pages reads every order in status through pages of size limit.
func pages(t *testing.T, s *orders.Store, status orders.Status, limit int) []orders.Order {
	t.Helper()
	var all []orders.Order
	var after orders.StatusKey
	for range 100 {
		page, err := s.ListStatus(context.Background(), orders.StatusPage{Status: status, Limit: limit, After: after})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > limit {
			t.Fatalf("a page of %d orders, want at most %d", len(page), limit)
		}
		all = append(all, page...)
		if len(page) < limit {
			return all
		}
		after = page[len(page)-1].StatusKey()
	}
	t.Fatal("paging never ends")
	return nil
}

func TestListStatus(t *testing.T) {
	t.Parallel()
	c := newClock()
	s := orders.NewStore(pgtest.NewPool(t), orders.Options{Now: c.Now})
	ctx := context.Background()
	move := func(o orders.Order, from orders.Status) orders.Order {
		t.Helper()
		if _, err := s.Advance(ctx, o.Token, from, orders.ByStaff); err != nil {
			t.Fatal(err)
		}
		o, err := s.Get(ctx, o.Token)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}

	// Three orders at one instant (a tie that only the token breaks), two
	// more a second later.
	var received []orders.Order
	for i := range 5 {
		if i == 3 {
			c.Add(time.Second)
		}
		received = append(received, createOrder(t, s))
	}
	// The first order placed is the last to start cooking: the cooking
	// queue is in the order of entering it, not of placing.
	c.Add(time.Second)
	cooking := []orders.Order{move(received[4], orders.Received), move(received[3], orders.Received)}
	c.Add(time.Second)
	cooking = append(cooking, move(received[0], orders.Received))
	received = received[1:3]
	// Three delivered at two instants.
	var delivered []orders.Order
	for i := range 3 {
		if i != 2 {
			c.Add(time.Second)
		}
		o := createOrder(t, s)
		for _, from := range []orders.Status{orders.Received, orders.Cooking, orders.OutForDelivery} {
			o = move(o, from)
		}
		delivered = append(delivered, o)
	}

	t.Run("an unfinished status comes oldest first, by when orders entered it", func(t *testing.T) {
		for _, tt := range []struct {
			status orders.Status
			want   []orders.Order
		}{
			{orders.Received, byKey(received)},
			{orders.Cooking, byKey(cooking)},
			{orders.OutForDelivery, nil},
		} {
			got, err := s.ListStatus(ctx, orders.StatusPage{Status: tt.status})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(tokens(got), tokens(tt.want)) {
				t.Errorf("%s: got %q, want %q", tt.status, tokens(got), tokens(tt.want))
			}
		}
		if got := byKey(cooking); got[0].Token == cooking[2].Token {
			t.Error("the order placed first, which started cooking last, comes first")
		}
	})
	t.Run("a finished status comes newest first", func(t *testing.T) {
		got, err := s.ListStatus(ctx, orders.StatusPage{Status: orders.Delivered})
		if err != nil {
			t.Fatal(err)
		}
		want := byKey(delivered)
		slices.Reverse(want)
		if !slices.Equal(tokens(got), tokens(want)) {
			t.Errorf("got %q, want %q", tokens(got), tokens(want))
		}
	})
	t.Run("pages follow on without a gap or a repeat, ties included", func(t *testing.T) {
		all := append(slices.Clone(received), cooking...)
		for range 6 { // six more at one instant
			all = append(all, createOrder(t, s))
		}
		c.Add(time.Second)
		all = append(all, createOrder(t, s))
		var want []orders.Order
		for _, o := range all {
			if o.Status == orders.Received {
				want = append(want, o)
			}
		}
		want = byKey(want)
		for _, limit := range []int{1, 2, 3, 50} {
			if got := pages(t, s, orders.Received, limit); !slices.Equal(tokens(got), tokens(want)) {
				t.Errorf("pages of %d: got %q, want %q", limit, tokens(got), tokens(want))
			}
		}
		wantDelivered := byKey(delivered)
		slices.Reverse(wantDelivered)
		if got := pages(t, s, orders.Delivered, 1); !slices.Equal(tokens(got), tokens(wantDelivered)) {
			t.Errorf("delivered in pages of 1: got %q, want %q", tokens(got), tokens(wantDelivered))
		}
	})
}

func TestCountsCountEveryStatus(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	want := map[orders.Status]int{orders.Received: 3, orders.Cooking: 2, orders.OutForDelivery: 0, orders.Delivered: 1, orders.Cancelled: 2}
	for status, n := range want {
		for range n {
			orderIn(t, s, status)
		}
	}
	got, err := s.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, want) {
		t.Errorf("Counts = %v, want %v", got, want)
	}
}

// TestBoardIsOneSnapshot reads the board while orders are placed and moved
// as fast as the database allows: each reading must be the state after
// exactly the events up to its Head, or a board that follows the log from
// Head would count some change twice or never.
func TestBoardIsOneSnapshot(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	// The writers finish the change they are making when told to stop: a
	// change cancelled through its context may still commit after the
	// caller has given up on it.
	var stop atomic.Bool
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stop.Store(true) // before wg.Wait, which waits for the writers to see it
	for range 3 {
		wg.Go(func() {
			for !stop.Load() {
				o, err := s.Create(ctx, orders.NewOrder{CustomerName: "Ada", Lines: []orders.Line{{MenuID: "margherita", Quantity: 1}}})
				if err != nil {
					t.Error(err)
					return
				}
				for _, from := range []orders.Status{orders.Received, orders.Cooking} {
					if _, err := s.Advance(ctx, o.Token, from, orders.ByWorker); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	limits := map[orders.Status]int{orders.Received: 5, orders.Cooking: 5, orders.OutForDelivery: 5, orders.Delivered: 2, orders.Cancelled: 2}
	for i := range 150 {
		b, err := s.Board(ctx, limits)
		if err != nil {
			t.Fatal(err)
		}
		want := countsAt(t, s, b.Head)
		if !maps.Equal(b.Counts, want) {
			t.Fatalf("reading %d at head %d: counts %v, want %v from the log", i, b.Head, b.Counts, want)
		}
		for status, list := range b.Orders {
			if len(list) > limits[status] {
				t.Errorf("%d %s orders, want at most %d", len(list), status, limits[status])
			}
			for _, o := range list {
				if o.Status != status {
					t.Errorf("a %s order among the %s ones", o.Status, status)
				}
				if seq := count(t, s.Pool(), `SELECT max(seq) FROM order_events WHERE order_id = $1 AND position <= $2`, o.ID, b.Head); seq != o.Seq {
					t.Errorf("order %d at seq %d, want %d, its seq at head %d", o.ID, o.Seq, seq, b.Head)
				}
			}
		}
	}
	stop.Store(true)
	wg.Wait()
	b, err := s.Board(ctx, limits)
	if err != nil {
		t.Fatal(err)
	}
	for status, limit := range limits {
		page, err := s.ListStatus(context.Background(), orders.StatusPage{Status: status, Limit: limit})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(tokens(b.Orders[status]), tokens(page)) {
			t.Errorf("the board's %s orders are %q, want the first page %q", status, tokens(b.Orders[status]), tokens(page))
		}
	}
}

// countsAt counts the orders in each status as the log stood at head: each
// order in the status of its latest event up to head.
func countsAt(t *testing.T, s *orders.Store, head int64) map[orders.Status]int {
	t.Helper()
	rows, _ := s.Pool().Query(context.Background(), `
		SELECT status, count(*) FROM (
			SELECT DISTINCT ON (order_id) status FROM order_events
			WHERE position <= $1
			ORDER BY order_id, seq DESC
		) latest GROUP BY status`, head)
	counts := map[orders.Status]int{orders.Received: 0, orders.Cooking: 0, orders.OutForDelivery: 0, orders.Delivered: 0, orders.Cancelled: 0}
	var status orders.Status
	var n int
	if _, err := pgx.ForEachRow(rows, []any{&status, &n}, func() error { counts[status] = n; return nil }); err != nil {
		t.Fatal(err)
	}
	return counts
}

func TestRecentReadsTheLogsLatestEventsUpToTheHead(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	for range 3 {
		createOrder(t, s)
	}
	head, err := s.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	createOrder(t, s) // after the head: not for Recent
	for _, tc := range []struct {
		limit int
		age   time.Duration
		want  []int64
	}{
		{2, 0, []int64{head - 1, head}},
		{10, 0, []int64{head - 2, head - 1, head}},
		{10, time.Hour, []int64{head - 2, head - 1, head}},
		{10, time.Nanosecond * 1000, nil}, // older than a microsecond by the time it is read
	} {
		events, err := s.Recent(ctx, head, tc.limit, tc.age)
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		for _, ev := range events {
			got = append(got, ev.Position)
			if ev.CustomerName == "" || len(ev.Items) == 0 || ev.Logged.IsZero() {
				t.Errorf("event %d lacks what a board needs: %+v", ev.Position, ev)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("Recent(head, %d, %v) = %v, want %v", tc.limit, tc.age, got, tc.want)
		}
	}
}
