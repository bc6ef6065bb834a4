package web

import (
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"github.com/ordertracker/ordertracker/orders"
)

// These tests drive what the tracking page does for a customer who is not
// watching it: notifications, running late, "My orders", cancelling and
// ordering again.

// grantNotifications lets the site of a show notifications in the browser
// context of tb, as a visitor who allowed them would.
func grantNotifications(t *testing.T, tb *tab, origin string) {
	t.Helper()
	ctx, cancel := tb.bounded()
	defer cancel()
	_, err := chromedp.CallBrowser(ctx, browser.SetPermission, browser.SetPermissionParams{
		Permission:       &browser.PermissionDescriptor{Name: "notifications"},
		Setting:          browser.PermissionSettingGranted,
		Origin:           origin,
		BrowserContextID: chromedp.FromContext(tb.ctx).BrowserContextID,
	})
	if err != nil {
		t.Fatalf("grant notifications: %v", err)
	}
}

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
	grantNotifications(t, tb, a.server.URL)
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
	grantNotifications(t, tb, a.server.URL)
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

	// Cooking is soon late too: the page records that the notice went.
	eval[bool](t, tb, `(() => {
		const late = document.getElementById('late');
		window.lateCleared = false;
		new MutationObserver(() => {
			if (late.textContent === '') window.lateCleared = true;
		}).observe(late, {childList: true, characterData: true, subtree: true});
		return true;
	})()`)
	a.moveTo(t, o, orders.Cooking)
	tb.waitFor(t, "the next step clears the notice", jsStatus+` === 'Cooking' && window.lateCleared`)
}
