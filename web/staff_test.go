package web

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/scs/pgxstore"
	"github.com/alexedwards/scs/v2"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordertracker/ordertracker/internal/accounts"
	"github.com/ordertracker/ordertracker/internal/pgtest"
	"github.com/ordertracker/ordertracker/internal/sse/ssetest"
	"github.com/ordertracker/ordertracker/internal/stream"
	"github.com/ordertracker/ordertracker/orders"
)

// testStaffPassword is the password of every staffApp's account "staff",
// as STAFF_PASSWORD makes it.
const testStaffPassword = "correct horse battery staple"

// staffApp is the whole application with the staff side on, as the real
// process wires it: NewHandler, a listener feeding a hub, and staff
// sessions in PostgreSQL.
type staffApp struct {
	fixtures
	pool     *pgxpool.Pool
	hub      *stream.Hub
	accounts *accounts.Store
	password string // of the account "staff"
	server   *httptest.Server
	conns    *cuttable
	// startWorker starts a worker that moves orders on after browserStage
	// in each stage (once).
	startWorker func()
}

type staffOptions struct {
	tls          bool      // serve over TLS
	secureCookie bool      // StaffConfig.SecureCookie
	sessions     scs.Store // instead of the PostgreSQL store
	stages       orders.StageDurations
	// pool is the database to use, shared with another app as two
	// processes share one; nil means a database of the app's own.
	pool     *pgxpool.Pool
	password string // the password of the account "staff"; "" means testStaffPassword
	// sessionLifetime and sessionCheck are StaffConfig's.
	sessionLifetime time.Duration
	sessionCheck    time.Duration
	log             *slog.Logger // nil means quiet
	demoControls    bool         // DemoConfig.Controls
}

func newStaffApp(t *testing.T, opts staffOptions) *staffApp {
	t.Helper()
	pool := opts.pool
	if pool == nil {
		pool = pgtest.NewPool(t)
	}
	if opts.stages == (orders.StageDurations{}) {
		opts.stages = orders.StageDurations{Received: browserStage, Cooking: browserStage, OutForDelivery: browserStage}
	}
	log := cmp.Or(opts.log, quiet)
	a := &staffApp{
		fixtures: fixtures{orders.NewStore(pool, orders.Options{Stages: opts.stages})},
		pool:     pool,
		hub:      stream.NewHub(stream.Options{Retry: 500 * time.Millisecond, Logger: log}),
		accounts: accounts.NewStore(pool),
		password: cmp.Or(opts.password, testStaffPassword),
	}
	// As STAFF_PASSWORD does at start.
	if _, err := a.accounts.Bootstrap(context.Background(), accounts.BootstrapName, a.password); err != nil {
		t.Fatal(err)
	}
	hub := a.hub
	worker := orders.NewWorker(a.store, orders.WorkerOptions{Logger: quiet})
	_, a.startWorker = runListener(t, pool.Config().ConnConfig, -1, hub.Publish, worker)

	staff := StaffConfig{
		Accounts:        a.accounts,
		Sessions:        opts.sessions,
		SecureCookie:    opts.secureCookie,
		SessionLifetime: opts.sessionLifetime,
		SessionCheck:    opts.sessionCheck,
	}
	if staff.Sessions == nil {
		staff.Sessions = pgxstore.NewWithCleanupInterval(pool, 0)
	}
	handler := NewHandler(a.store, hub, nil, Config{Staff: staff, Demo: DemoConfig{Controls: opts.demoControls}}, log)
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
	if opts.tls {
		a.server.StartTLS()
	} else {
		a.server.Start()
	}
	t.Cleanup(func() {
		a.server.CloseClientConnections()
		a.server.Close()
	})
	// Streams handed over from net/http are the hub's to end.
	t.Cleanup(func() { hub.Drain(context.Background(), 0) })
	return a
}

// A reply is a response, read whole.
type reply struct {
	status int
	header http.Header
	body   string
	// session is the staff_session cookie the response set, if it set one.
	session *http.Cookie
	// device is the staff_device cookie the response set, if it set one.
	device *http.Cookie
}

// A call is one request: form (for a POST), the session cookie to send, and
// header lines as name, value pairs.
type call struct {
	form    url.Values
	json    string // a JSON body, for the API
	session *http.Cookie
	device  *http.Cookie // the staff_device cookie to send
	header  []string
	// from, when set, is the local address to connect from, so that the
	// server sees another client.
	from string
}

// send makes one request and never follows a redirect.
func (a *staffApp) send(t *testing.T, method, path string, c call) reply {
	t.Helper()
	var body io.Reader
	switch {
	case c.form != nil:
		body = strings.NewReader(c.form.Encode())
	case c.json != "":
		body = strings.NewReader(c.json)
	}
	req, err := http.NewRequest(method, a.server.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case c.form != nil:
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	case c.json != "":
		req.Header.Set("Content-Type", "application/json")
	}
	if c.session != nil {
		req.AddCookie(c.session)
	}
	if c.device != nil {
		req.AddCookie(c.device)
	}
	for i := 0; i+1 < len(c.header); i += 2 {
		req.Header.Set(c.header[i], c.header[i+1])
	}
	transport := a.server.Client().Transport.(*http.Transport).Clone()
	if c.from != "" {
		dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(c.from)}}
		transport.DialContext = dialer.DialContext
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{
		Transport:     transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       browserWait,
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := reply{status: resp.StatusCode, header: resp.Header, body: string(b)}
	for _, c := range resp.Cookies() {
		switch c.Name {
		case "staff_session":
			r.session = c
		case deviceCookieName:
			r.device = c
		}
	}
	return r
}

// login signs in with the app's password and returns the session cookie.
func (a *staffApp) login(t *testing.T, c call) *http.Cookie {
	t.Helper()
	c.form = url.Values{"password": {a.password}}
	r := a.send(t, http.MethodPost, "/staff/login", c)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/staff" {
		t.Fatalf("sign-in answered %d to %q, want 303 to /staff; body: %s", r.status, r.header.Get("Location"), r.body)
	}
	if r.session == nil || r.session.Value == "" {
		t.Fatal("sign-in set no session cookie")
	}
	return r.session
}

func TestStaffRoutesWithoutASession(t *testing.T) {
	a := newStaffApp(t, staffOptions{})
	o := a.create(t, "Ada")
	advance := "/staff/orders/" + o.Token + "/advance"
	cancel := "/staff/orders/" + o.Token + "/cancel"
	from := url.Values{"from": {"received"}}

	t.Run("the board redirects to the sign-in form", func(t *testing.T) {
		for _, path := range []string{"/staff", "/staff/"} {
			r := a.send(t, http.MethodGet, path, call{})
			if r.status != http.StatusSeeOther || r.header.Get("Location") != "/staff/login" {
				t.Errorf("GET %s = %d to %q, want 303 to /staff/login", path, r.status, r.header.Get("Location"))
			}
		}
	})
	t.Run("the sign-in form is open to all", func(t *testing.T) {
		r := a.send(t, http.MethodGet, "/staff/login", call{})
		if r.status != http.StatusOK || !strings.Contains(r.body, `name="password"`) {
			t.Errorf("GET /staff/login = %d, want 200 with the form", r.status)
		}
	})
	cases := []struct {
		name, method, path string
		c                  call
	}{
		{"the event stream", http.MethodGet, "/staff/events", call{}},
		{"the event stream, asked for by EventSource", http.MethodGet, "/staff/events", call{header: []string{"Accept", "text/event-stream"}}},
		{"sign-out", http.MethodPost, "/staff/logout", call{form: url.Values{}}},
		{"advance by form", http.MethodPost, advance, call{form: from}},
		{"advance by script", http.MethodPost, advance, call{form: from, header: []string{"Accept", "application/json"}}},
		{"cancel by form", http.MethodPost, cancel, call{form: url.Values{}}},
		{"cancel by script", http.MethodPost, cancel, call{form: url.Values{}, header: []string{"Accept", "application/json"}}},
	}
	for _, c := range cases {
		t.Run(c.name+" answers 401", func(t *testing.T) {
			r := a.send(t, c.method, c.path, c.c)
			if r.status != http.StatusUnauthorized {
				t.Errorf("%s %s = %d, want 401", c.method, c.path, r.status)
			}
			if strings.Contains(r.body, "Ada") {
				t.Error("the refusal shows an order")
			}
		})
	}
	t.Run("a forged cookie is no session", func(t *testing.T) {
		forged := &http.Cookie{Name: "staff_session", Value: "made-up-token-aaaaaaaaaaaaaaaaaaaaaaaaaaa"}
		if r := a.send(t, http.MethodGet, "/staff", call{session: forged}); r.status != http.StatusSeeOther {
			t.Errorf("GET /staff with a made-up cookie = %d, want 303", r.status)
		}
		if r := a.send(t, http.MethodGet, "/staff/events", call{session: forged}); r.status != http.StatusUnauthorized {
			t.Errorf("GET /staff/events with a made-up cookie = %d, want 401", r.status)
		}
	})
	if got := a.status(t, o); got != orders.Received {
		t.Errorf("after all that the order is %s, want it untouched", got)
	}
}

func TestStaffSignIn(t *testing.T) {
	a := newStaffApp(t, staffOptions{})

	t.Run("a wrong password is refused", func(t *testing.T) {
		for _, password := range []string{"", "correct horse battery stapl", testStaffPassword + " ", strings.ToUpper(testStaffPassword)} {
			r := a.send(t, http.MethodPost, "/staff/login", call{form: url.Values{"password": {password}}})
			if r.status != http.StatusUnauthorized || r.session != nil {
				t.Errorf("password %q: %d, session cookie %v; want 401 and no cookie", password, r.status, r.session != nil)
			}
			if !strings.Contains(r.body, wrongCredentials) {
				t.Errorf("password %q: the page does not say what went wrong", password)
			}
		}
	})

	t.Run("the session cookie is HttpOnly, SameSite=Lax, for /staff only", func(t *testing.T) {
		c := a.login(t, call{from: "127.0.0.2"})
		if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/staff" || c.Secure {
			t.Errorf("cookie %s: want HttpOnly, SameSite=Lax, Path=/staff, and not Secure over plain HTTP", c)
		}
		if len(c.Value) < 40 {
			t.Errorf("session token %d characters long, want at least 40", len(c.Value))
		}
	})

	t.Run("signing in gives a new session token and ends the old one", func(t *testing.T) {
		first := a.login(t, call{from: "127.0.0.3"})
		second := a.login(t, call{session: first, from: "127.0.0.3"})
		if second.Value == first.Value {
			t.Fatal("signing in again kept the session token")
		}
		if r := a.send(t, http.MethodGet, "/staff", call{session: second}); r.status != http.StatusOK {
			t.Errorf("the new token: GET /staff = %d, want 200", r.status)
		}
		if r := a.send(t, http.MethodGet, "/staff", call{session: first}); r.status != http.StatusSeeOther {
			t.Errorf("the token from before: GET /staff = %d, want 303 to sign in", r.status)
		}
	})

	t.Run("signed in, the sign-in form sends you to the board", func(t *testing.T) {
		c := a.login(t, call{from: "127.0.0.4"})
		r := a.send(t, http.MethodGet, "/staff/login", call{session: c})
		if r.status != http.StatusSeeOther || r.header.Get("Location") != "/staff" {
			t.Errorf("GET /staff/login = %d to %q, want 303 to /staff", r.status, r.header.Get("Location"))
		}
	})
}

func TestStaffSessionCookieIsSecureOverTLS(t *testing.T) {
	for _, c := range []struct {
		name string
		opts staffOptions
	}{
		{"served over TLS", staffOptions{tls: true}},
		{"behind a proxy that ends TLS", staffOptions{secureCookie: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := newStaffApp(t, c.opts)
			cookie := a.login(t, call{})
			if !cookie.Secure || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode {
				t.Errorf("cookie %s: want Secure, HttpOnly, SameSite=Lax", cookie)
			}
		})
	}
}

func TestStaffSignOutEndsTheSessionOnTheServer(t *testing.T) {
	a := newStaffApp(t, staffOptions{})
	o := a.create(t, "Ada")
	cookie := a.login(t, call{})
	if r := a.send(t, http.MethodGet, "/staff", call{session: cookie}); r.status != http.StatusOK {
		t.Fatalf("signed in, GET /staff = %d, want 200", r.status)
	}

	r := a.send(t, http.MethodPost, "/staff/logout", call{form: url.Values{}, session: cookie})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/staff/login" {
		t.Errorf("sign-out = %d to %q, want 303 to /staff/login", r.status, r.header.Get("Location"))
	}
	if r.session == nil || r.session.MaxAge >= 0 {
		t.Errorf("sign-out did not delete the cookie in the browser (Set-Cookie: %v)", r.session)
	}

	// Someone kept a copy of the cookie: it signs nobody in any more.
	if r := a.send(t, http.MethodGet, "/staff", call{session: cookie}); r.status != http.StatusSeeOther {
		t.Errorf("replayed cookie: GET /staff = %d, want 303 to sign in", r.status)
	}
	if r := a.send(t, http.MethodGet, "/staff/events", call{session: cookie, header: []string{"Accept", "text/event-stream"}}); r.status != http.StatusUnauthorized {
		t.Errorf("replayed cookie: GET /staff/events = %d, want 401", r.status)
	}
	r = a.send(t, http.MethodPost, "/staff/orders/"+o.Token+"/advance", call{form: url.Values{"from": {"received"}}, session: cookie})
	if r.status != http.StatusUnauthorized {
		t.Errorf("replayed cookie: advance = %d, want 401", r.status)
	}
	if got := a.status(t, o); got != orders.Received {
		t.Errorf("the replayed cookie moved the order to %s", got)
	}
}

func TestStaffSignInIsRateLimitedByClientAddress(t *testing.T) {
	a := newStaffApp(t, staffOptions{})
	// The guesses are at another name, so that only the address's limit
	// is at stake (TestStaffSignInIsRateLimitedByAccount has the name's).
	wrong := url.Values{"name": {"someone"}, "password": {"guess"}}
	right := url.Values{"password": {testStaffPassword}}

	// Every attempt claims to come from somewhere else. None of these
	// headers is the client's address; only the connection is.
	spoof := func(i int) []string {
		ip := "203.0.113." + strconv.Itoa(i+1)
		return []string{
			"X-Forwarded-For", ip,
			"X-Real-IP", ip,
			"True-Client-IP", ip,
			"Forwarded", "for=" + ip,
		}
	}
	for i := range loginBurst {
		r := a.send(t, http.MethodPost, "/staff/login", call{form: wrong, header: spoof(i)})
		if r.status != http.StatusUnauthorized {
			t.Fatalf("wrong attempt %d = %d, want 401", i+1, r.status)
		}
	}
	r := a.send(t, http.MethodPost, "/staff/login", call{form: right, header: spoof(loginBurst)})
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("after %d wrong attempts, the right password from a new X-Forwarded-For = %d, want 429", loginBurst, r.status)
	}
	if r.session != nil {
		t.Error("a limited attempt got a session cookie")
	}
	if r.header.Get("Retry-After") == "" || !strings.Contains(r.body, "Too many attempts") {
		t.Errorf("the 429 has Retry-After %q and does not say why", r.header.Get("Retry-After"))
	}

	// Another address has its own allowance.
	a.login(t, call{from: "127.0.0.9"})
}

func TestStaffSignInLimitCountsParallelAttempts(t *testing.T) {
	a := newStaffApp(t, staffOptions{})
	const attempts = 3 * loginBurst
	statuses := make(chan int, attempts)
	var wg sync.WaitGroup
	for range attempts {
		wg.Go(func() {
			statuses <- a.send(t, http.MethodPost, "/staff/login", call{form: url.Values{"password": {"guess"}}}).status
		})
	}
	wg.Wait()
	close(statuses)
	refused := 0
	for s := range statuses {
		if s == http.StatusUnauthorized {
			refused++
		}
	}
	// The burst may grow by one if the refill ticks during the test.
	if refused > loginBurst+1 {
		t.Errorf("%d parallel guesses were checked, want at most %d", refused, loginBurst+1)
	}
}

func TestStaffBoardShowsOrdersGroupedOldestFirst(t *testing.T) {
	a := newStaffApp(t, staffOptions{})
	ada := a.create(t, "Ada")
	grace := a.create(t, "Grace")
	alan := a.create(t, "Alan")
	if _, err := a.store.Advance(context.Background(), alan.Token, orders.Received, orders.ByWorker); err != nil {
		t.Fatal(err)
	}
	cookie := a.login(t, call{})
	r := a.send(t, http.MethodGet, "/staff", call{session: cookie})
	if r.status != http.StatusOK {
		t.Fatalf("GET /staff = %d, want 200", r.status)
	}
	if got := r.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	received := section(t, r.body, "received")
	if i, j := strings.Index(received, ada.Token), strings.Index(received, grace.Token); i < 0 || j < 0 || i > j {
		t.Errorf("received group: Ada at %d, Grace at %d; want both, Ada (waiting longer) first", i, j)
	}
	if !strings.Contains(received, `class="count">2</span><span class="visually-hidden"> orders<`) {
		t.Error("the received group does not count 2 orders")
	}
	for _, want := range []string{"Start cooking", "Cancel", `name="from" value="received"`} {
		if !strings.Contains(received, want) {
			t.Errorf("the received group lacks %q", want)
		}
	}
	cooking := section(t, r.body, "cooking")
	if !strings.Contains(cooking, alan.Token) || !strings.Contains(cooking, "Send out") {
		t.Error("the cooking group does not show Alan with Send out")
	}
	if !strings.Contains(r.body, `data-events-url="/staff/events?since=`) {
		t.Error("the board does not say where its stream resumes")
	}
}

// section cuts one status group out of the board's HTML.
func section(t *testing.T, body string, status orders.Status) string {
	t.Helper()
	start := strings.Index(body, `id="group-`+string(status)+`"`)
	if start < 0 {
		t.Fatalf("the board has no %s group", status)
	}
	end := strings.Index(body[start:], "</section>")
	return body[start : start+end]
}

func TestStaffMovesByForm(t *testing.T) {
	a := newStaffApp(t, staffOptions{})
	cookie := a.login(t, call{})
	o := a.create(t, "Ada")
	advance := func(from orders.Status) reply {
		return a.send(t, http.MethodPost, "/staff/orders/"+o.Token+"/advance", call{form: url.Values{"from": {string(from)}}, session: cookie})
	}

	r := advance(orders.Received)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/staff" {
		t.Fatalf("advance = %d to %q, want 303 to /staff", r.status, r.header.Get("Location"))
	}
	if got := a.status(t, o); got != orders.Cooking {
		t.Fatalf("the order is %s, want cooking", got)
	}
	board := a.send(t, http.MethodGet, "/staff", call{session: cookie})
	if !strings.Contains(board.body, "Ada’s order is now cooking.") {
		t.Error("the board after the move does not say what happened")
	}
	if !strings.Contains(section(t, board.body, "cooking"), o.Token) {
		t.Error("the order is not in the cooking group")
	}
	again := a.send(t, http.MethodGet, "/staff", call{session: cookie})
	if strings.Contains(again.body, "is now cooking") {
		t.Error("the message is shown a second time")
	}

	t.Run("the second click of a double click is 409 and says why", func(t *testing.T) {
		r := advance(orders.Received)
		if r.status != http.StatusConflict {
			t.Fatalf("advance from received again = %d, want 409", r.status)
		}
		if !strings.Contains(r.body, "Nothing changed: Ada’s order is already cooking.") {
			t.Errorf("the 409 board does not say what happened")
		}
		if !strings.Contains(section(t, r.body, "cooking"), o.Token) {
			t.Error("the 409 board does not show the order where it is")
		}
		if got := a.status(t, o); got != orders.Cooking {
			t.Errorf("the order is %s, want still cooking", got)
		}
	})

	for _, s := range []orders.Status{orders.Cooking, orders.OutForDelivery} {
		if r := advance(s); r.status != http.StatusSeeOther {
			t.Fatalf("advance from %s = %d, want 303", s, r.status)
		}
	}
	t.Run("a delivered order cannot move: 409", func(t *testing.T) {
		if r := advance(orders.Delivered); r.status != http.StatusConflict || !strings.Contains(r.body, "already delivered") {
			t.Errorf("advance a delivered order = %d, want 409 saying it is delivered", r.status)
		}
		r := a.send(t, http.MethodPost, "/staff/orders/"+o.Token+"/cancel", call{form: url.Values{}, session: cookie})
		if r.status != http.StatusConflict || !strings.Contains(r.body, "can no longer be cancelled") {
			t.Errorf("cancel a delivered order = %d, want 409 saying it cannot be cancelled", r.status)
		}
	})

	t.Run("cancel, then cancel again", func(t *testing.T) {
		p := a.create(t, "Grace")
		cancel := "/staff/orders/" + p.Token + "/cancel"
		if r := a.send(t, http.MethodPost, cancel, call{form: url.Values{}, session: cookie}); r.status != http.StatusSeeOther {
			t.Fatalf("cancel = %d, want 303", r.status)
		}
		if got := a.status(t, p); got != orders.Cancelled {
			t.Fatalf("the order is %s, want cancelled", got)
		}
		r := a.send(t, http.MethodPost, cancel, call{form: url.Values{}, session: cookie})
		if r.status != http.StatusConflict || !strings.Contains(r.body, "already cancelled") {
			t.Errorf("cancel again = %d, want 409 saying it is already cancelled", r.status)
		}
	})

	t.Run("bad requests are 4xx, never 5xx", func(t *testing.T) {
		for _, c := range []struct {
			path string
			form url.Values
			want int
		}{
			{"/staff/orders/" + orders.NewToken() + "/advance", url.Values{"from": {"received"}}, http.StatusNotFound},
			{"/staff/orders/nope/advance", url.Values{"from": {"received"}}, http.StatusNotFound},
			{"/staff/orders/" + orders.NewToken() + "/cancel", url.Values{}, http.StatusNotFound},
			{"/staff/orders/" + o.Token + "/advance", url.Values{}, http.StatusBadRequest},
			{"/staff/orders/" + o.Token + "/advance", url.Values{"from": {"eaten"}}, http.StatusBadRequest},
		} {
			if r := a.send(t, http.MethodPost, c.path, call{form: c.form, session: cookie}); r.status != c.want {
				t.Errorf("POST %s %v = %d, want %d", c.path, c.form, r.status, c.want)
			}
		}
	})
}

func TestStaffMovesByScriptAnswerJSON(t *testing.T) {
	a := newStaffApp(t, staffOptions{})
	cookie := a.login(t, call{})
	o := a.create(t, "Ada")
	post := func(verb string, form url.Values) (int, map[string]any) {
		r := a.send(t, http.MethodPost, "/staff/orders/"+o.Token+"/"+verb, call{form: form, session: cookie, header: []string{"Accept", "application/json"}})
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Fatalf("Content-Type %q, want JSON", ct)
		}
		var body map[string]any
		if err := json.Unmarshal([]byte(r.body), &body); err != nil {
			t.Fatal(err)
		}
		return r.status, body
	}

	status, body := post("advance", url.Values{"from": {"received"}})
	order, _ := body["order"].(map[string]any)
	if status != http.StatusOK || order["status"] != "cooking" || order["token"] != o.Token || order["seq"] != 2.0 || order["name"] != "Ada" {
		t.Errorf("advance = %d %v, want 200 with the order now cooking, seq 2", status, body)
	}
	status, body = post("advance", url.Values{"from": {"received"}})
	if status != http.StatusConflict || body["error"] != "Nothing changed: Ada’s order is already cooking." {
		t.Errorf("advance again = %d %v, want 409 with the reason", status, body)
	}
	status, body = post("cancel", url.Values{})
	if status != http.StatusOK || body["order"].(map[string]any)["status"] != "cancelled" {
		t.Errorf("cancel = %d %v, want 200 with the order cancelled", status, body)
	}
}

func TestStaffBoardEscapesAHostileName(t *testing.T) {
	a := newStaffApp(t, staffOptions{})
	const name = `<script>alert(1)</script><img src=x onerror=alert(2)>"'&`
	o := a.create(t, name)
	cookie := a.login(t, call{})
	r := a.send(t, http.MethodGet, "/staff", call{session: cookie})
	if strings.Contains(r.body, "<script>alert") || strings.Contains(r.body, "<img src=x") {
		t.Fatal("the board holds the name as markup")
	}
	if !strings.Contains(r.body, `&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;&#34;&#39;&amp;`) {
		t.Error("the board does not show the name as escaped text")
	}
	// After a move the message names the order too.
	a.send(t, http.MethodPost, "/staff/orders/"+o.Token+"/advance", call{form: url.Values{"from": {"received"}}, session: cookie})
	r = a.send(t, http.MethodGet, "/staff", call{session: cookie})
	if strings.Contains(r.body, "<script>alert") || !strings.Contains(r.body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("the message after a move holds the name as markup")
	}
}

func TestStaffEventStreamThroughTheSession(t *testing.T) {
	a := newStaffApp(t, staffOptions{})
	cookie := a.login(t, call{})
	head, err := a.store.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, a.server.URL+"/staff/events?since="+itoa(head), nil)
	req.Header.Set("Accept", "text/event-stream")
	req.AddCookie(cookie)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, err := a.server.Client().Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /staff/events = %d %q, want 200 text/event-stream", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// The stream is flushed through the session's response writer: a new
	// order arrives while the response is still open.
	o := a.create(t, "Ada")
	got := make(chan string, 1)
	go func() {
		buf := make([]byte, 0, 4096)
		chunk := make([]byte, 1024)
		for {
			n, err := resp.Body.Read(chunk)
			buf = append(buf, chunk[:n]...)
			if strings.Contains(string(buf), "\n\n") && strings.Contains(string(buf), o.Token) {
				got <- string(buf)
				return
			}
			if err != nil {
				got <- string(buf)
				return
			}
		}
	}()
	select {
	case s := <-got:
		if !strings.Contains(s, "event: order_update") || !strings.Contains(s, `"name":"Ada"`) {
			t.Errorf("the stream sent %q, want the new order's event", s)
		}
	case <-time.After(browserWait):
		t.Fatal("the new order did not arrive on the stream")
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// failingSessions is a session store whose database is down.
type failingSessions struct{}

var errSessionsDown = errors.New("sessions: database unreachable")

func (failingSessions) Find(string) ([]byte, bool, error)      { return nil, false, errSessionsDown }
func (failingSessions) Commit(string, []byte, time.Time) error { return errSessionsDown }
func (failingSessions) Delete(string) error                    { return errSessionsDown }

func TestStaffSessionsDownNeverStopsEventSource(t *testing.T) {
	a := newStaffApp(t, staffOptions{sessions: failingSessions{}})
	cookie := &http.Cookie{Name: "staff_session", Value: "some-token-from-before-the-outage-aaaaaaa"}
	r := a.send(t, http.MethodGet, "/staff/events", call{session: cookie, header: []string{"Accept", "text/event-stream"}})
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "text/event-stream" || !strings.Contains(r.body, "retry:") {
		t.Errorf("GET /staff/events = %d %q %q, want 200, an event stream that asks to retry", r.status, r.header.Get("Content-Type"), r.body)
	}
	if r := a.send(t, http.MethodGet, "/staff", call{session: cookie}); r.status != http.StatusServiceUnavailable {
		t.Errorf("GET /staff = %d, want 503", r.status)
	}
}

func TestStaffSideIsOffWithoutAccounts(t *testing.T) {
	pool := pgtest.NewPool(t)
	store := orders.NewStore(pool, orders.Options{})
	server := httptest.NewServer(NewHandler(store, stream.NewHub(stream.Options{Logger: quiet}), nil, Config{}, quiet))
	t.Cleanup(server.Close)
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/staff"},
		{http.MethodGet, "/staff/login"},
		{http.MethodPost, "/staff/login"},
		{http.MethodGet, "/staff/events"},
		{http.MethodPost, "/staff/orders/" + orders.NewToken() + "/advance"},
	} {
		req, _ := http.NewRequest(c.method, server.URL+c.path, strings.NewReader("password="))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "STAFF_PASSWORD") {
			t.Errorf("%s %s = %d, want 404 with the page that says to set STAFF_PASSWORD", c.method, c.path, resp.StatusCode)
		}
		if !strings.Contains(string(body), "staff add") {
			t.Errorf("%s %s does not say how to add an account", c.method, c.path)
		}
		if resp.Header.Get("Set-Cookie") != "" {
			t.Errorf("%s %s set a cookie", c.method, c.path)
		}
	}
}

// createMany places n orders, one after the other, oldest first.
func (f fixtures) createMany(t *testing.T, n int) []orders.Order {
	t.Helper()
	list := make([]orders.Order, n)
	for i := range list {
		list[i] = f.create(t, "Customer "+strconv.Itoa(i+1))
	}
	return list
}

// cards counts the cards in a piece of the board's HTML.
func cards(html string) int { return strings.Count(html, `class="order"`) }

func TestStaffBoardCountsMoreOrdersThanItShows(t *testing.T) {
	t.Parallel()
	a := newStaffApp(t, staffOptions{})
	waiting := a.createMany(t, 120)
	cooking := a.createMany(t, 3)
	for _, o := range cooking {
		a.advance(t, o, orders.Received)
	}
	cookie := a.login(t, call{})

	r := a.send(t, http.MethodGet, "/staff", call{session: cookie})
	if r.status != http.StatusOK {
		t.Fatalf("GET /staff = %d", r.status)
	}
	received := section(t, r.body, orders.Received)
	for _, want := range []string{
		`class="count">120</span><span class="visually-hidden"> orders<`,
		`data-count="120"`,
		`and 70 more`,
		`href="/staff?received=100#group-received">Show 50 more<`,
	} {
		if !strings.Contains(received, want) {
			t.Errorf("the received column lacks %q", want)
		}
	}
	if n := cards(received); n != 50 {
		t.Errorf("the received column has %d cards, want 50", n)
	}
	if !strings.Contains(received, waiting[0].Token) || !strings.Contains(received, waiting[49].Token) {
		t.Error("the received column does not show the 50 orders waiting longest")
	}
	if strings.Contains(received, waiting[50].Token) || strings.Contains(received, waiting[119].Token) {
		t.Error("the received column shows a newer order instead of an older one")
	}
	if c := section(t, r.body, orders.Cooking); !strings.Contains(c, `class="count">3</span><span class="visually-hidden"> orders<`) || cards(c) != 3 || !strings.Contains(c, `class="more" hidden`) {
		t.Errorf("the cooking column does not show its 3 orders and nothing more")
	}

	t.Run("the link shows 50 more, without JavaScript", func(t *testing.T) {
		r := a.send(t, http.MethodGet, "/staff?received=100", call{session: cookie})
		received := section(t, r.body, orders.Received)
		if n := cards(received); n != 100 {
			t.Errorf("%d cards, want 100", n)
		}
		for _, want := range []string{`and 20 more`, `href="/staff?received=150#group-received"`, `data-window="100"`} {
			if !strings.Contains(received, want) {
				t.Errorf("the received column lacks %q", want)
			}
		}
		if !strings.Contains(section(t, r.body, orders.Cooking), `href="/staff?received=100&amp;cooking=100#group-cooking"`) {
			t.Error("the cooking column's link does not keep the received column's window")
		}
	})
}

func TestStaffOrdersPagesAColumn(t *testing.T) {
	t.Parallel()
	a := newStaffApp(t, staffOptions{})
	const name = `<script>alert(1)</script>`
	waiting := a.createMany(t, 45)
	hostile := a.create(t, name)
	waiting = append(waiting, hostile)
	cookie := a.login(t, call{})

	type page struct {
		Orders []struct {
			Token  string        `json:"token"`
			Seq    int           `json:"seq"`
			Status orders.Status `json:"status"`
			At     string        `json:"at"`
			Name   string        `json:"name"`
			Items  []orders.Item `json:"items"`
			Total  int           `json:"total_cents"`
		} `json:"orders"`
		More bool `json:"more"`
	}
	get := func(query string) (int, page, string) {
		t.Helper()
		r := a.send(t, http.MethodGet, "/staff/orders?"+query, call{session: cookie})
		var p page
		if r.status == http.StatusOK {
			if err := json.Unmarshal([]byte(r.body), &p); err != nil {
				t.Fatalf("the answer is not JSON: %v: %s", err, r.body)
			}
		}
		return r.status, p, r.body
	}

	t.Run("pages follow each other oldest first, and say when there is no more", func(t *testing.T) {
		var got []string
		query := url.Values{"status": {"received"}, "limit": {"20"}}
		for i := 0; ; i++ {
			status, p, body := get(query.Encode())
			if status != http.StatusOK {
				t.Fatalf("page %d = %d", i, status)
			}
			if i == 0 && strings.Contains(body, "<script>") {
				t.Error("the JSON holds the name as markup")
			}
			for _, o := range p.Orders {
				got = append(got, o.Token)
				if o.Status != orders.Received || o.Seq != 1 || o.At == "" || len(o.Items) != 2 {
					t.Errorf("order %+v: want a received order with its time and items", o)
				}
			}
			last := p.Orders[len(p.Orders)-1]
			query.Set("after", last.At)
			query.Set("token", last.Token)
			if wantMore := i < 2; p.More != wantMore {
				t.Fatalf("page %d says more %v, want %v", i, p.More, wantMore)
			}
			if !p.More {
				if last.Name != name {
					t.Errorf("the last order's name is %q, want %q", last.Name, name)
				}
				break
			}
		}
		var want []string
		for _, o := range waiting {
			want = append(want, o.Token)
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("the pages hold %d orders %v, want %d in the order they were placed", len(got), got, len(want))
		}
	})
	t.Run("a page is at most 100 orders", func(t *testing.T) {
		a.createMany(t, 60)
		if _, p, _ := get("status=received&limit=1000"); len(p.Orders) != 100 || !p.More {
			t.Errorf("limit=1000 gave %d orders, more %v; want 100 and more", len(p.Orders), p.More)
		}
	})
	for _, c := range []struct{ name, query string }{
		{"no status", "limit=5"},
		{"an unknown status", "status=eaten"},
		{"a time that is not one", "status=received&after=yesterday"},
		{"a limit of zero", "status=received&limit=0"},
		{"a limit that is not a number", "status=received&limit=lots"},
	} {
		t.Run(c.name+" is a 400", func(t *testing.T) {
			if status, _, body := get(c.query); status != http.StatusBadRequest || !strings.Contains(body, `"error"`) {
				t.Errorf("GET /staff/orders?%s = %d %s, want 400 saying why", c.query, status, body)
			}
		})
	}
	t.Run("without a session it is a 401", func(t *testing.T) {
		if r := a.send(t, http.MethodGet, "/staff/orders?status=received", call{}); r.status != http.StatusUnauthorized || strings.Contains(r.body, waiting[0].Token) {
			t.Errorf("GET /staff/orders without a session = %d, want 401 and no order", r.status)
		}
	})
}

// addAccount creates a staff account, as "ordertracker staff add" does.
func (a *staffApp) addAccount(t *testing.T, name, password string) {
	t.Helper()
	if _, err := a.accounts.Add(context.Background(), name, password); err != nil {
		t.Fatal(err)
	}
}

// loginAs signs in as the account name and returns its session cookie.
func (a *staffApp) loginAs(t *testing.T, name, password string, c call) *http.Cookie {
	t.Helper()
	c.form = url.Values{"name": {name}, "password": {password}}
	r := a.send(t, http.MethodPost, "/staff/login", c)
	if r.status != http.StatusSeeOther || r.session == nil {
		t.Fatalf("sign-in as %s = %d (session cookie %v), want 303 with a session", name, r.status, r.session)
	}
	return r.session
}

// TestADrainingProcessTurnsTheStaffStreamAwayBeforeItsSession: a board
// that reconnects to a process on its way out is told to come back before
// its session is read, whether it has one or not; the process it reaches
// next checks it. Its pages and moves are still served.
func TestADrainingProcessTurnsTheStaffStreamAwayBeforeItsSession(t *testing.T) {
	t.Parallel()
	a := newStaffApp(t, staffOptions{})
	session := a.login(t, call{})
	a.hub.Drain(context.Background(), 0)
	for _, c := range []struct {
		name    string
		session *http.Cookie
	}{
		{"signed in", session},
		{"not signed in", nil},
	} {
		r := a.send(t, http.MethodGet, staffEventsPath, call{session: c.session})
		s := ssetest.Parse([]byte(r.body))
		if r.status != http.StatusOK || s.Retry <= 0 || len(s.Events) != 0 || !slices.Contains(s.Comments, "this server is restarting; reconnect to resume") {
			t.Errorf("%s: %d, retry %d, %d events, comments %q; want 200, a retry, no events, and that the server is restarting", c.name, r.status, s.Retry, len(s.Events), s.Comments)
		}
		if r.session != nil {
			t.Errorf("%s: the answer set a session cookie", c.name)
		}
	}
	if r := a.send(t, http.MethodGet, "/staff", call{session: session}); r.status != http.StatusOK {
		t.Errorf("the board while draining: %d, want 200", r.status)
	}
}
