package web

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/ordertracker/ordertracker/internal/pgtest"
	"github.com/ordertracker/ordertracker/internal/stream"
	"github.com/ordertracker/ordertracker/orders"
)

// These tests drive the customer pages in a real headless Chromium, over
// plain HTTP/1.1 as a browser meets the site without TLS, against the whole
// application: the handler of the real process, a listener and hub, and a
// worker that moves orders on every few hundred milliseconds.
//
// They need Chromium. Without it they fail and say how to install it; set
// SKIP_BROWSER_TESTS=1 to skip them on a machine of your own (CI never
// does). Set BROWSER_SCREENSHOTS=dir to have TestBrowserScreenshots save
// every page at phone and desktop width.

// browserStage is how long the worker leaves an order in each stage.
const browserStage = 300 * time.Millisecond

// browserWait bounds every wait for the page; it is generous for a slow,
// busy CI machine, and only a failing test ever waits that long.
const browserWait = 20 * time.Second

// browserApp is the whole application for a browser to use.
type browserApp struct {
	fixtures
	hub    *stream.Hub
	server *httptest.Server
	conns  *cuttable
	// startWorker starts the worker (once). Tests start it when the page is
	// live, so that every step after the first arrives while they watch.
	startWorker func()

	mu       sync.Mutex
	requests []seenRequest
}

// seenRequest is a request the server got, for the tests to check how the
// browser used the streams.
type seenRequest struct {
	path        string
	lastEventID string
}

// browserAppOptions change a browserApp from the default.
type browserAppOptions struct {
	// heartbeat is the streams' heartbeat interval; zero means the
	// server's default, long enough that no test meets a page's watchdog.
	heartbeat time.Duration
}

func newBrowserApp(t *testing.T) *browserApp {
	t.Helper()
	return newBrowserAppWith(t, browserAppOptions{})
}

func newBrowserAppWith(t *testing.T, opts browserAppOptions) *browserApp {
	t.Helper()
	pool := pgtest.NewPool(t)
	a := &browserApp{
		fixtures: fixtures{orders.NewStore(pool, orders.Options{Stages: orders.StageDurations{
			Received: browserStage, Cooking: browserStage, OutForDelivery: browserStage,
		}})},
		hub: stream.NewHub(stream.Options{Retry: 500 * time.Millisecond, Heartbeat: opts.heartbeat, Logger: quiet}),
	}
	worker := orders.NewWorker(a.store, orders.WorkerOptions{Logger: quiet})
	_, a.startWorker = runListener(t, pool.Config().ConnConfig, -1, a.hub.Publish, worker)

	handler := NewHandler(a.store, a.hub, nil, Config{}, quiet)
	a.server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.requests = append(a.requests, seenRequest{path: r.URL.Path, lastEventID: r.Header.Get("Last-Event-ID")})
		a.mu.Unlock()
		handler.ServeHTTP(w, r)
	}))
	a.conns = newCuttable(a.server.Listener)
	a.server.Listener = a.conns
	a.server.Start()
	t.Cleanup(func() {
		a.conns.cut()
		a.server.Close()
	})
	return a
}

// seen returns the requests so far whose path matches re.
func (a *browserApp) seen(re string) []seenRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []seenRequest
	for _, r := range a.requests {
		if regexp.MustCompile(re).MatchString(r.path) {
			out = append(out, r)
		}
	}
	return out
}

// chromiumPath finds Debian's Chromium, or another Chrome on the PATH.
func chromiumPath() string {
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// chromium is the one headless Chromium of the package's browser tests,
// started by the first of them. Each test gets a browser context of its
// own in it (cookies, storage and shared workers apart, as in a separate
// profile), which costs a fraction of starting another Chromium.
var chromium struct {
	once   sync.Once
	ctx    context.Context // the browser's first tab
	cancel func()
	err    error
}

// stopChromium ends the package's Chromium, if it was started.
func stopChromium() {
	if chromium.cancel != nil {
		chromium.cancel()
	}
}

// newBrowser returns the context of a fresh browser context for one test,
// closed when the test ends.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if os.Getenv("SKIP_BROWSER_TESTS") == "1" {
		t.Skip("SKIP_BROWSER_TESTS=1")
	}
	path := chromiumPath()
	if path == "" {
		t.Fatal("browser tests need Chromium: install it with `apt-get install -y chromium` " +
			"(on a machine of your own, SKIP_BROWSER_TESTS=1 skips these tests)")
	}
	chromium.once.Do(func() {
		opts := append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(path),
			chromedp.NoSandbox,
			chromedp.DisableGPU,
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true),
			chromedp.NoFirstRun,
			chromedp.WindowSize(1280, 900),
		)
		allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancel := chromedp.NewContext(allocCtx)
		chromium.ctx = ctx
		chromium.cancel = func() {
			cancel()
			cancelAlloc()
		}
		chromium.err = chromedp.Do(ctx)
	})
	if chromium.err != nil {
		t.Fatalf("start Chromium (%s): %v", path, chromium.err)
	}
	ctx, cancel := chromedp.NewContext(chromium.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a browser context: %v", err)
	}
	return ctx
}

// A tab is one browser tab that records what would go unnoticed: uncaught
// exceptions, console errors (a script or style refused by the
// Content-Security-Policy is one) and JavaScript dialogs, which it dismisses.
// The test fails at its end if there were any.
type tab struct {
	ctx     context.Context
	scripts bool // the page runs JavaScript

	mu       sync.Mutex
	problems []string
	dialogs  []string
	expected []string
}

// expect declares a console error that is part of the test, such as the
// log line of a 400 response that the test asks for.
func (tb *tab) expect(text string) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.expected = append(tb.expected, text)
}

// newTab opens a tab in the browser of ctx. With scripts false, the tab
// runs no JavaScript, as for a visitor who turned it off.
func newTab(t *testing.T, browser context.Context, scripts bool) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	tb := &tab{ctx: ctx, scripts: scripts}
	console := chromedp.Console(ctx)
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			if m.IsException() || m.Type == chromedp.ConsoleError {
				tb.mu.Lock()
				tb.problems = append(tb.problems, fmt.Sprintf("%s %s:%d: %s", m.Type, m.URL, m.Line+1, m.Text))
				tb.mu.Unlock()
			}
		}
	}()
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			tb.mu.Lock()
			tb.dialogs = append(tb.dialogs, string(ev.Type)+": "+ev.Message)
			tb.mu.Unlock()
			chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	}()
	if !scripts {
		if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
			t.Fatalf("turn JavaScript off: %v", err)
		}
	}
	t.Cleanup(func() { tb.check(t) })
	return tb
}

// check fails the test for anything the tab recorded.
func (tb *tab) check(t *testing.T) {
	t.Helper()
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, d := range tb.dialogs {
		t.Errorf("the page opened a dialog (a script ran that should not have): %s", d)
	}
	for _, p := range tb.problems {
		if !slices.ContainsFunc(tb.expected, func(e string) bool { return strings.Contains(p, e) }) {
			t.Errorf("the browser reported: %s", p)
		}
	}
}

// bounded is the tab's context with a deadline, for one action: a page that
// never loads (a seventh connection to the server, say) must fail the test,
// not hang it.
func (tb *tab) bounded() (context.Context, context.CancelFunc) {
	return context.WithTimeout(tb.ctx, browserWait)
}

func (tb *tab) do(t *testing.T, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := tb.bounded()
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// run runs one action that returns a value.
func run[T any](t *testing.T, tb *tab, a chromedp.Action[T]) (T, error) {
	t.Helper()
	ctx, cancel := tb.bounded()
	defer cancel()
	return chromedp.Run(ctx, a)
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, tb *tab, expr string) T {
	t.Helper()
	ctx, cancel := tb.bounded()
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor waits until a JavaScript expression is true in the page. A
// navigation under way (after a click on a submit button) ends the page the
// expression runs in; it then runs again in the next one.
func (tb *tab) waitFor(t *testing.T, what, expr string) {
	t.Helper()
	if !tb.scripts {
		// chromedp.Poll polls inside the page, on the page's timers, which
		// do not run where scripts are off: after a first false answer it
		// would never ask again. Here the test asks, every 20 ms.
		tb.waitForFromOutside(t, what, expr)
		return
	}
	deadline := time.Now().Add(browserWait)
	for {
		ctx, cancel := context.WithDeadline(tb.ctx, deadline.Add(time.Second))
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr,
			chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(time.Until(deadline))))
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) || !strings.Contains(err.Error(), "navigated or closed") && !strings.Contains(err.Error(), "context") {
			t.Fatalf("waiting until %s: %v; the page says: %s", what, err, tb.summary(t))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitForFromOutside waits until a JavaScript expression is true in the
// tab's page, asking from the test every 20 ms rather than polling inside
// the page.
func (tb *tab) waitForFromOutside(t *testing.T, what, expr string) {
	t.Helper()
	deadline := time.Now().Add(browserWait)
	for {
		ctx, cancel := context.WithTimeout(tb.ctx, time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting until %s: the last answer was %v (%v); the page says: %s", what, ok, err, tb.summary(t))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// summary is what a failure message needs to know about the page.
func (tb *tab) summary(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 2*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => {
		const text = (id) => (document.getElementById(id) || {}).textContent || '';
		const more = (g) => g.querySelector('.more:not([hidden]) .more-text')?.textContent;
		return location.pathname + location.search + ' | status: ' + text('status-label') + ' | connection: ' + text('connection-text') +
			' | timeline: ' + [...document.querySelectorAll('#timeline li')].map((li) => li.querySelector('.timeline-what').textContent).join(', ') +
			' | columns: ' + [...document.querySelectorAll('.group')].map((g) => g.dataset.status + ' ' + g.querySelectorAll('.order').length + ' cards' + (more(g) ? ', ' + more(g) : '')).join('; ');
	})()`))
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return s
}

// Expressions that read the tracking page.
const (
	jsConnection = `document.getElementById('connection')?.dataset.state`
	jsStatus     = `document.getElementById('status-label').textContent`
	jsTimeline   = `[...document.querySelectorAll('#timeline li .timeline-what')].map((el) => el.textContent)`
	jsSteps      = `[...document.querySelectorAll('#stepper li')].map((li) => li.className)`
)

func (tb *tab) timeline(t *testing.T) []string {
	t.Helper()
	return eval[[]string](t, tb, jsTimeline)
}

// allStages is the timeline of a delivered order.
var allStages = []string{"Received", "Cooking", "Out for delivery", "Delivered"}

// openTracking opens the tracking page of o and waits until it is live.
func (tb *tab) openTracking(t *testing.T, a *browserApp, o orders.Order) {
	t.Helper()
	ctx, cancel := tb.bounded()
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(a.server.URL+"/orders/"+o.Token)); err != nil {
		t.Fatalf("open the tracking page: %v (a browser holds six connections to a site: are the streams shared?)", err)
	}
	tb.waitFor(t, "the page is live", jsConnection+` === 'live'`)
}

// markPage leaves a mark in the page's JavaScript state that a reload would
// wipe out.
func (tb *tab) markPage(t *testing.T) {
	t.Helper()
	eval[bool](t, tb, `window.notReloaded = true`)
}

func (tb *tab) checkNotReloaded(t *testing.T) {
	t.Helper()
	if !eval[bool](t, tb, `window.notReloaded === true`) {
		t.Error("the page was reloaded; the updates must arrive in place")
	}
}

func TestBrowserOrderThroughTheFormAndWatchItLive(t *testing.T) {
	t.Parallel()
	a := newBrowserApp(t)
	tb := newTab(t, newBrowser(t), true)

	tb.do(t,
		chromedp.Navigate(a.server.URL+"/"),
		chromedp.SendKeys(chromedp.ID("name"), "Mia Rossi"),
		chromedp.SetValue(chromedp.ID("qty-margherita"), "2"),
		chromedp.SetValue(chromedp.ID("qty-lemonade"), "1"),
	)
	// The running total follows the quantities (it listens for input).
	tb.do(t, chromedp.SetValue(chromedp.ID("qty-tiramisu"), ""), chromedp.SendKeys(chromedp.ID("qty-tiramisu"), "1"))
	tb.waitFor(t, "the running total shows", `document.querySelector('#order-total output').textContent === '€28.50'`)
	tb.do(t, chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
	tb.waitFor(t, "the tracking page opens", `/^\/orders\/[A-Z2-7]{26}$/.test(location.pathname) && !!document.getElementById('tracking')`)
	if got := eval[string](t, tb, jsStatus); got != "Received" {
		t.Errorf("a new order's page says %q, want Received", got)
	}
	if got := eval[string](t, tb, `document.querySelector('.summary-total').textContent`); !strings.Contains(got, "€28.50") {
		t.Errorf("the summary's total reads %q, want €28.50", got)
	}
	tb.waitFor(t, "the page is live", jsConnection+` === 'live'`)
	tb.markPage(t)

	a.startWorker()
	tb.waitFor(t, "the order is delivered and the stream finished",
		jsStatus+` === 'Delivered' && `+jsConnection+` === 'finished'`)
	tb.checkNotReloaded(t)
	if got := tb.timeline(t); !slices.Equal(got, allStages) {
		t.Errorf("timeline = %q, want %q", got, allStages)
	}
	if got := eval[[]string](t, tb, jsSteps); !slices.Equal(got, []string{"step step-done", "step step-done", "step step-done", "step step-done"}) {
		t.Errorf("stepper = %q, want every step done", got)
	}
	if got := eval[string](t, tb, `document.title`); !strings.HasPrefix(got, "Delivered") {
		t.Errorf("title = %q, want it to start with the status", got)
	}
	if got := eval[string](t, tb, `document.getElementById('when-label').textContent`); got != "Delivered at" {
		t.Errorf("the estimate reads %q, want Delivered at", got)
	}
	// The panel saw every frame of the three moves, newest first, with the
	// ids that resume the stream.
	frames := eval[[]string](t, tb, `[...document.querySelectorAll('#hood-frames li:not(.frame-note) pre')].map((el) => el.textContent)`)
	var statuses []string
	for _, f := range frames {
		if m := regexp.MustCompile(`"status":"(\w+)"`).FindStringSubmatch(f); m != nil {
			statuses = append(statuses, m[1])
		}
		if !strings.HasPrefix(f, "id: ") || !strings.Contains(f, "\nevent: order_update\ndata: {") {
			t.Errorf("a frame in the panel reads %q, want id, event and data lines", f)
		}
	}
	if want := []string{"delivered", "out_for_delivery", "cooking"}; !slices.Equal(statuses, want) {
		t.Errorf("the panel's frames are %q, want %q (newest first)", statuses, want)
	}
	if got := eval[string](t, tb, `document.getElementById('hood-transport').textContent`); !strings.Contains(got, "SharedWorker") {
		t.Errorf("the panel says the connection is %q, want the shared worker's", got)
	}
}

func TestBrowserNameIsShownAsTextAndNeverRuns(t *testing.T) {
	t.Parallel()
	a := newBrowserApp(t)
	tb := newTab(t, newBrowser(t), true)
	const name = `<img src=x onerror=alert(1)><script>alert(2)</script>`
	tb.expect("status of 400") // the form sent back to fix

	// First without items: the form comes back with the name kept.
	tb.do(t,
		chromedp.Navigate(a.server.URL+"/"),
		chromedp.SetValue(chromedp.ID("name"), name),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
	)
	tb.waitFor(t, "the form comes back with its errors", `!!document.getElementById('items-error')`)
	if got := eval[string](t, tb, `document.getElementById('name').value`); got != name {
		t.Errorf("the name field holds %q, want %q", got, name)
	}
	if n := eval[int](t, tb, `document.querySelectorAll('img:not(.brand img), main script').length`); n != 0 {
		t.Errorf("the name became %d elements on the form page", n)
	}

	tb.do(t,
		chromedp.SetValue(chromedp.ID("qty-funghi"), "1"),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
	)
	tb.waitFor(t, "the tracking page opens", `!!document.getElementById('tracking')`)
	tb.waitFor(t, "the page is live", jsConnection+` === 'live'`)
	if got := eval[string](t, tb, `document.querySelector('.customer').textContent`); got != name {
		t.Errorf("the page shows the name as %q, want the text %q", got, name)
	}
	if n := eval[int](t, tb, `document.querySelectorAll('img:not(.brand img), main script').length`); n != 0 {
		t.Errorf("the name became %d elements on the tracking page", n)
	}
	// Let the order run through, so the name passes every live update too.
	a.startWorker()
	tb.waitFor(t, "the order is delivered", jsStatus+` === 'Delivered'`)
	if n := eval[int](t, tb, `document.querySelectorAll('img:not(.brand img), main script').length`); n != 0 {
		t.Errorf("the name became %d elements after the live updates", n)
	}
	// The tab's check at the end fails the test for any dialog.
}

func TestBrowserWithoutJavaScriptShowsTheCurrentState(t *testing.T) {
	t.Parallel()
	a := newBrowserApp(t)
	o := a.create(t, "Grace")
	a.advance(t, o, orders.Received)
	tb := newTab(t, newBrowser(t), false)
	tb.do(t, chromedp.Navigate(a.server.URL+"/orders/"+o.Token))

	text := func(sel string) string {
		t.Helper()
		s, err := run(t, tb, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	if got := text("#status-label"); got != "Cooking" {
		t.Errorf("status = %q, want Cooking", got)
	}
	if got := text(`#stepper li[aria-current="step"] .step-label`); got != "Cooking" {
		t.Errorf("the stepper marks %q, want Cooking", got)
	}
	if got := text("#refresh-note"); !strings.Contains(got, "Refresh") {
		t.Errorf("the refresh note reads %q, want a refresh link", got)
	}
	href, err := run(t, tb, chromedp.AttributeValue(chromedp.CSS("#refresh-note a"), "href"))
	if err != nil || href.Value != "/orders/"+o.Token {
		t.Errorf("the refresh link goes to %+v (%v), want this page", href, err)
	}
	if got := text("#timeline"); !strings.Contains(got, "Received") || !strings.Contains(got, "Cooking") {
		t.Errorf("timeline reads %q, want Received and Cooking", got)
	}
	if got := text("#when"); !strings.Contains(got, "Estimated delivery") || !strings.Contains(got, "UTC") {
		t.Errorf("the estimate reads %q, want an estimated time", got)
	}
	// Nothing of the live machinery runs or shows.
	if len(a.seen(`/events$`)) != 0 {
		t.Errorf("a page without JavaScript opened a stream: %v", a.seen(`/events$`))
	}
	if _, err := run(t, tb, chromedp.WaitNotVisible(chromedp.ID("connection"))); err != nil {
		t.Errorf("the connection state shows without JavaScript: %v", err)
	}
}

func TestBrowserResumesAfterADroppedConnection(t *testing.T) {
	t.Parallel()
	a := newBrowserApp(t)
	browser := newBrowser(t)

	t.Run("with the panel's button", func(t *testing.T) {
		o := a.create(t, "Ada")
		tb := newTab(t, browser, true)
		tb.openTracking(t, a, o)
		tb.markPage(t)
		tb.do(t,
			chromedp.Click(chromedp.CSS("#hood summary")),
			chromedp.Click(chromedp.ID("hood-drop")),
		)
		tb.waitFor(t, "the connection is down", jsConnection+` === 'dropped'`)
		// Two steps while nobody listens.
		a.advance(t, o, orders.Received)
		a.advance(t, o, orders.Cooking)
		tb.waitFor(t, "both steps arrive on resume", jsStatus+` === 'Out for delivery' && `+jsConnection+` === 'live'`)
		a.advance(t, o, orders.OutForDelivery)
		tb.waitFor(t, "the last step arrives", jsStatus+` === 'Delivered' && `+jsConnection+` === 'finished'`)
		tb.checkNotReloaded(t)
		if got := tb.timeline(t); !slices.Equal(got, allStages) {
			t.Errorf("timeline = %q, want %q: a step was lost or repeated", got, allStages)
		}
		notes := eval[string](t, tb, `document.getElementById('hood-frames').textContent`)
		if !strings.Contains(notes, "You dropped the connection") {
			t.Errorf("the panel does not tell of the drop: %q", notes)
		}
	})

	t.Run("by the browser itself, with Last-Event-ID", func(t *testing.T) {
		o := a.create(t, "Grace")
		tb := newTab(t, browser, true)
		tb.openTracking(t, a, o)
		tb.markPage(t)
		a.advance(t, o, orders.Received)
		tb.waitFor(t, "cooking arrives", jsStatus+` === 'Cooking'`)
		// Cut every connection, as a network failure or a server restart
		// would, and move on before the browser is back (the retry delay
		// is half a second).
		a.conns.cut()
		a.advance(t, o, orders.Cooking)
		tb.waitFor(t, "the step made while away arrives", jsStatus+` === 'Out for delivery'`)
		a.advance(t, o, orders.OutForDelivery)
		tb.waitFor(t, "the last step arrives", jsStatus+` === 'Delivered'`)
		tb.checkNotReloaded(t)
		if got := tb.timeline(t); !slices.Equal(got, allStages) {
			t.Errorf("timeline = %q, want %q: a step was lost or repeated", got, allStages)
		}
		var resumed bool
		for _, r := range a.seen(`^/orders/events$`) {
			resumed = resumed || r.lastEventID != ""
		}
		if !resumed {
			t.Errorf("the browser never reconnected with a Last-Event-ID: %+v", a.seen(`^/orders/events$`))
		}
	})
}

// TestBrowserShowsACancelLive watches an order move and then be cancelled,
// at each stage where staff may cancel it: the stepper, the message and the
// time must change in place to what the page shows when loaded afresh.
func TestBrowserShowsACancelLive(t *testing.T) {
	t.Parallel()
	a := newBrowserApp(t)
	browser := newBrowser(t)
	// stepper is what the page shows of the order's progress.
	const stepper = `[...document.querySelectorAll('#stepper li')].map((li) =>
		li.className + ' ' + li.querySelector('.step-state').textContent + (li.getAttribute('aria-current') ? ' aria-current' : '')
	).concat(document.getElementById('status-message').textContent, document.getElementById('when-label').textContent,
		document.getElementById('when-relative').textContent)`
	tests := []struct {
		at    orders.Status
		steps []string
	}{
		{orders.Received, []string{"step step-stopped (cancelled here)", "step step-skipped (skipped)", "step step-skipped (skipped)", "step step-skipped (skipped)"}},
		{orders.Cooking, []string{"step step-done (done)", "step step-stopped (cancelled here)", "step step-skipped (skipped)", "step step-skipped (skipped)"}},
	}
	for _, tt := range tests {
		t.Run("while "+string(tt.at), func(t *testing.T) {
			o := a.create(t, "Ada")
			tb := newTab(t, browser, true)
			tb.openTracking(t, a, o)
			tb.markPage(t)
			if tt.at != orders.Received {
				a.moveTo(t, o, tt.at)
				tb.waitFor(t, "the move arrives", jsStatus+` === `+strconv.Quote(tt.at.Label()))
				if got := eval[[]string](t, tb, stepper); !slices.Contains(got, "step step-current (now) aria-current") || got[len(got)-2] != "Estimated delivery" {
					t.Errorf("after the move to %s the page shows %q, want its step current and an estimate", tt.at, got)
				}
			}
			if _, err := a.store.Cancel(context.Background(), o.Token, orders.ByStaff); err != nil {
				t.Fatal(err)
			}
			tb.waitFor(t, "the cancel arrives and the stream ends", jsStatus+` === 'Cancelled' && `+jsConnection+` === 'finished'`)
			tb.checkNotReloaded(t)
			live := eval[[]string](t, tb, stepper)
			if !slices.Equal(live[:4], tt.steps) || !strings.Contains(live[4], "cancelled") || live[5] != "Cancelled at" || live[6] != "" {
				t.Errorf("live, the cancelled order shows %q, want steps %q, a message of the cancel and its time", live, tt.steps)
			}

			reload := newTab(t, browser, true)
			reload.do(t, chromedp.Navigate(a.server.URL+"/orders/"+o.Token))
			if got := eval[[]string](t, reload, stepper); !slices.Equal(got, live) {
				t.Errorf("loaded afresh, the page shows %q; live it showed %q", got, live)
			}
		})
	}
}

// TestBrowserEightTabsStayLive opens eight tracking tabs of eight orders in
// one browser. Over HTTP/1.1 a browser holds at most six connections to a
// site, so with an EventSource per tab the seventh and eighth tabs would not
// even load; with the shared worker all eight share one connection.
func TestBrowserEightTabsStayLive(t *testing.T) {
	t.Parallel()
	a := newBrowserApp(t)
	browser := newBrowser(t)
	tabs := make([]*tab, 8)
	list := make([]orders.Order, len(tabs))
	for i := range tabs {
		list[i] = a.create(t, fmt.Sprintf("Customer %d", i+1))
		tabs[i] = newTab(t, browser, true)
	}
	// Load them all at once, as a person restoring a session would.
	errs := make([]error, len(tabs))
	var wg sync.WaitGroup
	for i, tb := range tabs {
		wg.Go(func() {
			ctx, cancel := tb.bounded()
			defer cancel()
			errs[i] = chromedp.Do(ctx, chromedp.Navigate(a.server.URL+"/orders/"+list[i].Token))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("tab %d did not load: %v (a browser holds six connections to a site: are the streams shared?)", i+1, err)
		}
	}
	for i, tb := range tabs {
		tb.waitFor(t, fmt.Sprintf("tab %d is live", i+1), jsConnection+` === 'live'`)
		tb.markPage(t)
	}
	a.startWorker()
	for i, tb := range tabs {
		tb.waitFor(t, fmt.Sprintf("tab %d shows its order delivered", i+1), jsStatus+` === 'Delivered'`)
		tb.checkNotReloaded(t)
		if got := tb.timeline(t); !slices.Equal(got, allStages) {
			t.Errorf("tab %d: timeline = %q, want %q", i+1, got, allStages)
		}
	}
	if direct := a.seen(`^/orders/[^/]+/events$`); len(direct) > 0 {
		t.Errorf("%d tabs opened a stream of their own; all should share the worker's", len(direct))
	}
}

// TestBrowserScreenshots saves every page at phone and desktop width into
// the folder BROWSER_SCREENSHOTS names, for a person to look at.
func TestBrowserScreenshots(t *testing.T) {
	t.Parallel()
	dir := os.Getenv("BROWSER_SCREENSHOTS")
	if dir == "" {
		t.Skip("set BROWSER_SCREENSHOTS=dir to save screenshots of every page")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	a := newBrowserApp(t)
	browser := newBrowser(t)
	live := a.create(t, "Mia Rossi")
	a.advance(t, live, orders.Received)
	delivered := a.create(t, "Lena Park")
	for _, s := range orders.Stages[:3] {
		a.advance(t, delivered, s)
	}
	cancelled := a.create(t, "Omar Haddad")
	a.advance(t, cancelled, orders.Received)
	if _, err := a.store.Cancel(context.Background(), cancelled.Token, orders.ByStaff); err != nil {
		t.Fatal(err)
	}

	type shot struct {
		name  string
		setup func(tb *tab)
	}
	shots := []shot{
		{"home", func(tb *tab) { tb.do(t, chromedp.Navigate(a.server.URL+"/")) }},
		{"home-errors", func(tb *tab) {
			tb.expect("status of 400")
			tb.do(t, chromedp.Navigate(a.server.URL+"/"), chromedp.SetValue(chromedp.ID("name"), "Ada"),
				chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
			tb.waitFor(t, "errors", `!!document.querySelector('.alert')`)
		}},
		{"tracking-live", func(tb *tab) {
			tb.openTracking(t, a, live)
			tb.do(t, chromedp.Click(chromedp.CSS("#hood summary")))
			a.advance(t, live, orders.Cooking)
			tb.waitFor(t, "out for delivery", jsStatus+` === 'Out for delivery'`)
		}},
		{"tracking-delivered", func(tb *tab) { tb.do(t, chromedp.Navigate(a.server.URL+"/orders/"+delivered.Token)) }},
		{"tracking-cancelled", func(tb *tab) { tb.do(t, chromedp.Navigate(a.server.URL+"/orders/"+cancelled.Token)) }},
		{"not-found", func(tb *tab) {
			tb.expect("status of 404")
			tb.do(t, chromedp.Navigate(a.server.URL+"/orders/"+orders.NewToken()))
		}},
	}
	shots = append(shots, shot{"tracking-dark", func(tb *tab) {
		if _, err := chromedp.Call(tb.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
		}); err != nil {
			t.Fatal(err)
		}
		tb.openTracking(t, a, live)
		tb.do(t, chromedp.Click(chromedp.CSS("#hood summary")))
	}})
	for _, width := range []int64{390, 1280} {
		for _, s := range shots {
			if s.name == "tracking-live" && width == 1280 {
				// The order moved on in the phone's turn; show it again at
				// the desktop width from where it is.
				s.setup = func(tb *tab) {
					tb.openTracking(t, a, live)
					tb.do(t, chromedp.Click(chromedp.CSS("#hood summary")))
				}
			}
			tb := newTab(t, browser, true)
			tb.do(t, chromedp.EmulateViewport(width, 900))
			s.setup(tb)
			time.Sleep(300 * time.Millisecond) // let animations settle for the picture
			png, err := run(t, tb, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(dir, fmt.Sprintf("%s-%d.png", s.name, width))
			if err := os.WriteFile(file, png, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Log("wrote", file)
		}
	}
}
