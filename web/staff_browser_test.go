package web

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ordertracker/ordertracker/orders"
)

// These tests drive the staff board in a real headless Chromium, with the
// helpers of browser_test.go (newBrowser, newTab), against a staffApp: the
// real handler with the staff side on.

// Expressions that read the board.
const (
	jsBoardConnection = `document.getElementById('connection').dataset.state`
	jsBoardMessage    = `document.getElementById('board-message')`
)

// jsCard finds the card of o in the group of status s, or null.
func jsCard(o orders.Order, s orders.Status) string {
	return fmt.Sprintf(`document.querySelector('#group-%s #order-%s')`, s, o.Token)
}

// jsCount reads the count shown on the group of status s.
func jsCount(s orders.Status) string {
	return fmt.Sprintf(`document.querySelector('#group-%s .count').textContent`, s)
}

// forgiveStatus forgives tb the console errors of responses with the given
// status (such as "409 (Conflict)") that a test asks for on purpose: the
// browser logs every such response as an error of the page. Call it after
// newTab, so that it runs before the tab's check.
func forgiveStatus(t *testing.T, tb *tab, status string) {
	t.Cleanup(func() {
		tb.mu.Lock()
		defer tb.mu.Unlock()
		tb.problems = slices.DeleteFunc(tb.problems, func(p string) bool {
			return strings.Contains(p, "Failed to load resource: the server responded with a status of "+status)
		})
	})
}

// signIn signs the browser of tb in through the form and waits for the
// board.
func (a *staffApp) signIn(t *testing.T, tb *tab) {
	t.Helper()
	tb.do(t,
		chromedp.Navigate(a.server.URL+"/staff"),
		chromedp.WaitVisible(chromedp.ID("password")),
		chromedp.SendKeys(chromedp.ID("password"), testStaffPassword),
		chromedp.Click(chromedp.CSS(`.staff-login button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("staff-board")),
	)
}

func TestBrowserStaffAdvanceReachesTheCustomerLive(t *testing.T) {
	a := newStaffApp(t, staffOptions{})
	browser := newBrowser(t)
	lena := a.create(t, "Lena Park")

	staff := newTab(t, browser, true)
	forgiveStatus(t, staff, "409 (Conflict)")
	a.signIn(t, staff)
	staff.waitFor(t, "the board is live", jsBoardConnection+` === 'live'`)
	if !eval[bool](t, staff, jsCard(lena, orders.Received)+` !== null`) {
		t.Fatal("the board does not show the new order under Received")
	}

	customer := newTab(t, browser, true)
	customer.do(t, chromedp.Navigate(a.server.URL+"/orders/"+lena.Token))
	customer.waitFor(t, "the tracking page is live", jsConnection+` === 'live'`)
	customer.markPage(t)
	staff.markPage(t)

	staff.do(t, chromedp.Click(chromedp.CSS("#order-"+lena.Token+" button.primary")))
	staff.waitFor(t, "the card moves to Cooking", jsCard(lena, orders.Cooking)+` !== null`)
	customer.waitFor(t, "the customer's page says Cooking", jsStatus+` === 'Cooking'`)
	if got := a.status(t, lena); got != orders.Cooking {
		t.Errorf("the order is %s, want cooking", got)
	}
	staff.waitFor(t, "the board says what happened", jsBoardMessage+`.textContent === 'Lena Park’s order is now cooking.'`)
	if got := eval[[]string](t, staff, `[...document.querySelectorAll('#order-`+lena.Token+` button')].map((b) => b.textContent)`); strings.Join(got, ",") != "Send out,Cancel" {
		t.Errorf("the moved card's buttons are %q, want Send out and Cancel", got)
	}
	if got := eval[string](t, staff, jsCount(orders.Received)+` + '/' + `+jsCount(orders.Cooking)); got != "0/1" {
		t.Errorf("received/cooking counts = %s, want 0/1", got)
	}
	if n := eval[int](t, staff, `document.querySelectorAll('#order-`+lena.Token+`').length`); n != 1 {
		t.Errorf("the order has %d cards, want 1: the answer to the click and the event must not both add one", n)
	}

	// A new order appears, and a move by someone else (the worker) moves
	// its card, without a reload.
	omar := a.create(t, "Omar Haddad")
	staff.waitFor(t, "the new order appears under Received", jsCard(omar, orders.Received)+` !== null`)
	if got := eval[string](t, staff, `document.querySelector('#order-`+omar.Token+` .order-items').textContent`); got != "2 × Margherita, 1 × Lemonade" {
		t.Errorf("the new card's items read %q", got)
	}
	if _, err := a.store.Advance(context.Background(), omar.Token, orders.Received, orders.ByWorker); err != nil {
		t.Fatal(err)
	}
	staff.waitFor(t, "the worker's move shows", jsCard(omar, orders.Cooking)+` !== null`)
	// Oldest first, by when each started cooking: Lena before Omar.
	if got := eval[[]string](t, staff, `[...document.querySelectorAll('#group-cooking .order-name')].map((e) => e.textContent)`); strings.Join(got, ",") != "Lena Park,Omar Haddad" {
		t.Errorf("the cooking group lists %q, want the one cooking longest first", got)
	}

	// A button from a board that fell behind: the click is refused with
	// 409, and the board says why.
	eval[bool](t, staff, `(document.querySelector('#order-`+omar.Token+` input[name=from]').value = 'received') === 'received'`)
	staff.do(t, chromedp.Click(chromedp.CSS("#order-"+omar.Token+" button.primary")))
	staff.waitFor(t, "the board says why nothing happened",
		jsBoardMessage+`.classList.contains('problem') && `+jsBoardMessage+`.textContent === 'Nothing changed: Omar Haddad’s order is already cooking.'`)
	if got := a.status(t, omar); got != orders.Cooking {
		t.Errorf("the refused click moved the order to %s", got)
	}

	staff.checkNotReloaded(t)
	customer.checkNotReloaded(t)
}

func TestBrowserStaffBoardWorksWithoutJavaScript(t *testing.T) {
	a := newStaffApp(t, staffOptions{})
	browser := newBrowser(t)
	o := a.create(t, "Mia Rossi")

	// Two staff, two tabs, both showing the order as received.
	first := newTab(t, browser, false)
	a.signIn(t, first)
	second := newTab(t, browser, false)
	forgiveStatus(t, second, "409 (Conflict)")
	second.do(t, chromedp.Navigate(a.server.URL+"/staff"), chromedp.WaitVisible(chromedp.ID("staff-board")))

	text := func(tb *tab, sel string) string {
		t.Helper()
		s, err := chromedp.Run(tb.ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	if got := text(first, "#connection-text"); got != "Not live: reload to see changes" {
		t.Errorf("without JavaScript the board says %q about being live", got)
	}

	first.do(t,
		chromedp.Click(chromedp.CSS("#order-"+o.Token+" button.primary")),
		chromedp.WaitVisible(chromedp.CSS("#group-cooking #order-"+o.Token)),
	)
	if got := text(first, "#board-message"); got != "Mia Rossi’s order is now cooking." {
		t.Errorf("after the move the board says %q", got)
	}

	// The second tab still shows the order as received; its click comes
	// too late.
	second.do(t,
		chromedp.Click(chromedp.CSS("#order-"+o.Token+" button.primary")),
		chromedp.WaitVisible(chromedp.CSS("#board-message.problem")),
	)
	if got := text(second, "#board-message"); got != "Nothing changed: Mia Rossi’s order is already cooking." {
		t.Errorf("after the late click the board says %q", got)
	}
	if _, err := chromedp.Run(second.ctx, chromedp.WaitVisible(chromedp.CSS("#group-cooking #order-"+o.Token))); err != nil {
		t.Errorf("the board after the late click does not show the order where it is: %v", err)
	}
	if got := a.status(t, o); got != orders.Cooking {
		t.Errorf("the order is %s, want cooking: the late click must change nothing", got)
	}

	// Signing out ends the session for every tab.
	first.do(t,
		chromedp.Navigate(a.server.URL+"/staff"),
		chromedp.Click(chromedp.CSS(`.staff-signout button`)),
		chromedp.WaitVisible(chromedp.ID("password")),
	)
	second.do(t, chromedp.Navigate(a.server.URL+"/staff"), chromedp.WaitVisible(chromedp.ID("password")))
}

func TestBrowserStaffBoardShowsAHostileNameAsText(t *testing.T) {
	a := newStaffApp(t, staffOptions{})
	browser := newBrowser(t)
	const name = `<img src=x onerror=alert(1)><script>alert(2)</script>`
	rendered := a.create(t, name) // on the page as the server renders it

	staff := newTab(t, browser, true)
	a.signIn(t, staff)
	staff.waitFor(t, "the board is live", jsBoardConnection+` === 'live'`)
	live := a.create(t, name+" (2)") // built by the script from an event
	staff.waitFor(t, "the second order appears", jsCard(live, orders.Received)+` !== null`)
	staff.do(t, chromedp.Click(chromedp.CSS("#order-"+rendered.Token+" button.primary")))
	staff.waitFor(t, "the move shows", jsCard(rendered, orders.Cooking)+` !== null && !`+jsBoardMessage+`.hidden`)

	for _, c := range []struct {
		expr, want string
	}{
		{`document.querySelector('#order-` + rendered.Token + ` .order-name').textContent`, name},
		{`document.querySelector('#order-` + live.Token + ` .order-name').textContent`, name + " (2)"},
		{jsBoardMessage + `.textContent`, name + "’s order is now cooking."},
	} {
		if got := eval[string](t, staff, c.expr); got != c.want {
			t.Errorf("%s = %q, want the text %q", c.expr, got, c.want)
		}
	}
	if n := eval[int](t, staff, `document.querySelectorAll('main img, main script').length`); n != 0 {
		t.Errorf("the name became %d elements on the board", n)
	}
	// The tab's check at the end fails the test for any dialog.
}

// TestBrowserStaffScreenshots saves the staff pages at phone and desktop
// width, when BROWSER_SCREENSHOTS names a folder.
func TestBrowserStaffScreenshots(t *testing.T) {
	dir := os.Getenv("BROWSER_SCREENSHOTS")
	if dir == "" {
		t.Skip("set BROWSER_SCREENSHOTS=dir to save screenshots of every page")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	a := newStaffApp(t, staffOptions{})
	browser := newBrowser(t)
	ctx := context.Background()
	names := []string{"Mia Rossi", "Lena Park", "Omar Haddad", "Sara Lind", "Tom Berg",
		"Nina Costa", "Ravi Menon", "Eva Novak", "Jon Reyes", "Kim Okafor"}
	var list []orders.Order
	for _, n := range names {
		list = append(list, a.create(t, n))
	}
	move := func(o orders.Order, to orders.Status) {
		for s := orders.Received; s != to; s, _ = s.Next() {
			if _, err := a.store.Advance(ctx, o.Token, s, orders.ByWorker); err != nil {
				t.Fatal(err)
			}
		}
	}
	move(list[0], orders.Delivered)
	move(list[1], orders.OutForDelivery)
	move(list[2], orders.Cooking)
	move(list[3], orders.Cooking)
	move(list[4], orders.Delivered)
	if _, err := a.store.Cancel(ctx, list[5].Token, orders.ByStaff); err != nil {
		t.Fatal(err)
	}

	// Before signing in: the sign-in form, and the page of a staff side
	// that is off (the customer pages' app has no staff password).
	off := newBrowserApp(t)
	for _, width := range []int64{390, 1280} {
		tb := newTab(t, browser, true)
		forgiveStatus(t, tb, "404 (Not Found)")
		tb.do(t, chromedp.EmulateViewport(width, 900), chromedp.Navigate(a.server.URL+"/staff/login"))
		shoot(t, tb, filepath.Join(dir, fmt.Sprintf("staff-login-%d.png", width)))
		tb.do(t, chromedp.Navigate(off.server.URL+"/staff"))
		shoot(t, tb, filepath.Join(dir, fmt.Sprintf("staff-off-%d.png", width)))
	}

	login := newTab(t, browser, true)
	a.signIn(t, login)
	for i, width := range []int64{390, 1280} {
		moved := list[len(list)-1-i]
		tb := newTab(t, browser, true)
		tb.do(t, chromedp.EmulateViewport(width, 900), chromedp.Navigate(a.server.URL+"/staff"))
		tb.waitFor(t, "the board is live", jsBoardConnection+` === 'live'`)
		tb.do(t, chromedp.Click(chromedp.CSS("#order-"+moved.Token+" button.primary")))
		tb.waitFor(t, "the move shows", jsCard(moved, orders.Cooking)+` !== null`)
		time.Sleep(300 * time.Millisecond) // let the highlight start, for the picture
		shoot(t, tb, filepath.Join(dir, fmt.Sprintf("staff-board-%d.png", width)))
	}
	// A click from a board that fell behind.
	tb := newTab(t, browser, true)
	forgiveStatus(t, tb, "409 (Conflict)")
	tb.do(t, chromedp.EmulateViewport(390, 900), chromedp.Navigate(a.server.URL+"/staff"))
	tb.waitFor(t, "the board is live", jsBoardConnection+` === 'live'`)
	eval[bool](t, tb, `(document.querySelector('#order-`+list[2].Token+` input[name=from]').value = 'received') === 'received'`)
	tb.do(t, chromedp.Click(chromedp.CSS("#order-"+list[2].Token+" button.primary")))
	tb.waitFor(t, "the board says why", jsBoardMessage+`.classList.contains('problem')`)
	shoot(t, tb, filepath.Join(dir, "staff-board-conflict-390.png"))

}

func shoot(t *testing.T, tb *tab, file string) {
	t.Helper()
	png, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Log("wrote", file)
}

// jsCards counts the cards in the column of status s.
func jsCards(s orders.Status) string {
	return fmt.Sprintf(`document.querySelectorAll('#group-%s .order').length`, s)
}

// jsMore reads what the column of status s says of the orders it does not
// show, or an empty string when it says nothing.
func jsMore(s orders.Status) string {
	return fmt.Sprintf(`(document.querySelector('#group-%[1]s .more').hidden ? '' : document.querySelector('#group-%[1]s .more-text').textContent)`, s)
}

// jsTokens lists the tokens of the cards in the column of status s, in order.
func jsTokens(s orders.Status) string {
	return fmt.Sprintf(`[...document.querySelectorAll('#group-%s .order')].map((e) => e.dataset.token)`, s)
}

func TestBrowserStaffBoardKeepsAWindowAndTrueCounts(t *testing.T) {
	a := newStaffApp(t, staffOptions{})
	browser := newBrowser(t)
	waiting := a.createMany(t, 60)

	staff := newTab(t, browser, true)
	a.signIn(t, staff)
	staff.waitFor(t, "the board is live", jsBoardConnection+` === 'live'`)
	staff.markPage(t)
	check := func(what, expr, want string) {
		t.Helper()
		if got := eval[string](t, staff, expr); got != want {
			t.Errorf("%s: %q, want %q", what, got, want)
		}
	}
	check("received count", jsCount(orders.Received), "60")
	check("received cards", jsCards(orders.Received)+`+''`, "50")
	check("received more", jsMore(orders.Received), "and 10 more")
	check("first card", jsTokens(orders.Received)+`[0]`, waiting[0].Token)

	// The newest order has no card; it moves on all the same, and the
	// counts say so.
	a.advance(t, waiting[59], orders.Received)
	staff.waitFor(t, "the counts follow an order without a card",
		jsCount(orders.Received)+` === '59' && `+jsCount(orders.Cooking)+` === '1' && `+jsCard(waiting[59], orders.Cooking)+` !== null`)
	check("received cards", jsCards(orders.Received)+`+''`, "50")
	check("received more", jsMore(orders.Received), "and 9 more")

	// The oldest order moves on: its card goes, and the next order waiting
	// takes its place at the end of the window.
	a.advance(t, waiting[0], orders.Received)
	staff.waitFor(t, "the column fills up from the queue",
		jsCard(waiting[0], orders.Cooking)+` !== null && `+jsCard(waiting[50], orders.Received)+` !== null && `+jsCards(orders.Received)+` === 50`)
	check("received count", jsCount(orders.Received), "58")
	check("received more", jsMore(orders.Received), "and 8 more")
	check("cooking, in the order orders started cooking", jsTokens(orders.Cooking)+`.join()`, waiting[59].Token+","+waiting[0].Token)

	// New orders join the end of the queue: counted, and not shown.
	fresh := a.createMany(t, 5)
	staff.waitFor(t, "the new orders are counted", jsCount(orders.Received)+` === '63'`)
	check("received cards", jsCards(orders.Received)+`+''`, "50")
	check("received more", jsMore(orders.Received), "and 13 more")

	// "Show 50 more" with JavaScript: the window grows in place.
	staff.do(t, chromedp.Click(chromedp.CSS("#group-received .more-link")))
	staff.waitFor(t, "the column shows every order", jsCards(orders.Received)+` === 63 && `+jsMore(orders.Received)+` === ''`)
	var want []string
	for _, o := range append(waiting[1:59], fresh...) {
		want = append(want, o.Token)
	}
	check("received, oldest first", jsTokens(orders.Received)+`.join()`, strings.Join(want, ","))
	check("the address", `location.search`, "?received=100")
	check("the link", `document.querySelector('#group-received .more-link').getAttribute('href')`, "/staff?received=150#group-received")
	counts, err := a.store.Counts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []orders.Status{orders.Received, orders.Cooking, orders.OutForDelivery, orders.Delivered, orders.Cancelled} {
		check(string(s)+" count against the database", jsCount(s), strconv.Itoa(counts[s]))
	}
	staff.checkNotReloaded(t)

	// Without JavaScript the link loads the board with the wider window.
	plain := newTab(t, browser, false)
	plain.do(t,
		chromedp.Navigate(a.server.URL+"/staff"),
		chromedp.Click(chromedp.CSS("#group-received .more-link")),
		chromedp.WaitVisible(chromedp.CSS("#order-"+fresh[4].Token)),
	)
	if got := eval[string](t, plain, jsCards(orders.Received)+` + ' ' + location.search`); got != "63 ?received=100" {
		t.Errorf("without JavaScript, after the link: %q, want 63 cards at ?received=100", got)
	}
}
