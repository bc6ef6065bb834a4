package web

import (
	"context"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/ordertracker/ordertracker/orders"
)

// signInWith signs in through the form as the account name and waits for
// the board.
func (a *staffApp) signInWith(t *testing.T, tb *tab, name, password string) {
	t.Helper()
	tb.do(t, chromedp.Navigate(a.server.URL+"/staff/login"))
	tb.do(t,
		chromedp.WaitVisible(chromedp.ID("password")),
		chromedp.SetValue(chromedp.ID("name"), name),
		chromedp.SetValue(chromedp.ID("password"), password),
	)
	tb.do(t,
		chromedp.Click(chromedp.CSS(`.staff-login button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("staff-board")),
	)
}

// jsMovedBy reads who the card of o says moved it last: "" when it names
// nobody.
func jsMovedBy(o orders.Order) string {
	return `(() => { const by = document.querySelector('#order-` + o.Token + ` .order-by');` +
		` return by && !by.hidden ? by.querySelector('.order-by-name').textContent : ''; })()`
}

// TestBrowserBoardNamesWhoMovedAnOrder: two members of staff, each in a
// browser of their own; what marta moves, oskar's board says marta moved,
// live, and a move by the worker after it names nobody.
func TestBrowserBoardNamesWhoMovedAnOrder(t *testing.T) {
	t.Parallel()
	a := newStaffApp(t, staffOptions{})
	a.addAccount(t, marta, martaPassword)
	a.addAccount(t, oskar, oskarPassword)
	lena := a.create(t, "Lena Park")

	martaTab := newTab(t, newBrowser(t), true)
	a.signInWith(t, martaTab, "Marta", martaPassword)
	oskarTab := newTab(t, newBrowser(t), true)
	a.signInWith(t, oskarTab, oskar, oskarPassword)
	for who, tb := range map[string]*tab{marta: martaTab, oskar: oskarTab} {
		tb.waitFor(t, who+"'s board is live", jsBoardConnection+` === 'live'`)
		if got := eval[string](t, tb, `document.getElementById('staff-member').textContent`); got != who {
			t.Errorf("%s's board says it is signed in as %q", who, got)
		}
		tb.markPage(t)
	}
	if got := eval[string](t, oskarTab, jsMovedBy(lena)); got != "" {
		t.Errorf("a new order's card says it was moved by %q", got)
	}

	martaTab.do(t, chromedp.Click(chromedp.CSS("#order-"+lena.Token+" button.primary")))
	oskarTab.waitFor(t, "oskar's board says marta moved the order", jsCard(lena, orders.Cooking)+` !== null && `+jsMovedBy(lena)+` === 'marta'`)
	martaTab.waitFor(t, "marta's own board says so too", jsMovedBy(lena)+` === 'marta'`)

	if _, err := a.store.Advance(context.Background(), lena.Token, orders.Cooking, orders.ByWorker); err != nil {
		t.Fatal(err)
	}
	oskarTab.waitFor(t, "the worker's move names nobody", jsCard(lena, orders.OutForDelivery)+` !== null && `+jsMovedBy(lena)+` === ''`)
	martaTab.checkNotReloaded(t)
	oskarTab.checkNotReloaded(t)
}
