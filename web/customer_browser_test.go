package web

import (
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"github.com/ordertracker/ordertracker/orders"
)

// These tests drive what the tracking page does for a customer who is not
// watching it: notifications, running late, "My orders", cancelling and
// ordering again.

// hide opens a new tab in front of tb, in the same window, as a visitor
// who turns to another tab does, and waits until tb's document is hidden.
// (A tab opened as newTab opens it has a window of its own, and leaves tb
// visible; bringing a target to the front with Target.activateTarget
// changes nothing in headless Chromium.)
func hide(t *testing.T, tb *tab) {
	t.Helper()
	ctx, cancel := tb.bounded()
	defer cancel()
	created, err := chromedp.CallBrowser(ctx, target.CreateTarget, target.CreateTargetParams{
		URL:              "about:blank",
		BrowserContextID: chromedp.FromContext(tb.ctx).BrowserContextID,
	})
	if err != nil {
		t.Fatalf("open a tab in front: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := tb.bounded()
		defer cancel()
		chromedp.CallBrowser(ctx, target.CloseTarget, target.CloseTargetParams{TargetID: created.TargetID})
	})
	tb.waitFor(t, "the tab is hidden", `document.hidden`)
}

func TestBrowserNotifiesOfEachChangeWhileTheTabIsHidden(t *testing.T) {
	t.Parallel()
	a := newBrowserApp(t)
	o := a.create(t, "Ada")
	tb := newTab(t, newBrowser(t), true)
	grantNotifications(t, tb.ctx, a.server.URL)
	tb.openTracking(t, a, o)
	tb.waitFor(t, "the notification button shows", `!document.getElementById('notify').hidden`)
	tb.do(t, chromedp.Click(chromedp.ID("notify-button")))
	tb.waitFor(t, "notifications are on", `document.getElementById('notify-button').getAttribute('aria-pressed') === 'true'`)

	hide(t, tb)
	a.startWorker()
	tb.waitFor(t, "the order is delivered", jsStatus+` === 'Delivered'`)
	tb.waitFor(t, "a notification was shown for each change", `document.getElementById('notify').dataset.shown === '3'`)
	if got := eval[string](t, tb, `document.querySelector('link[rel="icon"]').getAttribute('href')`); !strings.Contains(got, "status-delivered.") {
		t.Errorf("the page's icon is %q, want the delivered one", got)
	}
	if got := eval[string](t, tb, `document.title`); !strings.HasPrefix(got, "Delivered") {
		t.Errorf("title = %q, want it to start with the status", got)
	}
}

func TestBrowserNotifiesOfNothingWhileTheTabIsInFront(t *testing.T) {
	t.Parallel()
	a := newBrowserApp(t)
	o := a.create(t, "Ada")
	tb := newTab(t, newBrowser(t), true)
	grantNotifications(t, tb.ctx, a.server.URL)
	tb.openTracking(t, a, o)
	tb.do(t, chromedp.Click(chromedp.ID("notify-button")))
	tb.waitFor(t, "notifications are on", `document.getElementById('notify-button').getAttribute('aria-pressed') === 'true'`)
	a.moveTo(t, o, orders.Cooking)
	tb.waitFor(t, "the move arrives", jsStatus+` === 'Cooking'`)
	if got := eval[string](t, tb, `document.getElementById('notify').dataset.shown || '0'`); got != "0" {
		t.Errorf("%s notifications shown while the tab was in front, want none", got)
	}
}

func TestBrowserSaysWhenTheOrderIsRunningLate(t *testing.T) {
	t.Parallel()
	a := newBrowserApp(t)
	o := a.create(t, "Ada")
	tb := newTab(t, newBrowser(t), true)
	tb.openTracking(t, a, o)
	// The worker is not running: the order stays received past its stage.
	tb.waitFor(t, "the page says it is late", `document.getElementById('late').textContent.startsWith('Running late: now expected by ')`)
	if got := eval[string](t, tb, `document.getElementById('late').getAttribute('aria-live')`); got != "polite" {
		t.Errorf("the late notice's aria-live is %q, want polite", got)
	}
	// The revised estimate moves on with the clock.
	first := eval[float64](t, tb, `Date.parse(document.getElementById('when-time').dateTime)`)
	tb.waitFor(t, "the estimate moves on", `Date.parse(document.getElementById('when-time').dateTime) > `+strconv.FormatFloat(first, 'f', 0, 64))
	audit(t, tb, "a tracking page running late, with its controls")

	// Cooking is late too within 300 ms, perhaps before the event even
	// arrives on a busy machine: the page records that the notice went, if
	// only for a moment.
	eval[bool](t, tb, `(() => {
		window.lateCleared = false;
		new MutationObserver((records) => {
			if (records.some((r) => r.type === 'childList' && r.removedNodes.length > 0 && r.addedNodes.length === 0)) window.lateCleared = true;
		}).observe(document.getElementById('late'), {childList: true});
		return true;
	})()`)
	a.moveTo(t, o, orders.Cooking)
	tb.waitFor(t, "the next step clears the notice", jsStatus+` === 'Cooking' && window.lateCleared`)
}

func TestBrowserACustomerCancelsAndTheBoardShowsIt(t *testing.T) {
	t.Parallel()
	a := newStaffApp(t, staffOptions{})
	b := newBrowser(t)
	staff := newTab(t, b, true)
	a.signIn(t, staff)
	staff.waitFor(t, "the board is live", jsBoardConnection+` === 'live'`)
	for _, scripts := range []bool{false, true} {
		name := "without JavaScript"
		if scripts {
			name = "with JavaScript"
		}
		t.Run(name, func(t *testing.T) {
			o := a.create(t, "Ada")
			staff.waitFor(t, "the board shows the order", jsCard(o, orders.Received)+` !== null`)
			customer := newTab(t, b, scripts)
			customer.do(t, chromedp.Navigate(a.server.URL+"/orders/"+o.Token))
			if scripts {
				customer.waitFor(t, "the page is live", jsConnection+` === 'live'`)
			}
			customer.do(t, chromedp.Click(chromedp.CSS(`#cancel-form button[type="submit"]`)))
			// With JavaScript the cancel may arrive live before the page the
			// 303 leads to loads: one wait holds for both pages.
			customer.waitFor(t, "the page shows the customer's cancel", `document.readyState === 'complete' && !!document.getElementById('status-message') && `+jsStatus+` === 'Cancelled' &&
				!document.getElementById('cancel-form') &&
				document.getElementById('status-message').textContent === 'You cancelled this order.' &&
				[...document.querySelectorAll('#timeline .timeline-who')].pop().textContent === 'by you'`)
			staff.waitFor(t, "the board shows the order cancelled", jsCard(o, orders.Cancelled)+` !== null && `+jsCard(o, orders.Received)+` === null`)
			if got := a.status(t, o); got != orders.Cancelled {
				t.Errorf("the order is %s, want cancelled", got)
			}
		})
	}
}

func TestBrowserTheCancelButtonGoesOnceTheKitchenStarts(t *testing.T) {
	t.Parallel()
	a := newBrowserApp(t)
	b := newBrowser(t)

	t.Run("live, with JavaScript", func(t *testing.T) {
		o := a.create(t, "Ada")
		tb := newTab(t, b, true)
		tb.openTracking(t, a, o)
		if !eval[bool](t, tb, `!!document.getElementById('cancel-form')`) {
			t.Fatal("a received order's page has no cancel button")
		}
		a.moveTo(t, o, orders.Cooking)
		tb.waitFor(t, "the button goes with the move", jsStatus+` === 'Cooking' && !document.getElementById('cancel-form')`)
	})
	t.Run("too late, without JavaScript", func(t *testing.T) {
		o := a.create(t, "Bo")
		tb := newTab(t, b, false)
		tb.expect("409 (Conflict)")
		tb.do(t, chromedp.Navigate(a.server.URL+"/orders/"+o.Token))
		a.moveTo(t, o, orders.Cooking)
		tb.do(t, chromedp.Click(chromedp.CSS(`#cancel-form button[type="submit"]`)))
		tb.waitFor(t, "the page says it is too late", `(document.getElementById('problem')?.textContent || '').includes('can no longer be cancelled')`)
		if got := eval[string](t, tb, jsStatus); got != "Cooking" {
			t.Errorf("the page shows %q, want the order as it stands, Cooking", got)
		}
		if got := a.status(t, o); got != orders.Cooking {
			t.Errorf("the order is %s, want still cooking", got)
		}
	})
}

func TestBrowserOrderAgainFillsTheForm(t *testing.T) {
	t.Parallel()
	a := newBrowserApp(t)
	b := newBrowser(t)
	o := a.create(t, "Mia Rossi")
	a.deliver(t, o, orders.Received)
	for _, scripts := range []bool{false, true} {
		t.Run("scripts "+strconv.FormatBool(scripts), func(t *testing.T) {
			tb := newTab(t, b, scripts)
			tb.do(t, chromedp.Navigate(a.server.URL+"/orders/"+o.Token))
			tb.do(t, chromedp.Click(chromedp.ID("order-again")))
			tb.waitFor(t, "the form is filled in", `location.pathname === '/' && document.getElementById('name')?.value === 'Mia Rossi'`)
			got := eval[[]string](t, tb, `['margherita', 'lemonade', 'tiramisu'].map((id) => document.getElementById('qty-' + id).value)`)
			if strings.Join(got, ",") != "2,1,0" {
				t.Errorf("quantities = %q, want the same items as before: 2,1,0", got)
			}
			if scripts {
				tb.waitFor(t, "the total shows", `document.querySelector('#order-total output').textContent === '€22.50'`)
				audit(t, tb, "the order form filled in to order again")
			}
			tb.do(t, chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
			tb.waitFor(t, "a new order's page opens", `/^\/orders\/[A-Z2-7]{26}$/.test(location.pathname) && location.pathname !== '/orders/`+o.Token+`'`)
		})
	}
}

func TestBrowserMyOrdersFollowsSeveralOrdersLive(t *testing.T) {
	t.Parallel()
	a := newBrowserApp(t)
	b := newBrowser(t)
	tb := newTab(t, b, true)
	placed := []orders.Order{a.create(t, "Ada"), a.create(t, "Bo"), a.create(t, "Cy")}
	for _, o := range placed {
		tb.openTracking(t, a, o)
	}
	tb.do(t, chromedp.Navigate(a.server.URL+"/my-orders"))
	const rows = `[...document.querySelectorAll('#my-orders li')]`
	tb.waitFor(t, "every order is listed as it stands", rows+`.length === 3 && `+rows+`.every((li) => li.dataset.status === 'received')`)
	if got := eval[[]string](t, tb, rows+`.map((li) => li.querySelector('a').getAttribute('href'))`); strings.Join(got, ",") !=
		"/orders/"+placed[0].Token+",/orders/"+placed[1].Token+",/orders/"+placed[2].Token {
		t.Errorf("links = %q, want the tracking pages in the order they were placed", got)
	}
	audit(t, tb, "the my-orders page")

	// A tracking tab of one of them shares the stream with the list.
	track := newTab(t, b, true)
	track.openTracking(t, a, placed[1])
	a.startWorker()
	tb.waitFor(t, "every order arrives delivered", rows+`.every((li) => li.dataset.status === 'delivered' && li.querySelector('.my-order-status').textContent === 'Delivered')`)
	track.waitFor(t, "the tracking tab is delivered too", jsStatus+` === 'Delivered'`)
	if got := eval[string](t, tb, `document.getElementById('my-orders-news').textContent`); !strings.Contains(got, "Delivered") {
		t.Errorf("the list's live region says %q, want the latest change", got)
	}
	if n := len(a.seen(`^/orders/[^/]+/events$`)); n != 0 {
		t.Errorf("%d streams of one order alone were opened, want every order on the shared stream", n)
	}

	tb.do(t, chromedp.Click(chromedp.CSS(`#my-orders li[data-token="`+placed[0].Token+`"] button`)))
	tb.waitFor(t, "the order is forgotten", rows+`.length === 2`)
	tb.do(t, chromedp.Reload())
	tb.waitFor(t, "it stays forgotten", rows+`.length === 2 && !`+rows+`.some((li) => li.dataset.token === '`+placed[0].Token+`')`)
}

func TestBrowserMyOrdersWithoutJavaScriptSaysItNeedsIt(t *testing.T) {
	t.Parallel()
	a := newBrowserApp(t)
	tb := newTab(t, newBrowser(t), false)
	tb.do(t, chromedp.Navigate(a.server.URL+"/my-orders"))
	if got := eval[string](t, tb, `document.querySelector('.my-orders-noscript')?.textContent || ''`); !strings.Contains(got, "needs JavaScript") {
		t.Errorf("without JavaScript the page says %q, want that it needs JavaScript", got)
	}
}
