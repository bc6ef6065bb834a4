package web

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/heapprofiler"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/performance"
	"github.com/chromedp/cdproto/tracing"
	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"

	"github.com/ordertracker/ordertracker/orders"
	views "github.com/ordertracker/ordertracker/templ"
)

// These tests drive the staff board in a real headless Chromium, with the
// helpers of browser_test.go (newBrowser, newTab), against a staffApp: the
// real handler with the staff side on.

// Expressions that read the board. The connection is undefined while a
// page loads afresh, before its element is parsed.
const (
	jsBoardConnection = `document.getElementById('connection')?.dataset.state`
	jsBoardMessage    = `document.getElementById('board-message')`
)

// jsCard finds the card of o in the group of status s, or null.
func jsCard(o orders.Order, s orders.Status) string {
	return fmt.Sprintf(`document.querySelector('#group-%s #order-%s')`, s, o.Token)
}

// jsCount reads the count shown on the group of status s; it is undefined
// while a page loads afresh, before the group is parsed.
func jsCount(s orders.Status) string {
	return fmt.Sprintf(`document.querySelector('#group-%s .count')?.textContent`, s)
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
	a.signInAt(t, tb, a.server.URL)
}

// signInAt signs in through the form of the site at base (the app, or a
// proxy in front of it) and waits for the board. On a busy machine under
// the race detector a sign-in takes seconds at every step, so each step has
// a wait of its own, and the password is set in one go rather than typed
// key by key. The name is left blank, which is the account "staff".
func (a *staffApp) signInAt(t *testing.T, tb *tab, base string) {
	t.Helper()
	tb.do(t, chromedp.Navigate(base+"/staff"))
	tb.do(t, chromedp.WaitVisible(chromedp.ID("password")), chromedp.SetValue(chromedp.ID("password"), a.password))
	tb.do(t,
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
	t.Parallel()
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

	// "Show 50 more" with JavaScript: the window grows in place. The click
	// is the link's own, not the mouse's at the point where the link was
	// measured: the link sits below fifty cards, and in one full run a
	// click at coordinates left the column as it was.
	eval[bool](t, staff, `(document.querySelector('#group-received .more-link').click(), true)`)
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

// The load measurement of the staff board runs only when asked:
//
//	go test ./web/ -run TestBoardUnderLoad -board-load -v
//
// It is a measurement, not a test of timing: it reports what it saw (see
// BENCHMARKS.md, "Staff board") and fails only if the board ends up wrong.
var (
	boardLoad       = flag.Bool("board-load", false, "run TestBoardUnderLoad: the staff board in Chromium under a stream of changes")
	boardLoadOrders = flag.Int("board-load-orders", 10_000, "TestBoardUnderLoad: orders in progress at the start")
	boardLoadRate   = flag.Int("board-load-rate", 100, "TestBoardUnderLoad: changes per second")
	boardLoadFor    = flag.Duration("board-load-for", 30*time.Second, "TestBoardUnderLoad: how long the changes go on")
)

// boardProbe is put into the board's page before its own scripts: it
// records every long task (a task of the main thread over 50 ms, by the
// Long Tasks API). It asks for no frames of its own, which would have the
// page drawn 60 times a second whatever the board does.
const boardProbe = `
window.boardProbe = { tasks: [] };
new PerformanceObserver((list) => {
	for (const e of list.getEntries()) {
		window.boardProbe.tasks.push({ start: e.startTime, duration: e.duration });
	}
}).observe({ type: "longtask", buffered: true });
`

// boardProbeResult is what the probe saw since the measurement began, and
// what the page holds.
type boardProbeResult struct {
	Tasks    []struct{ Start, Duration float64 }
	Elements int
	Cards    int
}

// loadDriver makes the changes of the load: it places orders and moves
// them on, each stage a queue it takes from at the head (as a kitchen
// does) and at random (as the worker and other staff do), so that cards
// shown and orders not shown both move.
type loadDriver struct {
	store  *orders.Store
	queues map[orders.Status][]string // tokens, oldest first
	rng    *rand.Rand
}

func (d *loadDriver) step(ctx context.Context, i int) error {
	switch i % 8 {
	case 0, 4:
		o, err := d.store.Create(ctx, orders.NewOrder{CustomerName: "Customer " + strconv.Itoa(i),
			Lines: []orders.Line{{MenuID: "margherita", Quantity: 2}, {MenuID: "lemonade", Quantity: 1}}})
		if err != nil {
			return err
		}
		d.queues[orders.Received] = append(d.queues[orders.Received], o.Token)
		return nil
	case 1:
		return d.advance(ctx, orders.Received, false)
	case 5:
		return d.advance(ctx, orders.Received, true)
	case 2:
		return d.advance(ctx, orders.Cooking, false)
	case 6:
		return d.advance(ctx, orders.Cooking, true)
	case 3:
		return d.advance(ctx, orders.OutForDelivery, false)
	}
	if i%16 == 7 {
		q := d.queues[orders.Received]
		j := d.rng.IntN(len(q))
		token := q[j]
		d.queues[orders.Received] = slices.Delete(q, j, j+1)
		_, err := d.store.Cancel(ctx, token, orders.ByStaff)
		return err
	}
	return d.advance(ctx, orders.OutForDelivery, true)
}

// advance moves on the order at the head of from's queue, or one at random.
func (d *loadDriver) advance(ctx context.Context, from orders.Status, random bool) error {
	q := d.queues[from]
	j := 0
	if random {
		j = d.rng.IntN(len(q))
	}
	token := q[j]
	d.queues[from] = slices.Delete(q, j, j+1)
	if _, err := d.store.Advance(ctx, token, from, orders.ByStaff); err != nil {
		return fmt.Errorf("advance from %s: %w", from, err)
	}
	if to, _ := from.Next(); !to.Terminal() {
		d.queues[to] = append(d.queues[to], token)
	}
	return nil
}

// fillBoard puts n orders in progress in one statement each way, a third
// in each unfinished stage, entering their stages a few milliseconds
// apart, through the same triggers (and event log) as every other change.
func fillBoard(t *testing.T, store *orders.Store, n int) *loadDriver {
	t.Helper()
	ctx := context.Background()
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = orders.NewToken()
	}
	pool := store.Pool()
	for _, sql := range []string{
		`INSERT INTO orders (token, customer_name, items, total_cents, status, actor, created_at, updated_at, next_move_at)
		 SELECT token, 'Customer ' || i, '[{"id":"margherita","name":"Margherita","price_cents":950,"quantity":2},{"id":"lemonade","name":"Lemonade","price_cents":350,"quantity":1}]',
		        2250, 'received', 'customer', now() - (($2 - i) * interval '10 ms'), now() - (($2 - i) * interval '10 ms'), now() + interval '1 day'
		 FROM unnest($1::text[]) WITH ORDINALITY AS t (token, i)`,
		`UPDATE orders SET status = 'cooking', actor = 'worker', updated_at = updated_at + interval '1 ms' WHERE id % 3 <> 0`,
		`UPDATE orders SET status = 'out_for_delivery', actor = 'worker', updated_at = updated_at + interval '1 ms' WHERE id % 3 = 2`,
		`ANALYZE orders`,
	} {
		args := []any{tokens, n}
		if !strings.Contains(sql, "$1") {
			args = nil
		}
		if _, err := pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("fill the board: %v", err)
		}
	}
	d := &loadDriver{store: store, queues: map[orders.Status][]string{}, rng: rand.New(rand.NewPCG(1, 2))}
	for _, s := range []orders.Status{orders.Received, orders.Cooking, orders.OutForDelivery} {
		rows, _ := pool.Query(ctx, `SELECT token FROM orders WHERE status = $1 ORDER BY updated_at, token COLLATE "C"`, s)
		q, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		d.queues[s] = q
	}
	return d
}

func TestBoardUnderLoad(t *testing.T) {
	if !*boardLoad {
		t.Skip("a measurement: run it with -board-load (see BENCHMARKS.md, Staff board)")
	}
	a := newStaffApp(t, staffOptions{})
	driver := fillBoard(t, a.store, *boardLoadOrders)
	counts, err := a.store.Counts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("orders in progress: %d received, %d cooking, %d out for delivery",
		counts[orders.Received], counts[orders.Cooking], counts[orders.OutForDelivery])

	// The page as the server renders it.
	cookie := a.login(t, call{})
	var renders []time.Duration
	var size int
	for range 5 {
		start := time.Now()
		r := a.send(t, http.MethodGet, "/staff", call{session: cookie})
		renders = append(renders, time.Since(start))
		size = len(r.body)
	}
	slices.Sort(renders)
	t.Logf("GET /staff: median %v of 5, %d KiB", renders[2].Round(100*time.Microsecond), size/1024)

	browser := newBrowser(t)
	staff := newTab(t, browser, true)
	if _, err := chromedp.Call(staff.ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: boardProbe}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(staff.ctx, performance.Enable, performance.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	loadStart := time.Now()
	a.signIn(t, staff)
	staff.waitFor(t, "the board is live", jsBoardConnection+` === 'live'`)
	t.Logf("sign-in to a live board: %v", time.Since(loadStart).Round(time.Millisecond))
	loading := eval[boardProbeResult](t, staff, `({tasks: window.boardProbe.tasks})`)
	before := boardMetrics(t, staff)
	startElements := eval[int](t, staff, `document.getElementsByTagName('*').length`)
	const resetProbe = `(window.boardProbe.tasks = [], true)`

	// First the board with nothing happening: the long tasks that a busy
	// machine makes of a page that does next to nothing.
	loadavg, _ := os.ReadFile("/proc/loadavg")
	chromium := chromedp.FromContext(browser).Browser.Process().Pid
	eval[bool](t, staff, resetProbe)
	trace := traceMainThread(t, staff)
	idle := min(*boardLoadFor, 10*time.Second)
	chromiumCPU := processTreeCPU(chromium)
	time.Sleep(idle)
	chromiumCPU = processTreeCPU(chromium) - chromiumCPU
	idleTasks := trace.stop(t)
	idleProbe := eval[boardProbeResult](t, staff, `({tasks: window.boardProbe.tasks})`)
	t.Logf("idle for %v (machine load average %s): %d long tasks, the longest %.0f ms; main thread: the longest task %.0f ms of which %.0f ms on the CPU; Chromium %.0f%% of one core",
		idle, strings.Join(strings.Fields(string(loadavg))[:3], " "), len(idleProbe.Tasks), longestTask(idleProbe.Tasks),
		idleTasks.longestWall, idleTasks.longestWallCPU, 100*chromiumCPU.Seconds()/idle.Seconds())

	eval[bool](t, staff, resetProbe)
	chromiumCPU = processTreeCPU(chromium)
	trace = traceMainThread(t, staff)

	// The changes, at the rate asked for; a change that runs late is made
	// at once, so the rate holds on average.
	ctx := context.Background()
	every := time.Second / time.Duration(*boardLoadRate)
	total := int(*boardLoadFor / every)
	maxElements, maxCards := 0, 0
	start := time.Now()
	lastSample := start
	for i := range total {
		if wait := time.Until(start.Add(time.Duration(i) * every)); wait > 0 {
			time.Sleep(wait)
		}
		if err := driver.step(ctx, i); err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
		if time.Since(lastSample) >= time.Second {
			lastSample = time.Now()
			n := eval[[]int](t, staff, `[document.getElementsByTagName('*').length, document.querySelectorAll('.order').length]`)
			maxElements, maxCards = max(maxElements, n[0]), max(maxCards, n[1])
		}
	}
	took := time.Since(start)
	chromiumCPU = processTreeCPU(chromium) - chromiumCPU
	tasks := trace.stop(t)
	t.Logf("changes: %d in %v (%.0f/s)", total, took.Round(time.Millisecond), float64(total)/took.Seconds())

	// The board must end as the database is: the counts of every column,
	// and each column's window the first orders of its queue.
	counts, err = a.store.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var conds []string
	for s, n := range counts {
		conds = append(conds, jsCount(s)+` === '`+views.Thousands(n)+`'`)
	}
	settle := time.Now()
	staff.waitFor(t, "the counts match the database", strings.Join(conds, " && "))
	t.Logf("after the last change the counts matched the database within %v", time.Since(settle).Round(time.Millisecond))
	for s, limit := range (views.BoardWindows{}).Limits() {
		first, err := a.store.ListStatus(ctx, orders.StatusPage{Status: s, Limit: limit})
		if err != nil {
			t.Fatal(err)
		}
		staff.waitFor(t, "the "+string(s)+" column shows the first orders of its queue",
			jsTokens(s)+`.join() === '`+strings.Join(tokens(first), ",")+`'`)
	}

	run := eval[boardProbeResult](t, staff, `({tasks: window.boardProbe.tasks,
		elements: document.getElementsByTagName('*').length, cards: document.querySelectorAll('.order').length})`)
	after := boardMetrics(t, staff)
	load, _ := os.ReadFile("/proc/loadavg")
	t.Logf("loading the board: %d long tasks, the longest %.0f ms", len(loading.Tasks), longestTask(loading.Tasks))
	t.Logf("under load (Long Tasks API): %d long tasks, %d over 100 ms, the longest %.0f ms",
		len(run.Tasks), overLongTask(run.Tasks, 100), longestTask(run.Tasks))
	t.Logf("under load (trace of the main thread): %d tasks, %d over 50 ms and %d over 100 ms of wall time, the longest %.0f ms of which %.0f ms on the CPU; the most CPU of one task %.1f ms; CPU %.2f s in all (%.0f%% of one core)",
		tasks.count, tasks.over50, tasks.over100, tasks.longestWall, tasks.longestWallCPU, tasks.maxCPU, tasks.cpu.Seconds(), 100*tasks.cpu.Seconds()/took.Seconds())
	t.Logf("Chromium, all its processes: %.1f s of CPU during the run (%.0f%% of one core)", chromiumCPU.Seconds(), 100*chromiumCPU.Seconds()/took.Seconds())
	t.Logf("elements: %d at the start, at most %d sampled each second, %d at the end; cards at most %d, %d at the end",
		startElements, maxElements, run.Elements, maxCards, run.Cards)
	t.Logf("DevTools nodes %.0f -> %.0f; JS heap after GC %.1f -> %.1f MiB; event listeners %.0f -> %.0f",
		before["Nodes"], after["Nodes"], before["JSHeapUsedSize"]/(1<<20), after["JSHeapUsedSize"]/(1<<20),
		before["JSEventListeners"], after["JSEventListeners"])
	t.Logf("main thread during the run: script %.1f s, layout %.2f s (%.0f layouts), style %.2f s, all tasks %.1f s",
		after["ScriptDuration"]-before["ScriptDuration"], after["LayoutDuration"]-before["LayoutDuration"],
		after["LayoutCount"]-before["LayoutCount"], after["RecalcStyleDuration"]-before["RecalcStyleDuration"],
		after["TaskDuration"]-before["TaskDuration"])
	t.Logf("machine load average at the end: %s", strings.Join(strings.Fields(string(load))[:3], " "))
}

// processTreeCPU is the CPU time that the process pid and all its
// descendants have used, from /proc (zero where there is none).
func processTreeCPU(pid int) time.Duration {
	type proc struct {
		parent int
		ticks  int64
	}
	procs := map[int]proc{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, name := range stats {
		b, err := os.ReadFile(name)
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid ... utime stime: comm may hold spaces.
		i := strings.LastIndexByte(string(b), ')')
		f := strings.Fields(string(b[i+1:]))
		id, _ := strconv.Atoi(strings.Fields(string(b))[0])
		if len(f) < 13 {
			continue
		}
		parent, _ := strconv.Atoi(f[1])
		utime, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		procs[id] = proc{parent: parent, ticks: utime + stime}
	}
	var ticks int64
	for id, p := range procs {
		for a := id; a > 1; a = procs[a].parent {
			if a == pid {
				ticks += p.ticks
				break
			}
			if _, ok := procs[a]; !ok {
				break
			}
		}
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}

// longestTask is the duration of the longest of tasks, in milliseconds.
func longestTask(tasks []struct{ Start, Duration float64 }) float64 {
	longest := 0.0
	for _, task := range tasks {
		longest = max(longest, task.Duration)
	}
	return longest
}

// overLongTask counts the tasks longer than ms.
func overLongTask(tasks []struct{ Start, Duration float64 }, ms float64) int {
	n := 0
	for _, task := range tasks {
		if task.Duration > ms {
			n++
		}
	}
	return n
}

// mainThreadTrace records the tasks of a tab's main thread, with how long
// each ran on the CPU: on a machine shared with other work, a long task of
// wall time may be one that waited for a core.
type mainThreadTrace struct {
	ctx    context.Context
	mu     sync.Mutex
	main   map[[2]int]bool // pid, tid of the renderers' main threads
	tasks  []traceEvent
	done   chan struct{}
	cancel context.CancelFunc
}

// traceEvent is one event of a Chromium trace, in the Trace Event Format.
type traceEvent struct {
	Name string  `json:"name"`
	Ph   string  `json:"ph"`
	Dur  float64 `json:"dur"`  // microseconds of wall time
	Tdur float64 `json:"tdur"` // microseconds on the CPU
	Pid  int     `json:"pid"`
	Tid  int     `json:"tid"`
	Args struct {
		Name string `json:"name"`
	} `json:"args"`
}

// mainThreadTasks sums up a trace of the main thread.
type mainThreadTasks struct {
	count, over50, over100      int
	longestWall, longestWallCPU float64 // milliseconds
	maxCPU                      float64 // milliseconds
	cpu                         time.Duration
}

func traceMainThread(t *testing.T, tb *tab) *mainThreadTrace {
	t.Helper()
	ctx, cancel := context.WithCancel(tb.ctx)
	tr := &mainThreadTrace{ctx: tb.ctx, main: map[[2]int]bool{}, done: make(chan struct{}), cancel: cancel}
	data := chromedp.Events(ctx, tracing.DataCollected)
	complete := chromedp.Events(ctx, tracing.TracingComplete)
	go func() {
		for ev, err := range data {
			if err != nil {
				return
			}
			tr.mu.Lock()
			for _, raw := range ev.Value {
				var e traceEvent
				if json.Unmarshal(raw, &e) != nil {
					continue
				}
				switch {
				case e.Ph == "M" && e.Name == "thread_name" && e.Args.Name == "CrRendererMain":
					tr.main[[2]int{e.Pid, e.Tid}] = true
				case e.Ph == "X" && e.Name == "ThreadControllerImpl::RunTask":
					tr.tasks = append(tr.tasks, e)
				}
			}
			tr.mu.Unlock()
		}
	}()
	go func() {
		for _, err := range complete {
			if err == nil {
				close(tr.done)
			}
			return
		}
	}()
	_, err := chromedp.Call(tb.ctx, tracing.Start, tracing.StartParams{
		TransferMode: tracing.StartTransferModeReportEvents,
		TraceConfig:  &tracing.TraceConfig{IncludedCategories: []string{"toplevel"}},
	})
	if err != nil {
		t.Fatalf("start tracing: %v", err)
	}
	return tr
}

func (tr *mainThreadTrace) stop(t *testing.T) mainThreadTasks {
	t.Helper()
	defer tr.cancel()
	if _, err := chromedp.Call(tr.ctx, tracing.End, cdp.Empty{}); err != nil {
		t.Fatalf("end tracing: %v", err)
	}
	select {
	case <-tr.done:
	case <-time.After(2 * time.Minute): // Chromium hands the trace over after the fact, slowly on a busy machine
		t.Fatal("the trace never completed")
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var sum mainThreadTasks
	for _, e := range tr.tasks {
		if !tr.main[[2]int{e.Pid, e.Tid}] {
			continue
		}
		wall, cpu := e.Dur/1000, e.Tdur/1000
		sum.count++
		sum.cpu += time.Duration(e.Tdur * float64(time.Microsecond))
		sum.maxCPU = max(sum.maxCPU, cpu)
		if wall > 50 {
			sum.over50++
		}
		if wall > 100 {
			sum.over100++
		}
		if wall > sum.longestWall {
			sum.longestWall, sum.longestWallCPU = wall, cpu
		}
	}
	return sum
}

// boardMetrics collects the page's garbage and reads DevTools' performance
// metrics.
func boardMetrics(t *testing.T, tb *tab) map[string]float64 {
	t.Helper()
	if _, err := chromedp.Call(tb.ctx, heapprofiler.CollectGarbage, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	res, err := chromedp.Call(tb.ctx, performance.GetMetrics, cdp.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]float64{}
	for _, metric := range res.Metrics {
		m[metric.Name] = metric.Value
	}
	return m
}

// tokens lists the orders' tokens.
func tokens(list []orders.Order) []string {
	out := make([]string, len(list))
	for i, o := range list {
		out[i] = o.Token
	}
	return out
}

// TestBrowserStaffBoardReloadsWhenTooFarBehind takes the board's network
// away while more changes are made than a stream replays, then gives it
// back: the stream says reset, and the board loads afresh, with the counts
// of now.
func TestBrowserStaffBoardReloadsWhenTooFarBehind(t *testing.T) {
	t.Parallel()
	a := newStaffApp(t, staffOptions{})
	browser := newBrowser(t)
	a.create(t, "Ada")
	staff := newTab(t, browser, true)
	// The network going down mid-stream, and the refused reconnects, are
	// what the browser reports (net::ERR_INCOMPLETE_CHUNKED_ENCODING,
	// ERR_EMPTY_RESPONSE, ERR_SOCKET_NOT_CONNECTED, ...): they are the
	// test. An HTTP status would still be a problem.
	staff.expect("Failed to load resource: net::ERR_")
	a.signIn(t, staff)
	staff.waitFor(t, "the board is live", jsBoardConnection+` === 'live'`)
	staff.markPage(t)

	a.conns.hold()
	staff.waitFor(t, "the board knows it is not live", jsBoardConnection+` !== 'live'`)
	_, err := a.store.Pool().Exec(context.Background(), `
		INSERT INTO orders (token, customer_name, items, total_cents, status, actor)
		SELECT upper(substr(md5(random()::text), 1, 26)), 'Guest', '[{"id":"margherita","name":"Margherita","price_cents":950,"quantity":1}]'::jsonb, 950, 'received', 'customer'
		FROM generate_series(1, $1)`, maxStaffReplay+1)
	if err != nil {
		t.Fatal(err)
	}
	a.conns.release()
	staff.waitFor(t, "the board loads afresh and is live", `window.notReloaded !== true && `+jsBoardConnection+` === 'live'`)
	want := fmt.Sprint(maxStaffReplay + 2)
	if got := eval[string](t, staff, `document.querySelector('.group[data-status="received"] .count').textContent.replace(/\D/g, '')`); got != want {
		t.Errorf("Received counts %q after the reload, want %s", got, want)
	}
}
