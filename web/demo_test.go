package web

import (
	"context"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/scs/pgxstore"
	"github.com/chromedp/chromedp"

	"github.com/ordertracker/ordertracker/internal/accounts"
	"github.com/ordertracker/ordertracker/internal/pgtest"
	"github.com/ordertracker/ordertracker/internal/stream"
	"github.com/ordertracker/ordertracker/orders"
)

// demoApp is a staffApp with the demo's controls, and the listener and
// worker they break.
type demoApp struct {
	staffApp
	listener *orders.Listener
	worker   *orders.Worker
}

// demoHeartbeat is the demo tests' heartbeat: a stalled page's watchdog
// fires after 2.5 of them.
const demoHeartbeat = 400 * time.Millisecond

func newDemoApp(t *testing.T, controls bool) *demoApp {
	t.Helper()
	pool := pgtest.NewPool(t)
	stages := orders.StageDurations{Received: browserStage, Cooking: browserStage, OutForDelivery: browserStage}
	a := &demoApp{staffApp: staffApp{
		fixtures: fixtures{orders.NewStore(pool, orders.Options{Stages: stages})},
		pool:     pool,
		hub:      stream.NewHub(stream.Options{Retry: 300 * time.Millisecond, Heartbeat: demoHeartbeat, Logger: quiet}),
		accounts: accounts.NewStore(pool),
		password: testStaffPassword,
	}}
	if _, err := a.accounts.Bootstrap(context.Background(), accounts.BootstrapName, a.password); err != nil {
		t.Fatal(err)
	}
	a.worker = orders.NewWorker(a.store, orders.WorkerOptions{Logger: quiet})
	a.listener, a.startWorker = runListener(t, pool.Config().ConnConfig, -1, a.hub.Publish, a.worker)
	cfg := Config{
		Staff: StaffConfig{Accounts: a.accounts, Sessions: pgxstore.NewWithCleanupInterval(pool, 0)},
		Demo:  DemoConfig{Controls: controls, Listener: ListenerOn(a.listener, pool), Worker: a.worker},
	}
	handler := NewHandler(a.store, a.hub, nil, cfg, quiet)
	ctx, stop := context.WithCancel(context.Background())
	var watching sync.WaitGroup
	watching.Go(func() { handler.Run(ctx) })
	t.Cleanup(func() {
		stop()
		watching.Wait()
	})
	a.server = httptest.NewUnstartedServer(handler)
	a.conns = newCuttable(a.server.Listener)
	a.server.Listener = a.conns
	a.server.Start()
	t.Cleanup(func() {
		a.server.CloseClientConnections()
		a.server.Close()
	})
	t.Cleanup(func() { a.hub.Drain(context.Background(), 0) })
	return a
}

// Expressions that read the demo page.
const (
	jsDemoCustomer      = `document.getElementById('demo-customer-status')`
	jsDemoCustomerState = `document.getElementById('demo-customer-connection').dataset.state`
	jsDemoBoardState    = `document.getElementById('demo-board-connection').dataset.state`
	jsDemoBoardStatus   = `document.getElementById('demo-board-status').dataset.status`
	jsDemoLive          = jsDemoCustomerState + ` === 'live' && ` + jsDemoBoardState + ` === 'live'`
)

// jsDemoCount reads a count of a pane's connection element (lives, breaks,
// watchdogs, replays).
func jsDemoCount(pane, key string) string {
	return `Number(document.getElementById('demo-` + pane + `-connection').dataset.` + key + ` || 0)`
}

// openDemo signs tb in, opens /demo for o, and waits until both panes are
// live.
func (a *demoApp) openDemo(t *testing.T, tb *tab, o orders.Order) {
	t.Helper()
	a.signIn(t, tb)
	tb.do(t, chromedp.Navigate(a.server.URL+"/demo?"+url.Values{"order": {o.Token}, "backoff": {"100,1000"}}.Encode()))
	tb.waitFor(t, "both panes are live", jsDemoLive)
}

// demoSummary is what a failing demo test needs to know about the page.
func demoSummary(t *testing.T, tb *tab) string {
	t.Helper()
	return eval[string](t, tb, `(() => {
		const c = (id) => { const el = document.getElementById(id); return el ? JSON.stringify(el.dataset) : '-'; };
		return 'customer ' + c('demo-customer-connection') + ' status ' + c('demo-customer-status') + '; board ' + c('demo-board-connection') +
			'; notes: ' + [...document.querySelectorAll('.frame-note')].map((li) => li.textContent).slice(0, 6).join(' | ');
	})()`)
}

// A waterfall is one frame's hops as the page shows them.
type waterfall struct {
	Live  bool      `json:"live"`
	Total float64   `json:"total"`
	Hops  []float64 `json:"hops"`
	Names []string  `json:"names"`
	Text  string    `json:"text"`
}

// waterfalls reads every waterfall under the frames of list.
func waterfalls(t *testing.T, tb *tab, list string) []waterfall {
	t.Helper()
	return eval[[]waterfall](t, tb, `[...document.querySelectorAll('#`+list+` .waterfall')].map((w) => ({
		live: w.dataset.live === 'true',
		total: Number(w.dataset.total),
		hops: [...w.querySelectorAll('.waterfall-hop')].map((h) => Number(h.dataset.ms)),
		names: [...w.querySelectorAll('.waterfall-name')].map((h) => h.textContent),
		text: w.textContent,
	}))`)
}

// checkWaterfalls fails the test unless every waterfall's hops are
// non-negative and add up to its total, and at least one live frame shows
// all three hops from the commit to the browser.
func checkWaterfalls(t *testing.T, list []waterfall) {
	t.Helper()
	whole := false
	for _, w := range list {
		sum := 0.0
		for _, ms := range w.Hops {
			if ms < 0 || math.IsNaN(ms) {
				t.Errorf("a hop of %v ms: %q", ms, w.Text)
			}
			sum += ms
		}
		if math.Abs(sum-w.Total) > 0.05 {
			t.Errorf("hops %v add up to %.2f, the total shown is %.2f: %q", w.Hops, sum, w.Total, w.Text)
		}
		if w.Live && strings.Join(w.Names, ",") == "database → listener,listener → write,write → browser" {
			whole = true
		}
	}
	if !whole {
		t.Errorf("no live frame shows the three hops from the commit to the browser: %+v", list)
	}
}

func TestBrowserTrackingPanelShowsEachEventsHops(t *testing.T) {
	t.Parallel()
	a := newBrowserApp(t)
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			o := a.create(t, "Hopper")
			tb := newTab(t, newBrowser(t), true)
			tb.openPage(t, a.server.URL+"/orders/"+o.Token+"?"+testBackoff+tr.query)
			a.advance(t, o, orders.Received)
			tb.waitFor(t, "the move's frame shows its hops", `[...document.querySelectorAll('#hood-frames .waterfall')].some((w) => w.querySelectorAll('.waterfall-hop').length === 3)`)
			checkWaterfalls(t, waterfalls(t, tb, "hood-frames"))
			if text := eval[string](t, tb, `document.getElementById('hood-clock').textContent`); !strings.Contains(text, "clock") {
				t.Errorf("the panel does not say how it compares the clocks: %q", text)
			}
		})
	}
}

func TestBrowserDemoClickOnTheBoardReachesTheCustomer(t *testing.T) {
	t.Parallel()
	a := newDemoApp(t, false)
	o := a.create(t, "Grace")
	tb := newTab(t, newBrowser(t), true)
	a.openDemo(t, tb, o)
	if n := eval[int](t, tb, `document.querySelectorAll('#demo-controls').length`); n != 0 {
		t.Errorf("the page shows the controls with DEMO_CONTROLS off")
	}
	audit(t, tb, "the demo page")

	tb.do(t, chromedp.Click(chromedp.ID("demo-advance")))
	tb.waitFor(t, "the click reaches the customer's pane", jsDemoCustomer+`.dataset.status === 'cooking' && `+jsDemoBoardStatus+` === 'cooking'`)
	tb.waitFor(t, "the page says how long it took", `[...document.querySelectorAll('#demo-customer-frames .frame-note')].some((li) => li.textContent.includes('reached this pane'))`)
	tb.waitFor(t, "both frames show their hops", `document.querySelectorAll('#demo-customer-frames .waterfall').length > 0 && document.querySelectorAll('#demo-board-frames .waterfall').length > 0`)
	checkWaterfalls(t, waterfalls(t, tb, "demo-customer-frames"))
	checkWaterfalls(t, waterfalls(t, tb, "demo-board-frames"))
	if got := a.status(t, o); got != orders.Cooking {
		t.Errorf("the order is %s, want cooking", got)
	}
}

func TestBrowserDemoAsksAStrangerToSignIn(t *testing.T) {
	t.Parallel()
	a := newDemoApp(t, false)
	o := a.create(t, "Grace")
	tb := newTab(t, newBrowser(t), true)
	forgiveStatus(t, tb, "401")
	tb.do(t, chromedp.Navigate(a.server.URL+"/demo?order="+o.Token))
	tb.waitFor(t, "the board pane asks to sign in and the customer's is live", `!document.getElementById('demo-signin').hidden && `+jsDemoCustomerState+` === 'live'`)
}

// TestBrowserDemoControlsBreakThingsAndThePageRecovers presses each control
// and watches the page fail visibly and recover by itself, every step of
// the order arriving once.
func TestBrowserDemoControlsBreakThingsAndThePageRecovers(t *testing.T) {
	t.Parallel()
	a := newDemoApp(t, true)
	o := a.create(t, "Barbara")
	tb := newTab(t, newBrowser(t), true)
	a.openDemo(t, tb, o)
	audit(t, tb, "the demo page with its controls")
	press := func(name string) {
		t.Helper()
		tb.do(t, chromedp.Click(chromedp.CSS(`form[data-control="`+name+`"] button`)))
		tb.waitFor(t, "the control "+name+" answers", `(document.getElementById('demo').dataset.control || '').startsWith('`+name+`:200')`)
		eval[bool](t, tb, `delete document.getElementById('demo').dataset.control`)
	}
	count := func(pane, key string) int { return eval[int](t, tb, jsDemoCount(pane, key)) }

	t.Run("stall this browser's streams", func(t *testing.T) {
		watchdogs := count("customer", "watchdogs")
		press("stall")
		// Silent streams: a move made now reaches the page only through
		// the new streams its watchdog opens.
		a.advance(t, o, orders.Received)
		tb.waitFor(t, "the watchdog reopens both streams and the move arrives", jsDemoCount("customer", "watchdogs")+` > `+strconv.Itoa(watchdogs)+
			` && `+jsDemoCount("board", "watchdogs")+` > 0 && `+jsDemoBoardState+` === 'live' && `+jsDemoBoardStatus+` === 'cooking' && `+
			jsDemoCustomer+`.dataset.status === 'cooking'`)
	})

	t.Run("drop every stream", func(t *testing.T) {
		lives, breaks := count("customer", "lives"), count("board", "breaks")
		press("end")
		tb.waitFor(t, "both panes broke and are live again", jsDemoLive+` && `+jsDemoCount("customer", "lives")+` > `+strconv.Itoa(lives)+
			` && `+jsDemoCount("board", "breaks")+` > `+strconv.Itoa(breaks))
		a.advance(t, o, orders.Cooking)
		tb.waitFor(t, "a move after it arrives", jsDemoCustomer+`.dataset.status === 'out_for_delivery' && `+jsDemoBoardStatus+` === 'out_for_delivery'`)
	})

	t.Run("terminate the listener's connection", func(t *testing.T) {
		before := a.listener.Reconnects()
		press("listener")
		if a.listener.Reconnects() <= before {
			t.Fatalf("the listener reconnected %d times, want more than %d", a.listener.Reconnects(), before)
		}
		tb.waitFor(t, "the page tells of the reconnect", `document.getElementById('demo-control-result').textContent.includes('reconnected')`)
		tb.do(t, chromedp.Click(chromedp.ID("demo-advance")))
		tb.waitFor(t, "a click after it reaches the customer", jsDemoCustomer+`.dataset.status === 'delivered'`)
	})

	t.Run("pause and resume the worker", func(t *testing.T) {
		press("pause")
		tb.waitFor(t, "the page says the worker is paused", `document.getElementById('demo').dataset.worker === 'paused'`)
		o := a.create(t, "Frances")
		a.startWorker()
		waitUntil(t, "the worker is parked", a.worker.Parked)
		waitUntil(t, "the order is due", func() bool {
			wait, ok, err := a.store.NextDue(context.Background())
			return err == nil && ok && wait <= 0
		})
		// Due, and the worker told of it: only the pause holds it.
		a.worker.Wake()
		if !a.worker.Parked() {
			t.Fatal("a wake let the paused worker go")
		}
		if got := a.status(t, o); got != orders.Received {
			t.Fatalf("a paused worker moved the order to %s", got)
		}
		press("resume")
		waitUntil(t, "the worker moves the order on", func() bool { return a.status(t, o) != orders.Received })
	})

	if n := eval[int](t, tb, `Number(document.getElementById('demo').dataset.duplicates || 0)`); n != 0 {
		t.Errorf("the customer's pane got %d events twice", n)
	}
	if t.Failed() {
		t.Log(demoSummary(t, tb))
	}
}

func TestDemoControlsAreNotFoundWhenOff(t *testing.T) {
	t.Parallel()
	a := newDemoApp(t, false)
	for _, path := range []string{"/demo/streams/end", "/demo/streams/stall", "/demo/listener/terminate", "/demo/worker/pause", "/demo/worker/resume"} {
		resp, err := http.PostForm(a.server.URL+path, url.Values{"tag": {"abcdefgh12"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("POST %s with DEMO_CONTROLS off: %d, want 404", path, resp.StatusCode)
		}
	}
	// The page is there, without the controls.
	resp, err := http.Get(a.server.URL + "/demo")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /demo: %d, want 200", resp.StatusCode)
	}
}

func TestDemoControlsRefuseCrossSiteRequests(t *testing.T) {
	t.Parallel()
	a := newDemoApp(t, true)
	for _, path := range []string{"/demo/streams/end", "/demo/streams/stall", "/demo/listener/terminate", "/demo/worker/pause", "/demo/worker/resume"} {
		for _, h := range []struct{ name, value string }{
			{"Sec-Fetch-Site", "cross-site"},
			{"Origin", "https://evil.example"},
		} {
			req, err := http.NewRequest(http.MethodPost, a.server.URL+path, strings.NewReader("tag=abcdefgh12"))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Accept", "application/json")
			req.Header.Set(h.name, h.value)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("POST %s with %s: %s: %d, want 403", path, h.name, h.value, resp.StatusCode)
			}
		}
	}
	if a.worker.Paused() {
		t.Error("a refused request paused the worker")
	}
}

func TestDemoControlsAnswer(t *testing.T) {
	t.Parallel()
	a := newDemoApp(t, true)
	post := func(path string, form url.Values, json bool) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, a.server.URL+path, strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if json {
			req.Header.Set("Accept", "application/json")
		}
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = io.Copy(&b, resp.Body)
		return resp, b.String()
	}
	for _, tt := range []struct {
		name   string
		path   string
		form   url.Values
		status int
		says   string
	}{
		{"a stall without the page's id", "/demo/streams/stall", url.Values{"tag": {"<script>"}}, http.StatusBadRequest, "JavaScript"},
		{"a stall", "/demo/streams/stall", url.Values{"tag": {"abcdefgh12"}}, http.StatusOK, "watchdog"},
		{"a pause", "/demo/worker/pause", nil, http.StatusOK, "paused"},
		{"a resume", "/demo/worker/resume", nil, http.StatusOK, "running again"},
		{"an end of every stream", "/demo/streams/end", nil, http.StatusOK, "Last-Event-ID"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := post(tt.path, tt.form, true)
			if resp.StatusCode != tt.status || !strings.Contains(body, tt.says) {
				t.Errorf("POST %s: %d %s, want %d saying %q", tt.path, resp.StatusCode, body, tt.status, tt.says)
			}
		})
	}
	// A form post without JavaScript comes back to the demo page of its
	// order, whatever it names.
	resp, _ := post("/demo/worker/resume", url.Values{"order": {"//evil.example/x"}}, false)
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/demo") {
		t.Errorf("a form post: %d to %q, want 303 to the demo page", resp.StatusCode, loc)
	}
	// An unknown order is a 404 page, never a 500.
	r, err := http.Get(a.server.URL + "/demo?order=nothing-like-a-token")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusNotFound {
		t.Errorf("GET /demo of an unknown order: %d, want 404", r.StatusCode)
	}
}

func TestDemoTokenReadsATokenOrATrackingAddress(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"  abc123  ", "abc123"},
		{"http://localhost:8080/orders/abc123", "abc123"},
		{"https://example.com/orders/abc123?transport=direct#hood", "abc123"},
		{"/orders/abc123/events", "abc123"},
		{"//evil.example/x", ""},
	} {
		if got := demoToken(tt.in); got != tt.want {
			t.Errorf("demoToken(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
