package web

import (
	"context"
	"fmt"
	"strings"
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
	if _, err := chromedp.CallBrowser(ctx, browser.SetPermission, params); err != nil {
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

// jsHidden says whether the card of o is on the page but filtered out.
func jsFiltered(o orders.Order) string {
	return `document.getElementById('order-` + o.Token + `')?.classList.contains('filtered-out')`
}

// clearFilter empties the board's filter box, as selecting its text and
// typing over it would.
func clearFilter(t *testing.T, tb *tab) {
	t.Helper()
	if !eval[bool](t, tb, `(() => { const f = document.getElementById('board-filter'); f.value = ''; return true })()`) {
		t.Fatal("the filter box is not there")
	}
}

func TestBrowserStaffBoardFilterFindsOrders(t *testing.T) {
	t.Parallel()
	a := newStaffApp(t, staffOptions{})
	lena := a.create(t, "Lena Park")
	omar := a.create(t, "Omar Haddad")
	// Cooking, 55 orders: the last few are beyond its window of 50.
	many := a.createMany(t, 55)
	for _, o := range many {
		a.advance(t, o, orders.Received)
	}
	beyond := many[len(many)-1]

	tb := newTab(t, newBrowser(t), true)
	a.signIn(t, tb)
	tb.waitFor(t, "the board is live", jsBoardConnection+` === 'live'`)
	if eval[bool](t, tb, `document.getElementById('order-`+beyond.Token+`') !== null`) {
		t.Fatal("the last order has a card: the test needs it beyond the window")
	}
	tb.do(t, chromedp.SendKeys(chromedp.ID("board-filter"), "LEN"))
	tb.waitFor(t, "the filter hides the others", jsFiltered(omar)+` === true`)
	if eval[bool](t, tb, jsFiltered(lena)) {
		t.Error("the filter hides the order that matches")
	}

	// Live updates: a card that arrives shows if it matches, not otherwise.
	lenny := a.create(t, "Lenny Ortiz")
	zed := a.create(t, "Zed Quinn")
	tb.waitFor(t, "the new orders arrive", jsCard(zed, orders.Received)+` !== null && `+jsCard(lenny, orders.Received)+` !== null`)
	if got := eval[string](t, tb, jsFiltered(lenny)+` + '/' + `+jsFiltered(zed)); got != "false/true" {
		t.Errorf("filtered out (matching / not matching) = %s, want false/true", got)
	}
	if _, err := a.store.Cancel(context.Background(), omar.Token, orders.ByStaff); err != nil {
		t.Fatal(err)
	}
	tb.waitFor(t, "a moved card that does not match stays hidden", jsCard(omar, orders.Cancelled)+` !== null && `+jsFiltered(omar)+` === true`)

	// An order beyond the window is found through the server.
	clearFilter(t, tb)
	tb.do(t, chromedp.SendKeys(chromedp.ID("board-filter"), beyond.Token))
	// The keys go in one at a time, and the answer for a shorter part of
	// the token may find it too: the test waits for the whole token's.
	tb.waitFor(t, "the order beyond the window is found, and nothing else", `document.querySelector('#filter-results a[href="/staff/orders/`+beyond.Token+`"]') !== null && `+
		`document.getElementById('filter-status').textContent === '0 shown; 1 more found beyond them'`)
	audit(t, tb, "the board with a filter")
	clearFilter(t, tb)
	tb.do(t, chromedp.SendKeys(chromedp.ID("board-filter"), " "))
	tb.waitFor(t, "an empty filter shows every card", `document.querySelectorAll('.order.filtered-out').length === 0`)
}

func TestBrowserStaffKeysAndOrderPage(t *testing.T) {
	t.Parallel()
	a := newStaffApp(t, staffOptions{})
	lena := a.create(t, "Lena Park")
	omar := a.create(t, "Omar Haddad")

	tb := newTab(t, newBrowser(t), true)
	a.signIn(t, tb)
	tb.waitFor(t, "the board is live", jsBoardConnection+` === 'live'`)

	// a moves the focused card on, and it keeps the focus.
	tb.do(t, chromedp.Focus(chromedp.ID("order-"+lena.Token)), chromedp.KeyEvent("a"))
	tb.waitFor(t, "a moves the order on", jsCard(lena, orders.Cooking)+` !== null`)
	if got := a.status(t, lena); got != orders.Cooking {
		t.Errorf("after a, the order is %s, want cooking", got)
	}
	tb.waitFor(t, "the moved card keeps the focus", `document.activeElement?.id === 'order-`+lena.Token+`'`)
	tb.waitFor(t, "the move is announced", jsBoardMessage+`.textContent === 'Lena Park’s order is now cooking.'`)

	// c asks first; another key keeps the order; c twice cancels it.
	tb.do(t, chromedp.Focus(chromedp.ID("order-"+omar.Token)), chromedp.KeyEvent("c"))
	tb.waitFor(t, "c asks to confirm", jsBoardMessage+`.textContent.startsWith('Press c again to cancel Omar Haddad’s order')`)
	tb.do(t, chromedp.KeyEvent("x"), chromedp.KeyEvent("c"))
	if got := a.status(t, omar); got != orders.Received {
		t.Fatalf("c, another key and c cancelled the order: it is %s", got)
	}
	tb.do(t, chromedp.KeyEvent("c"))
	tb.waitFor(t, "c twice cancels", jsCard(omar, orders.Cancelled)+` !== null`)
	if got := a.status(t, omar); got != orders.Cancelled {
		t.Errorf("after c twice, the order is %s, want cancelled", got)
	}

	// Enter opens the order's page, with its history and its buttons.
	tb.do(t, chromedp.Focus(chromedp.ID("order-"+lena.Token)), chromedp.KeyEvent("\r"))
	tb.waitFor(t, "Enter opens the order's page", `document.getElementById('order-history') !== null`)
	if got := eval[[]string](t, tb, `[...document.querySelectorAll('#order-history li')].map((li) => li.textContent.replace(/\s+/g, ' ').trim().replace(/ \d\d:\d\d:\d\d UTC$/, ''))`); strings.Join(got, "|") != "Received by customer|Cooking by staff" {
		t.Errorf("the history reads %q", got)
	}
	audit(t, tb, "the order's page")
	tb.do(t, chromedp.Click(chromedp.CSS(`.staff-order button.primary`)))
	tb.waitFor(t, "the page's button moves the order and comes back", `document.getElementById('order-status')?.textContent === 'Out for delivery'`)
	if got := eval[string](t, tb, jsBoardMessage+`.textContent`); got != "Lena Park’s order is now out for delivery." {
		t.Errorf("the page says %q after the move", got)
	}
	if got := a.status(t, lena); got != orders.OutForDelivery {
		t.Errorf("the order is %s, want out for delivery", got)
	}
}
