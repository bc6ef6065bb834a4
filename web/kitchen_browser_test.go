package web

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

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

// jsBoardData reads a number the board keeps in its data attributes.
func jsBoardData(name string) string {
	return `Number(document.getElementById('staff-board')?.dataset.` + name + ` ?? -1)`
}

// grantNotifications lets the pages of the app in the browser of ctx show
// notifications, as if a person had allowed them.
func grantNotifications(t *testing.T, ctx context.Context, origin string) {
	t.Helper()
	params := browser.SetPermissionParams{
		Permission:       &browser.PermissionDescriptor{Name: "notifications"},
		Setting:          browser.PermissionSettingGranted,
		Origin:           origin,
		BrowserContextID: chromedp.FromContext(ctx).BrowserContextID,
	}
	if _, err := chromedp.Call(ctx, browser.SetPermission, params); err != nil {
		t.Fatalf("grant notifications: %v", err)
	}
}

func TestBrowserStaffBoardAnnouncesNewOrdersOnce(t *testing.T) {
	t.Parallel()
	a := newStaffApp(t, staffOptions{stages: orders.StageDurations{Received: time.Hour, Cooking: time.Hour, OutForDelivery: time.Hour}})
	before := a.create(t, "Already Here")
	b := newBrowser(t)
	grantNotifications(t, b, a.server.URL)

	first := newTab(t, b, true)
	a.signIn(t, first)
	first.waitFor(t, "the board is live", jsBoardConnection+` === 'live'`)
	first.do(t, chromedp.Click(chromedp.ID("sound-toggle")))
	first.waitFor(t, "the audio runs after the click", `document.getElementById('staff-board').dataset.audio === 'running'`)
	first.do(t, chromedp.Click(chromedp.ID("notify-toggle")))
	first.waitFor(t, "notifications are on", `document.getElementById('notify-toggle').getAttribute('aria-pressed') === 'true'`)
	if got := eval[string](t, first, `document.getElementById('staff-board').dataset.audio`); got != "running" {
		t.Fatalf("the audio is %q after the click, want running", got)
	}

	// More tabs of the same board: the choices hold there too, and a click
	// lets each one's audio run.
	tabs := []*tab{first}
	for range 2 {
		tb := newTab(t, b, true)
		tb.do(t, chromedp.Navigate(a.server.URL+"/staff"))
		tb.waitFor(t, "another tab is live", jsBoardConnection+` === 'live'`)
		tb.do(t, chromedp.Click(chromedp.CSS("h1")))
		tb.waitFor(t, "the other tab's audio runs", `document.getElementById('staff-board').dataset.audio === 'running'`)
		if got := eval[string](t, tb, `document.getElementById('sound-toggle').getAttribute('aria-pressed') + document.getElementById('notify-toggle').getAttribute('aria-pressed')`); got != "truetrue" {
			t.Errorf("another tab's switches read %q, want both on", got)
		}
		tabs = append(tabs, tb)
	}
	total := func(name string) int {
		n := 0
		for _, tb := range tabs {
			n += eval[int](t, tb, jsBoardData(name))
		}
		return n
	}
	if got := total("chimes"); got != 0 {
		t.Errorf("%d chimes before any new order, want 0: the order already on the board is not new", got)
	}

	// The worker has one tab announce each new order: the one watching
	// longest, the first.
	for i, name := range []string{"New Nia", "New Ned"} {
		o := a.create(t, name)
		for _, tb := range tabs {
			tb.waitFor(t, "every tab shows the new order", jsCard(o, orders.Received)+` !== null`)
		}
		if !eval[bool](t, first, jsCard(o, orders.Received)+`.classList.contains('arrived')`) {
			t.Error("the new card is not highlighted")
		}
		first.waitFor(t, "the first tab chimes and shows a notification",
			fmt.Sprintf(`%s === %d && %s === %d`, jsBoardData("chimes"), i+1, jsBoardData("notifications"), i+1))
		if got := eval[string](t, first, `document.getElementById('board-announce').textContent`); got != "New order from "+name+"." {
			t.Errorf("the first tab announces %q to screen readers", got)
		}
		if got, want := total("chimes"), i+1; got != want {
			t.Errorf("after %d new orders in 3 tabs, %d chimes, want %d", i+1, got, want)
		}
	}

	// Moves are not new orders, and a reload announces nothing it shows;
	// the tab that announces is now the second.
	a.advance(t, before, orders.Received)
	first.do(t, chromedp.Reload())
	first.waitFor(t, "the reloaded board is live", jsBoardConnection+` === 'live'`)
	last := a.create(t, "New Noor")
	for _, tb := range tabs {
		tb.waitFor(t, "every tab shows the last order", jsCard(last, orders.Received)+` !== null`)
	}
	tabs[1].waitFor(t, "the second tab chimes and shows a notification",
		jsBoardData("chimes")+` === 1 && `+jsBoardData("notifications")+` === 1`)
	if got := eval[int](t, first, jsBoardData("chimes")); got != 0 {
		t.Errorf("the reloaded tab chimed %d times, want 0", got)
	}
	if got := total("chimes"); got != 1 {
		t.Errorf("%d chimes in all tabs after the reload and a new order, want 1", got)
	}
}
