package web

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ordertracker/ordertracker/orders"
)

// These tests drive the board as a kitchen display, in Chromium: ages and
// lateness, the filter and the shortcuts, new orders heard and seen, and
// the page of one order.

// jsLate is the late mark of o's card ("", "amber" or "red"), or null
// without a card.
func jsLate(o orders.Order) string {
	return fmt.Sprintf(`(document.getElementById('order-%s')?.dataset.late ?? (document.getElementById('order-%[1]s') ? '' : null))`, o.Token)
}

// enteredAgo backdates when o entered its status, so that it is late on
// purpose without a test waiting for it.
func (a *staffApp) enteredAgo(t *testing.T, o orders.Order, d time.Duration) {
	t.Helper()
	_, err := a.pool.Exec(context.Background(), `UPDATE orders SET updated_at = now() - $2::interval WHERE token = $1`, o.Token, d.String())
	if err != nil {
		t.Fatal(err)
	}
}

func TestBrowserStaffBoardShowsAgesAndLateOrders(t *testing.T) {
	t.Parallel()
	hour := time.Hour
	a := newStaffApp(t, staffOptions{stages: orders.StageDurations{Received: hour, Cooking: hour, OutForDelivery: hour}})
	fresh := a.create(t, "Fresh Fay")
	amber := a.create(t, "Amber Al")
	red := a.create(t, "Red Rae")
	done := a.create(t, "Done Dan")
	a.deliver(t, done, orders.Received)
	a.enteredAgo(t, amber, 90*time.Minute)
	a.enteredAgo(t, red, 3*time.Hour)
	a.enteredAgo(t, done, 5*time.Hour)

	tb := newTab(t, newBrowser(t), true)
	a.signIn(t, tb)
	tb.waitFor(t, "the board is live", jsBoardConnection+` === 'live'`)
	tb.waitFor(t, "the order past its stage's duration is amber", jsLate(amber)+` === 'amber'`)
	tb.waitFor(t, "the order past twice its stage's duration is red", jsLate(red)+` === 'red'`)
	if got := eval[string](t, tb, jsLate(fresh)); got != "" {
		t.Errorf("the fresh order is marked %q, want not late", got)
	}
	if got := eval[string](t, tb, `document.querySelector('#group-received .late-count').textContent`); got != "2" {
		t.Errorf("the received header counts %q late, want 2", got)
	}
	if eval[bool](t, tb, `document.querySelector('#group-cooking .late').hidden === false`) {
		t.Error("the cooking header shows a late count with no order cooking")
	}
	if got := eval[string](t, tb, `document.querySelector('#order-`+red.Token+` .order-age').textContent`); got != " · 3 h 00 min · very late" {
		t.Errorf("the red card's age reads %q", got)
	}
	if got := eval[string](t, tb, jsLate(done)+` + '|' + document.querySelector('#order-`+done.Token+` .order-age').textContent`); got != "|" {
		t.Errorf("a delivered card shows an age or a mark: %q", got)
	}

	// The age ticks on the fresh card, and a card that arrives live gets one.
	first := eval[string](t, tb, `document.querySelector('#order-`+fresh.Token+` .order-age').textContent`)
	tb.waitFor(t, "the fresh card's age ticks", `document.querySelector('#order-`+fresh.Token+` .order-age').textContent !== `+fmt.Sprintf("%q", first))
	late := a.create(t, "Live Lou")
	tb.waitFor(t, "a new card shows its age", `/^ · 0:0\d$/.test(document.querySelector('#order-`+late.Token+` .order-age')?.textContent ?? '')`)
	// A late order moved on starts its new stage on time.
	if _, err := a.store.Advance(context.Background(), red.Token, orders.Received, orders.ByStaff); err != nil {
		t.Fatal(err)
	}
	tb.waitFor(t, "the moved order is not late in its new stage", jsCard(red, orders.Cooking)+` !== null && `+jsLate(red)+` === ''`)
	tb.waitFor(t, "the received header counts one late", `document.querySelector('#group-received .late-count').textContent === '1'`)
	audit(t, tb, "the board with late orders")
}
