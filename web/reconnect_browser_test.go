package web

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/ordertracker/ordertracker/internal/accounts"
	"github.com/ordertracker/ordertracker/orders"
	views "github.com/ordertracker/ordertracker/templ"
)

// These tests break the tracking page's and the board's streams in the
// ways that EventSource does not recover from by itself (see
// static/reconnecting-stream.js), in Chromium, with the helpers of
// browser_test.go: a proxy that answers 502, the network going away, a
// connection whose bytes stop, a page frozen and brought back. Each time
// the page must catch up in place, every step shown once, and say what was
// happening meanwhile.

// testBackoff is the reconnection's backoff the pages are told to use
// (?backoff=<base ms>,<cap ms>): short, so that a test does not wait half a
// minute for a retry.
const testBackoff = "backoff=100,1000"

// slowBackoff is a backoff so long that, within a test's wait, only a
// resume can bring a stream back.
const slowBackoff = "backoff=600000,600000"

// transports are the two ways a tracking page follows its order.
var transports = []struct {
	name  string
	query string // added to the tracking page's address
}{
	{"through the shared worker", ""},
	{"on the page's own stream", "&transport=direct"},
}

// openPage opens url in tb and waits until its stream is live.
func (tb *tab) openPage(t *testing.T, url string) {
	t.Helper()
	tb.do(t, chromedp.Navigate(url))
	tb.waitFor(t, "the page is live", jsConnection+` === 'live'`)
}

// recordStates has the page remember every state its connection indicator
// shows from now on, however briefly.
func (tb *tab) recordStates(t *testing.T) {
	t.Helper()
	eval[bool](t, tb, `(() => {
		window.shownStates = [];
		new MutationObserver((records) => {
			for (const r of records) window.shownStates.push(r.oldValue);
		}).observe(document.getElementById('connection'), {attributeFilter: ['data-state'], attributeOldValue: true});
		return true;
	})()`)
}

// shownStates is every state the indicator showed since recordStates,
// each change once, ending with the state it shows now.
func (tb *tab) shownStates(t *testing.T) []string {
	t.Helper()
	return eval[[]string](t, tb, `window.shownStates.slice(1).concat(document.getElementById('connection').dataset.state)`)
}

// notes is the text of the notes in the tracking page's "under the hood"
// panel.
func (tb *tab) notes(t *testing.T) string {
	t.Helper()
	return eval[string](t, tb, `[...document.querySelectorAll('#hood-frames .frame-note')].map((li) => li.textContent).join('\n')`)
}

// checkDelivered waits until the order is delivered, and fails the test
// unless the tracking page shows every stage once, without having been
// reloaded.
func (tb *tab) checkDelivered(t *testing.T) {
	t.Helper()
	tb.waitFor(t, "the order is delivered and the stream finished", jsStatus+` === 'Delivered' && `+jsConnection+` === 'finished'`)
	tb.checkNotReloaded(t)
	if got := tb.timeline(t); !slices.Equal(got, allStages) {
		t.Errorf("timeline = %q, want %q: a step was lost or shown twice", got, allStages)
	}
}

func TestBrowserTrackingCatchesUpAfterAProxyAnswers502(t *testing.T) {
	t.Parallel()
	a := newBrowserApp(t)
	proxy := newFlakyProxy(t, a.server.URL)
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			o := a.create(t, "Ada")
			tb := newTab(t, newBrowser(t), true)
			// What Chromium says of the broken stream and of the 502s, on
			// the page's own stream: they are the test.
			tb.expect("net::ERR_")
			tb.expect("EventSource's response has a MIME type")
			tb.expect("the server responded with a status of 502")
			tb.openPage(t, proxy.URL()+"/orders/"+o.Token+"?"+testBackoff+tr.query)
			tb.markPage(t)
			tb.recordStates(t)

			refused := proxy.refusals()
			proxy.fail()
			tb.waitFor(t, "the page says it is reconnecting", jsConnection+` === 'reconnecting'`)
			// The browser's own reconnect got a 502 and gave up; the page
			// tried again after that, and got another.
			waitUntil(t, "the browser has been refused twice", func() bool { return proxy.refusals() >= refused+2 })
			if got := eval[string](t, tb, jsConnection); got != "reconnecting" {
				t.Errorf("while the proxy fails the page shows %q, want reconnecting", got)
			}
			a.advance(t, o, orders.Received)
			a.advance(t, o, orders.Cooking)
			proxy.pass()
			tb.waitFor(t, "the steps made meanwhile arrive", jsStatus+` === 'Out for delivery' && `+jsConnection+` === 'live'`)
			a.advance(t, o, orders.OutForDelivery)
			tb.checkDelivered(t)
			if got := tb.shownStates(t); !slices.Contains(got, "reconnecting") {
				t.Errorf("the page showed %q, never reconnecting", got)
			}
			if notes := tb.notes(t); !strings.Contains(notes, "gives up for good") || !strings.Contains(strings.ToLower(notes), "trying again") {
				t.Errorf("the panel does not tell of the retries after the 502: %q", notes)
			}
		})
	}
}

func TestBrowserTrackingWaitsOutBeingOffline(t *testing.T) {
	t.Parallel()
	a := newBrowserApp(t)
	o := a.create(t, "Grace")
	tb := newTab(t, newBrowser(t), true)
	tb.expect("net::ERR_") // the stream, cut by going offline
	// Its own stream: the network conditions are the page's, and a
	// shared worker is a target of its own. The backoff is too long for
	// anything but the network coming back to resume the stream in time.
	tb.openPage(t, a.server.URL+"/orders/"+o.Token+"?transport=direct&"+slowBackoff)
	tb.markPage(t)
	tb.recordStates(t)

	setOffline(t, tb, true)
	tb.waitFor(t, "the page says it is offline", jsConnection+` === 'offline'`)
	if got := eval[string](t, tb, `document.getElementById('connection-text').textContent`); got != "Offline: resumes when the network is back" {
		t.Errorf("offline, the page says %q", got)
	}
	a.advance(t, o, orders.Received)
	a.advance(t, o, orders.Cooking)
	setOffline(t, tb, false)
	tb.waitFor(t, "the steps made while offline arrive", jsStatus+` === 'Out for delivery' && `+jsConnection+` === 'live'`)
	a.advance(t, o, orders.OutForDelivery)
	tb.checkDelivered(t)
	if notes := tb.notes(t); !strings.Contains(notes, "The network is back: resuming at once") {
		t.Errorf("the panel does not tell of the resume: %q", notes)
	}
}

// setOffline takes tb's network away, or gives it back, as DevTools'
// "Offline" does: requests fail, and navigator.onLine says so.
func setOffline(t *testing.T, tb *tab, offline bool) {
	t.Helper()
	ctx, cancel := tb.bounded()
	defer cancel()
	params := offlineByRuleParams{Offline: offline, MatchedNetworkConditions: []offlineRule{}}
	if offline {
		params.MatchedNetworkConditions = []offlineRule{{Offline: true, DownloadThroughput: -1, UploadThroughput: -1}}
	}
	if _, err := chromedp.Call(ctx, emulateNetworkConditionsByRule, params); err != nil {
		t.Fatalf("emulate the network: %v", err)
	}
	if _, err := chromedp.Call(ctx, network.OverrideNetworkState, network.OverrideNetworkStateParams{
		Offline: offline, DownloadThroughput: -1, UploadThroughput: -1,
	}); err != nil {
		t.Fatalf("override navigator.onLine: %v", err)
	}
}

// emulateNetworkConditionsByRule is the command as both forms of the
// protocol take it: Chromium 148 (Debian 12's) wants offline as a parameter
// of the call and refuses the call without it, while later versions, and
// cdproto's types with them, moved it into each rule. Each ignores the
// other's field.
var emulateNetworkConditionsByRule = cdp.Command[offlineByRuleParams, cdp.Empty]{Method: network.CommandEmulateNetworkConditionsByRule}

type offlineByRuleParams struct {
	Offline                  bool          `json:"offline"`
	MatchedNetworkConditions []offlineRule `json:"matchedNetworkConditions"`
}

// An offlineRule matches every request (no urlPattern) and throttles none.
type offlineRule struct {
	URLPattern         string  `json:"urlPattern"`
	Latency            float64 `json:"latency"`
	DownloadThroughput float64 `json:"downloadThroughput"`
	UploadThroughput   float64 `json:"uploadThroughput"`
	Offline            bool    `json:"offline"`
}

func TestBrowserWatchdogReopensAStreamGoneSilent(t *testing.T) {
	t.Parallel()
	// A heartbeat every second: a page takes 2.5 s of silence for a dead
	// stream.
	a := newBrowserAppWith(t, browserAppOptions{heartbeat: time.Second})
	proxy := newFlakyProxy(t, a.server.URL)
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			o := a.create(t, "Lena")
			tb := newTab(t, newBrowser(t), true)
			tb.openPage(t, proxy.URL()+"/orders/"+o.Token+"?"+testBackoff+tr.query)
			tb.waitFor(t, "the panel shows the heartbeat", `document.getElementById('hood-heartbeat').textContent.startsWith('every 1 s')`)
			tb.markPage(t)
			tb.recordStates(t)

			// The connection stays open, and nothing arrives on it any
			// more: only a new stream brings the steps made meanwhile.
			proxy.stall()
			a.advance(t, o, orders.Received)
			a.advance(t, o, orders.Cooking)
			tb.waitFor(t, "the steps made meanwhile arrive", jsStatus+` === 'Out for delivery' && `+jsConnection+` === 'live'`)
			a.advance(t, o, orders.OutForDelivery)
			tb.checkDelivered(t)
			if got := tb.shownStates(t); !slices.Contains(got, "stale") {
				t.Errorf("the page showed %q, never stale", got)
			}
			if notes := tb.notes(t); !strings.Contains(notes, "Nothing arrived for 2.5 s") {
				t.Errorf("the panel does not tell of the watchdog: %q", notes)
			}
		})
	}
}

func TestBrowserResumesWhenAFrozenPageRunsAgain(t *testing.T) {
	t.Parallel()
	a := newBrowserApp(t)
	proxy := newFlakyProxy(t, a.server.URL)
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			o := a.create(t, "Omar")
			tb := newTab(t, newBrowser(t), true)
			tb.expect("net::ERR_")
			tb.expect("EventSource's response has a MIME type")
			tb.expect("the server responded with a status of 502")
			// Each retry waits up to a minute: a stream back within the
			// test's wait came back because the page asked.
			tb.openPage(t, proxy.URL()+"/orders/"+o.Token+"?"+slowBackoff+tr.query)
			tb.markPage(t)

			proxy.fail()
			tb.waitFor(t, "the page waits to try again", `/^Reconnecting in \d+ s$/.test(document.getElementById('connection-text').textContent)`)
			a.advance(t, o, orders.Received)
			proxy.pass()
			setLifecycle(t, tb, page.SetWebLifecycleStateStateFrozen)
			setLifecycle(t, tb, page.SetWebLifecycleStateStateActive)
			tb.waitFor(t, "the step made meanwhile arrives", jsStatus+` === 'Cooking' && `+jsConnection+` === 'live'`)
			tb.checkNotReloaded(t)
			if notes := tb.notes(t); !strings.Contains(notes, "resuming at once") {
				t.Errorf("the panel does not tell of the resume: %q", notes)
			}
			a.deliver(t, o, orders.Cooking)
		})
	}
}

// setLifecycle freezes tb's page, or lets it run again, as a browser does
// with a tab in the background.
func setLifecycle(t *testing.T, tb *tab, state page.SetWebLifecycleStateState) {
	t.Helper()
	ctx, cancel := tb.bounded()
	defer cancel()
	if _, err := chromedp.Call(ctx, page.SetWebLifecycleState, page.SetWebLifecycleStateParams{State: state}); err != nil {
		t.Fatalf("set the page's lifecycle state to %s: %v", state, err)
	}
}

// TestBrowserStaffTabsShareOneStream opens eight board tabs in one
// browser. Over HTTP/1.1 a browser holds at most six connections to a
// site: with a stream per tab the seventh would not even load. All eight
// must be live on one stream of the server's, and count every change once.
func TestBrowserStaffTabsShareOneStream(t *testing.T) {
	t.Parallel()
	a := newStaffApp(t, staffOptions{})
	browser := newBrowser(t)
	tabs := make([]*tab, 8)
	tabs[0] = newTab(t, browser, true)
	a.signIn(t, tabs[0])
	for i := 1; i < len(tabs); i++ {
		tabs[i] = newTab(t, browser, true)
	}
	errs := make([]error, len(tabs))
	var wg sync.WaitGroup
	for i, tb := range tabs[1:] {
		wg.Go(func() {
			ctx, cancel := tb.bounded()
			defer cancel()
			errs[i+1] = chromedp.Do(ctx, chromedp.Navigate(a.server.URL+"/staff"))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("tab %d did not load: %v (a browser holds six connections to a site: is the stream shared?)", i+1, err)
		}
	}
	for i, tb := range tabs {
		tb.waitFor(t, fmt.Sprintf("tab %d is live", i+1), jsBoardConnection+` === 'live'`)
		tb.markPage(t)
	}
	waitUntil(t, "one stream is open at the server", func() bool { return a.hub.Streams() == 1 })

	o := a.create(t, "Mia Rossi")
	a.advance(t, o, orders.Received)
	for i, tb := range tabs {
		tb.waitFor(t, fmt.Sprintf("tab %d shows the order cooking", i+1), jsCard(o, orders.Cooking)+` !== null`)
		if got := eval[string](t, tb, jsCount(orders.Received)+` + '/' + `+jsCount(orders.Cooking)); got != "0/1" {
			t.Errorf("tab %d: received/cooking counts = %s, want 0/1", i+1, got)
		}
		tb.checkNotReloaded(t)
	}
	if n := a.hub.Streams(); n != 1 {
		t.Errorf("%d streams are open at the server, want one for all eight tabs", n)
	}
}

// holdScript holds back the first request of tb whose URL matches
// pattern (a DevTools URL pattern, * for any characters): the page's HTML
// arrives, and the page waits for the script. paused says when it is held;
// release lets it, and every later one, through.
func holdScript(t *testing.T, tb *tab, pattern string) (paused <-chan struct{}, release func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(tb.ctx)
	t.Cleanup(cancel)
	requests := chromedp.Events(ctx, fetch.RequestPaused)
	if _, err := chromedp.Call(tb.ctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{URLPattern: pattern}}}); err != nil {
		t.Fatalf("hold back %s: %v", pattern, err)
	}
	held := make(chan struct{})
	released := make(chan struct{})
	var first fetch.RequestID
	go func() {
		for ev, err := range requests {
			if err != nil {
				return
			}
			if first == "" {
				first = ev.RequestID
				close(held)
				continue
			}
			select {
			case <-released:
			case <-ctx.Done():
				return
			}
			chromedp.Call(ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
		}
	}()
	return held, func() {
		t.Helper()
		<-held
		close(released)
		if _, err := chromedp.Call(tb.ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: first}); err != nil {
			t.Fatalf("let %s through: %v", pattern, err)
		}
	}
}

// jsCountsAre is true when the board's counts are counts.
func jsCountsAre(counts map[orders.Status]int) string {
	var conds []string
	for _, s := range orders.Statuses {
		conds = append(conds, jsCount(s)+` === '`+views.Thousands(counts[s])+`'`)
	}
	return strings.Join(conds, " && ")
}

// jsNavigation is how the page was loaded: "navigate", or "reload".
const jsNavigation = `performance.getEntriesByType('navigation')[0].type`

// TestBrowserStaffTabRenderedBehindTheWorker opens a board tab whose page
// was rendered at a position the shared worker's stream has since passed:
// the worker passes on what the tab missed, from its memory of the latest
// events, each counted once; or, when the tab missed more than the worker
// remembers, has it load afresh.
func TestBrowserStaffTabRenderedBehindTheWorker(t *testing.T) {
	t.Parallel()
	a := newStaffApp(t, staffOptions{})
	browser := newBrowser(t)
	first := newTab(t, browser, true)
	a.signIn(t, first)
	first.waitFor(t, "the first tab is live", jsBoardConnection+` === 'live'`)
	first.markPage(t)

	tests := []struct {
		name    string
		changes func(t *testing.T)
		reload  bool
	}{
		{"gets what it missed from the worker", func(t *testing.T) {
			o := a.create(t, "Ada")
			a.create(t, "Grace")
			a.advance(t, o, orders.Received)
		}, false},
		{"loads afresh when it missed more than the worker keeps", func(t *testing.T) {
			// More orders at once than the worker keeps events (500).
			if _, err := a.store.Pool().Exec(context.Background(), `
				INSERT INTO orders (token, customer_name, items, total_cents, status, actor)
				SELECT upper(substr(md5(random()::text), 1, 26)), 'Guest', '[{"id":"margherita","name":"Margherita","price_cents":950,"quantity":1}]'::jsonb, 950, 'received', 'customer'
				FROM generate_series(1, 600)`); err != nil {
				t.Fatal(err)
			}
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			behind := newTab(t, browser, true)
			paused, release := holdScript(t, behind, "*/static/staff.*.js")
			loaded := make(chan error, 1)
			go func() {
				ctx, cancel := behind.bounded()
				defer cancel()
				loaded <- chromedp.Do(ctx, chromedp.Navigate(a.server.URL+"/staff"))
			}()
			select {
			case <-paused:
			case err := <-loaded:
				t.Fatalf("the board loaded before its script was held back: %v", err)
			case <-time.After(browserWait):
				t.Fatal("the board's script was never asked for")
			}

			// The board is rendered; its script has not run. Changes now
			// reach the worker (and the first tab) before the new tab asks.
			tt.changes(t)
			counts, err := a.store.Counts(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			first.waitFor(t, "the first tab counts the changes", jsCountsAre(counts))
			release()
			if err := <-loaded; err != nil {
				t.Fatalf("load the board: %v", err)
			}
			behind.waitFor(t, "the new tab counts every change once and is live",
				jsCountsAre(counts)+` && `+jsBoardConnection+` === 'live'`)
			want := "navigate"
			if tt.reload {
				want = "reload"
			}
			if got := eval[string](t, behind, jsNavigation); got != want {
				t.Errorf("the new tab's page was loaded by %q, want %q", got, want)
			}
			first.checkNotReloaded(t)
			if n := a.hub.Streams(); n != 1 {
				t.Errorf("%d streams are open at the server, want the worker's one", n)
			}
		})
	}
}

// waitForRestored waits until a JavaScript expression is true in a page
// that came back from the back/forward cache, where waitFor's polling
// looks in the execution context of the page the tab had left for.
func (tb *tab) waitForRestored(t *testing.T, what, expr string) {
	t.Helper()
	tb.waitForFromOutside(t, what, expr)
}

func TestBrowserCatchesUpBackFromTheBackForwardCache(t *testing.T) {
	t.Parallel()
	a := newBrowserApp(t)
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			o := a.create(t, "Mia")
			browser := newBrowser(t)
			if tr.query == "" {
				// Chromium keeps no page whose shared worker it would leave
				// without a client ("sharedworker-with-no-active-client"):
				// another tab tracking the order keeps the worker, and its
				// stream, while this one is away.
				other := newTab(t, browser, true)
				other.openPage(t, a.server.URL+"/orders/"+o.Token+"?"+slowBackoff)
			}
			tb := newTab(t, browser, true)
			tb.expect("net::ERR_")
			tb.openPage(t, a.server.URL+"/orders/"+o.Token+"?"+slowBackoff+tr.query)
			tb.markPage(t)

			// Away on another page, the tracking page waits in the
			// back/forward cache while the order moves on.
			tb.do(t, chromedp.Navigate(a.server.URL+"/"))
			a.advance(t, o, orders.Received)
			a.advance(t, o, orders.Cooking)
			eval[bool](t, tb, `(history.back(), true)`)
			tb.waitForRestored(t, "the page is back, with the steps made meanwhile",
				`location.pathname.startsWith('/orders/') && `+jsStatus+` === 'Out for delivery' && `+jsConnection+` === 'live'`)
			tb.checkNotReloaded(t)
			a.advance(t, o, orders.OutForDelivery)
			tb.waitForRestored(t, "the last step arrives", jsStatus+` === 'Delivered' && `+jsConnection+` === 'finished'`)
			if got := tb.timeline(t); !slices.Equal(got, allStages) {
				t.Errorf("timeline = %q, want %q: a step was lost or shown twice", got, allStages)
			}
		})
	}
}

func TestBrowserStaffBoardCatchesUpAfterAProxyAnswers502(t *testing.T) {
	t.Parallel()
	a := newStaffApp(t, staffOptions{})
	proxy := newFlakyProxy(t, a.server.URL)
	for _, tr := range []struct{ name, query string }{
		{"through the shared worker", ""},
		{"on the board's own stream", "&transport=direct"},
	} {
		t.Run(tr.name, func(t *testing.T) {
			staff := newTab(t, newBrowser(t), true)
			// What Chromium says of the broken stream and of the 502s
			// (the stream's, and the answer to the board's question
			// whether it is still signed in): they are the test.
			staff.expect("net::ERR_")
			staff.expect("EventSource's response has a MIME type")
			staff.expect("the server responded with a status of 502")
			a.signInAt(t, staff, proxy.URL())
			staff.do(t, chromedp.Navigate(proxy.URL()+"/staff?"+testBackoff+tr.query))
			staff.waitFor(t, "the board is live", jsBoardConnection+` === 'live'`)
			staff.markPage(t)
			staff.recordStates(t)
			ada := a.create(t, "Ada")
			staff.waitFor(t, "the new order shows", jsCard(ada, orders.Received)+` !== null`)

			refused := proxy.refusals()
			proxy.fail()
			staff.waitFor(t, "the board says it is reconnecting", jsBoardConnection+` === 'reconnecting'`)
			waitUntil(t, "the browser has been refused twice", func() bool { return proxy.refusals() >= refused+2 })
			a.advance(t, ada, orders.Received)
			grace := a.create(t, "Grace")
			proxy.pass()
			counts, err := a.store.Counts(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			staff.waitFor(t, "the changes made meanwhile show, each counted once",
				jsBoardConnection+` === 'live' && `+jsCard(ada, orders.Cooking)+` !== null && `+jsCard(grace, orders.Received)+` !== null && `+jsCountsAre(counts))
			staff.checkNotReloaded(t)
			if got := staff.shownStates(t); !slices.Contains(got, "reconnecting") {
				t.Errorf("the board showed %q, never reconnecting", got)
			}
		})
	}
}

// jsOnSignInPage is true on the staff sign-in page.
const jsOnSignInPage = `location.pathname === '/staff/login' && !!document.getElementById('password')`

// TestBrowserStaffSignOutReachesEveryTab signs out in one board tab: the
// server ends the session's streams, and every other board tab of the
// browser goes to the sign-in page.
func TestBrowserStaffSignOutReachesEveryTab(t *testing.T) {
	t.Parallel()
	a := newStaffApp(t, staffOptions{})
	for _, tr := range []struct{ name, query string }{
		{"through the shared worker", ""},
		{"on the board's own stream", "?transport=direct"},
	} {
		t.Run(tr.name, func(t *testing.T) {
			browser := newBrowser(t)
			first := newTab(t, browser, true)
			a.signIn(t, first)
			first.waitFor(t, "the first tab is live", jsBoardConnection+` === 'live'`)
			second := newTab(t, browser, true)
			// The stream's reconnect, and the board's question whether
			// it is still signed in, are refused: that is the test.
			second.expect("401")
			second.do(t, chromedp.Navigate(a.server.URL+"/staff"+tr.query))
			second.waitFor(t, "the second tab is live", jsBoardConnection+` === 'live'`)

			first.do(t, chromedp.Click(chromedp.CSS(`.staff-signout button`)), chromedp.WaitVisible(chromedp.ID("password")))
			second.waitFor(t, "the other tab goes to the sign-in page", jsOnSignInPage)
			waitUntil(t, "no stream of the session is left open", func() bool { return a.hub.Streams() == 0 })
		})
	}
}

// TestBrowserStaffBoardOfAnOldPasswordEndsOnTheSignInPage keeps a board
// open while the process behind the proxy is replaced by one with a new
// STAFF_PASSWORD: the sessions made with the old one are void, and the
// board goes to the sign-in page instead of retrying for ever.
func TestBrowserStaffBoardOfAnOldPasswordEndsOnTheSignInPage(t *testing.T) {
	t.Parallel()
	before := newStaffApp(t, staffOptions{})
	after := newStaffApp(t, staffOptions{pool: before.pool, password: "a new staff password, after a leak"})
	proxy := newFlakyProxy(t, before.server.URL)
	for _, tr := range []struct{ name, query string }{
		{"through the shared worker", ""},
		{"on the board's own stream", "&transport=direct"},
	} {
		t.Run(tr.name, func(t *testing.T) {
			proxy.switchTo(t, before.server.URL)
			// The account has the old password again, as before the restart.
			if _, err := before.accounts.Bootstrap(context.Background(), accounts.BootstrapName, before.password); err != nil {
				t.Fatal(err)
			}
			staff := newTab(t, newBrowser(t), true)
			staff.expect("net::ERR_") // the stream, broken off by the restart
			staff.expect("401")       // the reconnect, and the question whether still signed in
			before.signInAt(t, staff, proxy.URL())
			staff.do(t, chromedp.Navigate(proxy.URL()+"/staff?"+testBackoff+tr.query))
			staff.waitFor(t, "the board is live", jsBoardConnection+` === 'live'`)

			// The new process starts, and gives the account its new password.
			if _, err := after.accounts.Bootstrap(context.Background(), accounts.BootstrapName, after.password); err != nil {
				t.Fatal(err)
			}
			proxy.switchTo(t, after.server.URL)
			staff.waitFor(t, "the board goes to the sign-in page", jsOnSignInPage)
		})
	}
}
