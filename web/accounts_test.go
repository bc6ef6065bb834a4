package web

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ordertracker/ordertracker/orders"
	views "github.com/ordertracker/ordertracker/templ"
)

// Two members of staff. Their names are not made of hex digits, so that
// they cannot turn up by chance in an asset's fingerprint, nor, being
// lower case, in a token.
const (
	marta, martaPassword = "marta", "marta's own password"
	oskar, oskarPassword = "oskar", "oskar's own password"
)

// twoAccounts is a staff app with marta and oskar signed in, each from an
// address of their own.
func twoAccounts(t *testing.T, opts staffOptions) (a *staffApp, martaSession, oskarSession *http.Cookie) {
	t.Helper()
	a = newStaffApp(t, opts)
	a.addAccount(t, marta, martaPassword)
	a.addAccount(t, oskar, oskarPassword)
	return a, a.loginAs(t, marta, martaPassword, call{from: "127.0.6.1"}), a.loginAs(t, oskar, oskarPassword, call{from: "127.0.6.2"})
}

func TestStaffSignInWithTwoAccounts(t *testing.T) {
	t.Parallel()
	a, martaSession, oskarSession := twoAccounts(t, staffOptions{sessionCheck: hour})
	for _, s := range []struct {
		name    string
		session *http.Cookie
	}{{marta, martaSession}, {oskar, oskarSession}} {
		r := a.send(t, http.MethodGet, "/staff", call{session: s.session})
		if r.status != http.StatusOK || !strings.Contains(r.body, `<strong id="staff-member">`+s.name+`</strong>`) {
			t.Errorf("%s's board = %d, and does not say who is signed in", s.name, r.status)
		}
	}
	t.Run("a name signs in in any case, with spaces around it", func(t *testing.T) {
		a.loginAs(t, " Marta ", martaPassword, call{from: "127.0.6.3"})
	})
	t.Run("one's password does not sign in as the other", func(t *testing.T) {
		r := a.send(t, http.MethodPost, "/staff/login", call{form: url.Values{"name": {oskar}, "password": {martaPassword}}, from: "127.0.6.4"})
		if r.status != http.StatusUnauthorized || r.session != nil {
			t.Errorf("oskar with marta's password = %d, session %v; want 401 and none", r.status, r.session)
		}
	})
}

// TestStaffSignInTellsNoNameApart: a name that no account has gets the very
// answer a wrong password gets, and costs the same argon2id work (counted,
// not timed).
func TestStaffSignInTellsNoNameApart(t *testing.T) {
	t.Parallel()
	a := newStaffApp(t, staffOptions{sessionCheck: hour})
	a.addAccount(t, marta, martaPassword)
	attempt := func(name, password, from string) (reply, uint64) {
		before := a.accounts.Derivations()
		r := a.send(t, http.MethodPost, "/staff/login", call{form: url.Values{"name": {name}, "password": {password}}, from: from})
		return r, a.accounts.Derivations() - before
	}
	// Warm: the dummy hash is made once per process, at the first unknown name.
	attempt("nobody-at-all", "a guess", "127.0.7.9")

	wrong, wrongWork := attempt(marta, "not marta's password", "127.0.7.1")
	unknown, unknownWork := attempt("martha", "not marta's password", "127.0.7.2")
	invalid, invalidWork := attempt("<marta>", "not marta's password", "127.0.7.3")
	if wrong.status != http.StatusUnauthorized || !strings.Contains(wrong.body, wrongCredentials) {
		t.Fatalf("a wrong password = %d, want 401 saying %q", wrong.status, wrongCredentials)
	}
	for _, r := range []struct {
		what  string
		reply reply
		work  uint64
	}{{"an unknown name", unknown, unknownWork}, {"a name no account can have", invalid, invalidWork}} {
		if r.reply.status != wrong.status || r.reply.body != wrong.body {
			t.Errorf("%s is answered %d with another page than a wrong password's", r.what, r.reply.status)
		}
		if r.work != wrongWork || r.work != 1 {
			t.Errorf("%s ran argon2id %d times, a wrong password %d; want once each", r.what, r.work, wrongWork)
		}
	}
}

func TestStaffSignInIsRateLimitedByAccount(t *testing.T) {
	t.Parallel()
	a := newStaffApp(t, staffOptions{sessionCheck: hour})
	a.addAccount(t, marta, martaPassword)
	a.addAccount(t, oskar, oskarPassword)
	// Marta's own browser signed in yesterday, and holds a device cookie.
	known := a.send(t, http.MethodPost, "/staff/login", call{form: url.Values{"name": {marta}, "password": {martaPassword}}, from: "127.0.8.100"}).device
	if known == nil {
		t.Fatal("sign-in set no device cookie")
	}
	// Marta signs in from a few machines first: right passwords do not count.
	for i := range loginBurst + 2 {
		a.loginAs(t, marta, martaPassword, call{from: "127.0.8." + strconv.Itoa(50+i)})
	}
	// A guesser comes from a new address for every guess, so that no
	// address's limit ever stops it, at marta and at a name nobody has.
	for _, name := range []string{marta, "nobody"} {
		refused := 0
		for i := range loginBurst + 1 {
			from := "127.0.8." + strconv.Itoa(i+1)
			if name != marta {
				from = "127.0.9." + strconv.Itoa(i+1)
			}
			r := a.send(t, http.MethodPost, "/staff/login", call{form: url.Values{"name": {name}, "password": {"guess"}}, from: from})
			switch r.status {
			case http.StatusUnauthorized:
			case http.StatusTooManyRequests:
				refused++
				if !strings.Contains(r.body, "Too many attempts for this name") || r.header.Get("Retry-After") == "" {
					t.Errorf("the 429 for %s does not say why, or when to come back", name)
				}
			default:
				t.Fatalf("a guess at %s = %d, want 401 or 429", name, r.status)
			}
		}
		// The burst may grow by one if the refill ticks during the test,
		// the same for a name that exists and one that does not.
		if refused < 1 {
			t.Errorf("%d guesses at %s from as many addresses, and none refused", loginBurst+1, name)
		}
	}
	right := url.Values{"name": {marta}, "password": {martaPassword}}
	if r := a.send(t, http.MethodPost, "/staff/login", call{form: right, from: "127.0.8.200"}); r.status != http.StatusTooManyRequests {
		t.Errorf("marta from a new machine while her name is limited = %d, want 429", r.status)
	}
	if r := a.send(t, http.MethodPost, "/staff/login", call{form: right, from: "127.0.8.200", device: known}); r.status != http.StatusSeeOther {
		t.Errorf("marta from her own browser while her name is limited = %d, want 303", r.status)
	}
	a.loginAs(t, oskar, oskarPassword, call{from: "127.0.8.201"}) // another name is not limited
}

// TestStaffMovesNameTheirPerson: two accounts move orders; the board and
// the staff order page name each, live and on reload, and the customer's
// page, stream and JSON say only "the restaurant".
func TestStaffMovesNameTheirPerson(t *testing.T) {
	t.Parallel()
	a, martaSession, oskarSession := twoAccounts(t, staffOptions{sessionCheck: hour})
	o := a.create(t, "Lena")
	board := a.openStream(t, oskarSession)

	move := func(session *http.Cookie, verb string, form url.Values) {
		t.Helper()
		r := a.send(t, http.MethodPost, "/staff/orders/"+o.Token+"/"+verb, call{form: form, session: session})
		if r.status != http.StatusSeeOther {
			t.Fatalf("%s = %d, want 303", verb, r.status)
		}
	}
	move(martaSession, "advance", url.Values{"from": {"received"}})
	board.waitFor(t, `"staff":"marta"`)
	if r := a.send(t, http.MethodGet, "/staff", call{session: oskarSession}); !strings.Contains(r.body, `by <span class="order-by-name">marta</span>`) {
		t.Error("the board's card does not say marta moved the order")
	}
	move(oskarSession, "cancel", url.Values{})
	board.waitFor(t, `"staff":"oskar"`)

	page := a.send(t, http.MethodGet, views.StaffOrderURL(o.Token), call{session: martaSession})
	for _, want := range []string{`<span class="history-by">by marta</span>`, `<span class="history-by">by oskar</span>`, `<span class="history-by">by customer</span>`} {
		if !strings.Contains(page.body, want) {
			t.Errorf("the staff order page lacks %q", want)
		}
	}

	// The customer's side.
	tracking := a.send(t, http.MethodGet, "/orders/"+o.Token, call{})
	api := a.send(t, http.MethodGet, "/api/orders/"+o.Token, call{})
	stream := a.send(t, http.MethodGet, "/orders/"+o.Token+"/events", call{header: []string{"Accept", "text/event-stream"}})
	if !strings.Contains(tracking.body, "by the restaurant") {
		t.Error("the tracking page does not say the restaurant moved the order")
	}
	for what, body := range map[string]string{"tracking page": tracking.body, "JSON API": api.body, "event stream": stream.body} {
		if !strings.Contains(body, o.Token) {
			t.Fatalf("the %s does not name the order; the test looks in the wrong place: %.300s", what, body)
		}
		for _, name := range []string{marta, oskar} {
			if strings.Contains(body, name) {
				t.Errorf("the customer's %s names %s", what, name)
			}
		}
	}

	t.Run("the log keeps the name after the account is removed", func(t *testing.T) {
		if err := a.accounts.Remove(context.Background(), marta); err != nil {
			t.Fatal(err)
		}
		page := a.send(t, http.MethodGet, views.StaffOrderURL(o.Token), call{session: oskarSession})
		if !strings.Contains(page.body, `<span class="history-by">by marta</span>`) {
			t.Error("removing marta's account took her name off her move")
		}
		events, err := a.store.Events(context.Background(), o.ID, 0)
		if err != nil || len(events) != 3 || events[1].Staff.Name != marta || events[2].Staff.Name != oskar || events[1].Actor != orders.ByStaff {
			t.Errorf("events = %+v, %v; want marta's advance and oskar's cancel", events, err)
		}
	})
}

// TestRemovingAnAccountEndsItsOpenBoard holds a real board stream of each
// of two accounts open, and removes one account (what "ordertracker staff
// remove" does, from outside any web process): its stream ends within a
// check of the session watch, and the other's stays open. A new password
// does the same.
func TestRemovingAnAccountEndsItsOpenBoard(t *testing.T) {
	t.Parallel()
	a, martaSession, oskarSession := twoAccounts(t, staffOptions{sessionCheck: 100 * time.Millisecond})
	martaBoard := a.openStream(t, martaSession)
	oskarBoard := a.openStream(t, oskarSession)
	o := a.create(t, "Before the removal")
	martaBoard.waitFor(t, o.Token)

	start := time.Now()
	if err := a.accounts.Remove(context.Background(), marta); err != nil {
		t.Fatal(err)
	}
	martaBoard.waitEnd(t, "after marta's account was removed")
	t.Logf("the stream ended %s after the removal (check every 100ms)", time.Since(start))
	a.refusesSession(t, martaSession)
	if !oskarBoard.open() {
		t.Fatal("oskar's stream ended with marta's account")
	}
	after := a.create(t, "After the removal")
	oskarBoard.waitFor(t, after.Token)

	t.Run("a new password ends the account's board too", func(t *testing.T) {
		if err := a.accounts.SetPassword(context.Background(), oskar, "oskar's next password"); err != nil {
			t.Fatal(err)
		}
		oskarBoard.waitEnd(t, "after oskar's new password")
		a.refusesSession(t, oskarSession)
	})
}

func TestStaffDevicesAndSigningOutEverywhere(t *testing.T) {
	t.Parallel()
	a, martaPhone, oskarSession := twoAccounts(t, staffOptions{sessionCheck: hour})
	martaTill := a.loginAs(t, marta, martaPassword, call{from: "127.0.6.5", header: []string{"User-Agent", "Till <b>browser</b>"}})
	tillBoard := a.openStream(t, martaTill)

	r := a.send(t, http.MethodGet, "/staff/devices", call{session: martaPhone})
	if r.status != http.StatusOK {
		t.Fatalf("GET /staff/devices = %d, want 200", r.status)
	}
	if n := strings.Count(r.body, `class="device-agent"`); n != 2 {
		t.Errorf("marta's devices page lists %d sessions, want her 2", n)
	}
	if n := strings.Count(r.body, "This device"); n != 1 {
		t.Errorf("%d sessions marked as this one, want 1", n)
	}
	if !strings.Contains(r.body, "Till &lt;b&gt;browser&lt;/b&gt;") {
		t.Error("the till's User-Agent is not shown, escaped")
	}
	if strings.Contains(r.body, oskar) {
		t.Error("marta's devices page shows oskar")
	}
	t.Run("signing in again on a device leaves one sign-in for it", func(t *testing.T) {
		again := a.send(t, http.MethodPost, "/staff/login", call{form: url.Values{"name": {oskar}, "password": {oskarPassword}}, session: oskarSession, from: "127.0.6.2"})
		if again.status != http.StatusSeeOther || again.session == nil {
			t.Fatalf("signing in again = %d, want 303 with a new session", again.status)
		}
		oskarSession = again.session
		r := a.send(t, http.MethodGet, "/staff/devices", call{session: oskarSession})
		if n := strings.Count(r.body, `class="device-agent"`); n != 1 {
			t.Errorf("oskar's devices page lists %d sessions after signing in twice on one device, want 1", n)
		}
	})
	if r := a.send(t, http.MethodGet, "/staff/devices", call{}); r.status != http.StatusSeeOther {
		t.Errorf("GET /staff/devices without a session = %d, want 303 to the sign-in form", r.status)
	}

	t.Run("from another site, nothing happens", func(t *testing.T) {
		r := a.send(t, http.MethodPost, "/staff/devices/sign-out", call{form: url.Values{}, session: martaPhone, header: []string{"Sec-Fetch-Site", "cross-site"}})
		if r.status != http.StatusForbidden {
			t.Errorf("a cross-site sign-out everywhere = %d, want 403", r.status)
		}
		if !tillBoard.open() {
			t.Error("a cross-site request ended the till's board")
		}
	})
	r = a.send(t, http.MethodPost, "/staff/devices/sign-out", call{form: url.Values{}, session: martaPhone})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/staff/login" {
		t.Fatalf("sign out everywhere = %d to %q, want 303 to /staff/login", r.status, r.header.Get("Location"))
	}
	// At once in this process: the watch checks only every hour here.
	tillBoard.waitEnd(t, "after signing out everywhere")
	a.refusesSession(t, martaPhone)
	a.refusesSession(t, martaTill)
	if r := a.send(t, http.MethodGet, "/staff", call{session: oskarSession}); r.status != http.StatusOK {
		t.Errorf("oskar's board after marta signed out everywhere = %d, want 200", r.status)
	}
}

// TestStaffSideSaysHowToMakeTheFirstAccount: with no account at all, the
// sign-in form says how to make one.
func TestStaffSideSaysHowToMakeTheFirstAccount(t *testing.T) {
	t.Parallel()
	a := newStaffApp(t, staffOptions{sessionCheck: hour})
	if err := a.accounts.Remove(context.Background(), "staff"); err != nil {
		t.Fatal(err)
	}
	r := a.send(t, http.MethodGet, "/staff/login", call{})
	if r.status != http.StatusOK || !strings.Contains(r.body, "No staff accounts yet") || !strings.Contains(r.body, "ordertracker staff add") {
		t.Errorf("GET /staff/login without accounts = %d, and does not say how to add one: %.300s", r.status, r.body)
	}
	resp, err := http.Get(a.server.URL + "/staff")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "ordertracker staff add") {
		t.Error("GET /staff, followed to the sign-in page, does not say how to add an account")
	}
}
