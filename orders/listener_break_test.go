package orders_test

import (
	"context"
	"errors"
	"testing"

	"github.com/ordertracker/ordertracker/orders"
)

// TestTerminatedListenerCatchesUpExactlyOnce ends the listener's connection
// from the server, as the demo page's control does: it reconnects by
// itself, and every event, before, around and after the break, is handed on
// once, in order.
func TestTerminatedListenerCatchesUpExactlyOnce(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	l := orders.NewListener(connConfig(t, s.Pool()), quiet)
	if err := l.Terminate(ctx, s.Pool()); !errors.Is(err, orders.ErrNotListening) {
		t.Fatalf("Terminate before Run: %v, want ErrNotListening", err)
	}
	c := run(t, l)
	first := createOrder(t, s)
	c.waitFor(t, 1)

	if err := l.Terminate(ctx, s.Pool()); err != nil {
		t.Fatal(err)
	}
	// Changes race the reconnect: some commit while it is away.
	from := orders.Received
	for range 3 {
		createOrder(t, s)
		if _, err := s.Advance(ctx, first.Token, from, orders.ByWorker); err != nil {
			t.Fatal(err)
		}
		from, _ = from.Next()
	}
	waitUntil(t, "the listener reconnects", func() bool { return l.Reconnects() >= 1 && l.Connected() })
	createOrder(t, s)
	want := allEvents(t, s, 0)
	checkExactly(t, c.waitFor(t, len(want)), want)
	// A second break works as the first.
	waitUntil(t, "the new connection is known", func() bool { return l.Terminate(ctx, s.Pool()) == nil })
	createOrder(t, s)
	want = allEvents(t, s, 0)
	checkExactly(t, c.waitFor(t, len(want)), want)
}
