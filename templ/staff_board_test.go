package templ

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/ordertracker/ordertracker/orders"
)

// boardOf is a board of n orders in status s, of which it holds the first
// limit, oldest first, a second apart from t0.
func boardOf(t0 time.Time, s orders.Status, n, limit int) orders.Board {
	b := orders.Board{Head: 7, Counts: map[orders.Status]int{s: n}, Orders: map[orders.Status][]orders.Order{}}
	for i := range min(n, limit) {
		at := t0.Add(time.Duration(i) * time.Second)
		b.Orders[s] = append(b.Orders[s], orders.Order{
			Token: orders.NewToken(), CustomerName: fmt.Sprintf("Customer %d", i), Status: s, Seq: 1,
			CreatedAt: at, UpdatedAt: at, TotalCents: 950,
			Items: []orders.Item{{MenuID: "margherita", Name: "Margherita", PriceCents: 950, Quantity: 1}},
		})
	}
	return b
}

// column finds the column of status s.
func column(t *testing.T, b StaffBoard, s orders.Status) StaffColumn {
	t.Helper()
	for _, c := range b.Columns {
		if c.Status == s {
			return c
		}
	}
	t.Fatalf("the board has no %s column", s)
	return StaffColumn{}
}

func TestStaffBoardCountsWhatItDoesNotShow(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	b := boardOf(t0, orders.Received, 10_000, BoardWindow)
	board := NewStaffBoard(Assets{}, b, nil, "/staff/events?since=7", "/staff/orders")

	received := column(t, board, orders.Received)
	if received.Count != 10_000 || len(received.Cards) != BoardWindow {
		t.Errorf("received: count %d, %d cards; want 10000 and %d", received.Count, len(received.Cards), BoardWindow)
	}
	if got, want := received.Cards[0].Token, b.Orders[orders.Received][0].Token; got != want {
		t.Errorf("the first card is %s, want the oldest order %s", got, want)
	}
	if got := received.MoreText(); got != "and 9,950 more" {
		t.Errorf("MoreText = %q, want %q", got, "and 9,950 more")
	}
	if got := received.StepText(); got != "Show 50 more" {
		t.Errorf("StepText = %q", got)
	}
	if got, want := received.MoreURL, "/staff?received=100#group-received"; got != want {
		t.Errorf("MoreURL = %q, want %q", got, want)
	}
	for _, c := range board.Columns {
		if c.Status != orders.Received && (c.Count != 0 || len(c.Cards) != 0 || c.More() != 0) {
			t.Errorf("%s: count %d, %d cards, %d more; want none", c.Status, c.Count, len(c.Cards), c.More())
		}
	}
}

func TestStaffBoardColumns(t *testing.T) {
	t.Parallel()
	board := NewStaffBoard(Assets{}, orders.Board{}, nil, "", "")
	tests := []struct {
		status      orders.Status
		action      string
		cancellable bool
		stage       int
		newestFirst bool
		window      int
	}{
		{orders.Received, "Start cooking", true, 1, false, BoardWindow},
		{orders.Cooking, "Send out", true, 2, false, BoardWindow},
		{orders.OutForDelivery, "Mark delivered", false, 3, false, BoardWindow},
		{orders.Delivered, "", false, 4, true, FinishedShown},
		{orders.Cancelled, "", false, 0, true, FinishedShown},
	}
	if len(board.Columns) != len(tests) {
		t.Fatalf("%d columns, want %d", len(board.Columns), len(tests))
	}
	for i, tt := range tests {
		c := board.Columns[i]
		if c.Status != tt.status || c.Action != tt.action || c.Cancellable != tt.cancellable || c.Stage != tt.stage || c.NewestFirst != tt.newestFirst || c.Window != tt.window {
			t.Errorf("column %d = %s %q cancellable %v stage %d newest first %v window %d; want %+v",
				i, c.Status, c.Action, c.Cancellable, c.Stage, c.NewestFirst, c.Window, tt)
		}
		if tt.newestFirst && c.MoreURL != "" {
			t.Errorf("%s links to more cards: a finished column shows its latest few", c.Status)
		}
	}
}

// TestStaffBoardStagesAreSequenceNumbers ties the columns' Stage to the
// state machine: an order's seq in the stage numbered n is n, because it
// got there by n−1 moves, one event each.
func TestStaffBoardStagesAreSequenceNumbers(t *testing.T) {
	t.Parallel()
	for i, s := range orders.Stages {
		if got := stageOf(s); got != i+1 {
			t.Errorf("stage of %s = %d, want %d", s, got, i+1)
		}
		o, _ := orderThrough(time.Now(), orders.Stages[:i+1]...)
		if o.Seq != stageOf(s) {
			t.Errorf("an order that went through %v has seq %d, want the stage %d", orders.Stages[:i+1], o.Seq, stageOf(s))
		}
	}
}

func TestStaffBoardWindows(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	t.Run("a wider window shows more cards and links to more still", func(t *testing.T) {
		w := ParseBoardWindows(url.Values{"cooking": {"100"}})
		board := NewStaffBoard(Assets{}, boardOf(t0, orders.Cooking, 300, w.Of(orders.Cooking)), w, "", "")
		cooking := column(t, board, orders.Cooking)
		if len(cooking.Cards) != 100 || cooking.More() != 200 {
			t.Errorf("%d cards and %d more, want 100 and 200", len(cooking.Cards), cooking.More())
		}
		if got, want := cooking.MoreURL, "/staff?cooking=150#group-cooking"; got != want {
			t.Errorf("cooking's MoreURL = %q, want %q", got, want)
		}
		if got, want := column(t, board, orders.Received).MoreURL, "/staff?received=100&cooking=100#group-received"; got != want {
			t.Errorf("received's MoreURL = %q, want %q, keeping cooking's window", got, want)
		}
	})
	t.Run("the window stops growing at its maximum", func(t *testing.T) {
		w := ParseBoardWindows(url.Values{"received": {"480"}})
		c := column(t, NewStaffBoard(Assets{}, boardOf(t0, orders.Received, 1000, 480), w, "", ""), orders.Received)
		if c.Step != 20 || c.MoreURL != "/staff?received=500#group-received" {
			t.Errorf("at 480: step %d to %q, want 20 to received=500", c.Step, c.MoreURL)
		}
		w = ParseBoardWindows(url.Values{"received": {"500"}})
		c = column(t, NewStaffBoard(Assets{}, boardOf(t0, orders.Received, 1000, 500), w, "", ""), orders.Received)
		if c.MoreURL != "" || c.More() != 500 {
			t.Errorf("at the maximum: MoreURL %q, %d more; want none, and 500 more", c.MoreURL, c.More())
		}
	})
	t.Run("cards never exceed the window, whatever the store gave", func(t *testing.T) {
		c := column(t, NewStaffBoard(Assets{}, boardOf(t0, orders.Received, 80, 80), nil, "", ""), orders.Received)
		if len(c.Cards) != BoardWindow || c.More() != 30 {
			t.Errorf("%d cards, %d more; want %d and 30", len(c.Cards), c.More(), BoardWindow)
		}
	})
	tests := []struct {
		query string
		want  BoardWindows
	}{
		{"", BoardWindows{}},
		{"received=100", BoardWindows{orders.Received: 100}},
		{"received=100&out_for_delivery=150", BoardWindows{orders.Received: 100, orders.OutForDelivery: 150}},
		{"received=10", BoardWindows{orders.Received: BoardWindow}},
		{"received=-3", BoardWindows{orders.Received: BoardWindow}},
		{"received=99999999999999999999", BoardWindows{}},
		{"received=1000000", BoardWindows{orders.Received: BoardWindowMax}},
		{"received=lots", BoardWindows{}},
		{"delivered=100&cancelled=100", BoardWindows{}},
		{"eaten=100", BoardWindows{}},
	}
	for _, tt := range tests {
		t.Run("the query "+tt.query, func(t *testing.T) {
			q, _ := url.ParseQuery(tt.query)
			got := ParseBoardWindows(q)
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for s, n := range tt.want {
				if got[s] != n {
					t.Errorf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestThousands(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		n    int
		want string
	}{
		{0, "0"}, {7, "7"}, {999, "999"}, {1000, "1,000"}, {9950, "9,950"}, {123456, "123,456"},
		{1234567, "1,234,567"}, {-1234, "-1,234"},
	} {
		if got := Thousands(tt.n); got != tt.want {
			t.Errorf("Thousands(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestStaffCardPlaceKeepsMicroseconds(t *testing.T) {
	t.Parallel()
	at := time.Date(2030, 1, 1, 12, 0, 5, 123456000, time.FixedZone("CET", 3600))
	if got, want := exactTime(at), "2030-01-01T11:00:05.123456Z"; got != want {
		t.Errorf("exactTime = %q, want %q: the script pages on from it, and the database keeps microseconds", got, want)
	}
}
