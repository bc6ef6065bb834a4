package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alexedwards/scs/pgxstore"
	"github.com/alexedwards/scs/v2"

	"github.com/ordertracker/ordertracker/internal/pgtest"
	"github.com/ordertracker/ordertracker/orders"
)

// staffStream is an open /staff/events stream, read in the background.
type staffStream struct {
	mu   sync.Mutex
	body []byte
	// how is what ended the read: io.EOF when the server ended the stream
	// cleanly; nil while it is open.
	how   error
	more  chan struct{} // a signal after each read
	ended chan struct{} // closed when the read ends
}

// openStream opens /staff/events as EventSource would, from the log's
// head, with the session cookie, and fails the test unless the answer is a
// stream. The stream is subscribed (and owned by the session) once its
// headers are in.
func (a *staffApp) openStream(t *testing.T, session *http.Cookie) *staffStream {
	t.Helper()
	resp := a.requestStream(t, session)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("GET /staff/events = %d %q, want 200 text/event-stream; body: %.200s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	s := &staffStream{more: make(chan struct{}, 1), ended: make(chan struct{})}
	go func() {
		defer close(s.ended)
		defer resp.Body.Close()
		chunk := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(chunk)
			s.mu.Lock()
			s.body = append(s.body, chunk[:n]...)
			if err != nil {
				s.how = err
			}
			s.mu.Unlock()
			select {
			case s.more <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	return s
}

// requestStream asks for /staff/events as EventSource does, and returns the
// response as it is; the test's end closes it.
func (a *staffApp) requestStream(t *testing.T, session *http.Cookie) *http.Response {
	t.Helper()
	head, err := a.store.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.server.URL+"/staff/events?since="+itoa(head), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	if session != nil {
		req.AddCookie(session)
	}
	resp, err := a.server.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// waitFor waits until the stream has brought text.
func (s *staffStream) waitFor(t *testing.T, text string) {
	t.Helper()
	timeout := time.After(browserWait)
	for {
		s.mu.Lock()
		got, how := bytes.Contains(s.body, []byte(text)), s.how
		s.mu.Unlock()
		if got {
			return
		}
		if how != nil {
			t.Fatalf("the stream ended (%v) before it brought %q", how, text)
		}
		select {
		case <-s.more:
		case <-timeout:
			t.Fatalf("the stream did not bring %q", text)
		}
	}
}

// waitEnd waits until the server ends the stream, fails the test unless it
// ended it cleanly, and returns how long the end took.
func (s *staffStream) waitEnd(t *testing.T, what string) time.Duration {
	t.Helper()
	start := time.Now()
	select {
	case <-s.ended:
	case <-time.After(browserWait):
		t.Fatalf("%s: the stream is still open after %s", what, browserWait)
	}
	took := time.Since(start)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.how != io.EOF {
		t.Errorf("%s: the stream ended with %v, want a clean end (EOF)", what, s.how)
	}
	return took
}

// open reports whether the stream is still open.
func (s *staffStream) open() bool {
	select {
	case <-s.ended:
		return false
	default:
		return true
	}
}

// hour is a session check that never comes in a test, so that only what the
// test does can end a stream.
const hour = time.Hour

// refusesSession checks that every staff door is shut to session, and that a
// move with it changes nothing.
func (a *staffApp) refusesSession(t *testing.T, session *http.Cookie) {
	t.Helper()
	o := a.create(t, "Ada")
	if r := a.send(t, http.MethodGet, "/staff", call{session: session}); r.status != http.StatusSeeOther || r.header.Get("Location") != "/staff/login" {
		t.Errorf("GET /staff = %d to %q, want 303 to /staff/login", r.status, r.header.Get("Location"))
	}
	if r := a.send(t, http.MethodGet, "/staff/login", call{session: session}); r.status != http.StatusOK {
		t.Errorf("GET /staff/login = %d, want 200 with the form", r.status)
	}
	resp := a.requestStream(t, session)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /staff/events = %d, want 401 (EventSource then stops for good)", resp.StatusCode)
	}
	if r := a.send(t, http.MethodGet, "/staff/session", call{session: session}); r.status != http.StatusUnauthorized {
		t.Errorf("GET /staff/session = %d, want 401", r.status)
	}
	for _, accept := range []string{"text/html", "application/json"} {
		r := a.send(t, http.MethodPost, "/staff/orders/"+o.Token+"/advance",
			call{form: url.Values{"from": {"received"}}, session: session, header: []string{"Accept", accept}})
		if r.status != http.StatusUnauthorized {
			t.Errorf("advance, Accept %s = %d, want 401", accept, r.status)
		}
	}
	if got := a.status(t, o); got != orders.Received {
		t.Errorf("the refused session moved the order to %s", got)
	}
}

func TestStaffSessionsFollowThePassword(t *testing.T) {
	t.Parallel()
	before := newStaffApp(t, staffOptions{sessionCheck: hour})
	session := before.login(t, call{})
	// Another process starts with a new STAFF_PASSWORD, on the same
	// database: the account "staff" gets it.
	after := newStaffApp(t, staffOptions{pool: before.pool, password: "a new staff password, after a leak", sessionCheck: hour})

	t.Run("the old password's session is refused everywhere", func(t *testing.T) {
		after.refusesSession(t, session)
		before.refusesSession(t, session)
	})
	t.Run("the new password signs in, the old one does not", func(t *testing.T) {
		r := after.send(t, http.MethodPost, "/staff/login", call{form: url.Values{"password": {testStaffPassword}}, from: "127.0.3.1"})
		if r.status != http.StatusUnauthorized {
			t.Errorf("the old password = %d, want 401", r.status)
		}
		fresh := after.login(t, call{from: "127.0.3.1"})
		if r := after.send(t, http.MethodGet, "/staff", call{session: fresh}); r.status != http.StatusOK {
			t.Errorf("GET /staff with the new password's session = %d, want 200", r.status)
		}
	})
	t.Run("the sessions table holds neither the password nor its hash", func(t *testing.T) {
		// A session holds the ids of its account and of its sign-in, and
		// nothing a guesser could test a password against.
		var data [][]byte
		rows, err := before.pool.Query(context.Background(), `SELECT data FROM sessions`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var b []byte
			if err := rows.Scan(&b); err != nil {
				t.Fatal(err)
			}
			data = append(data, b)
		}
		if rows.Err() != nil {
			t.Fatal(rows.Err())
		}
		if len(data) == 0 {
			t.Fatal("the sessions table is empty; the test proves nothing")
		}
		var hash string
		if err := before.pool.QueryRow(context.Background(), `SELECT password_hash FROM staff_accounts WHERE name = 'staff'`).Scan(&hash); err != nil {
			t.Fatal(err)
		}
		_, key, _ := strings.Cut(strings.TrimPrefix(hash, "$argon2id$"), "$")
		digest := sha256.Sum256([]byte(after.password))
		for _, b := range data {
			if bytes.Contains(b, []byte(after.password)) || bytes.Contains(b, digest[:]) || bytes.Contains(b, []byte(key)) {
				t.Error("a session holds the password, its SHA-256, or its hash")
			}
		}
		var signIn string
		if err := before.pool.QueryRow(context.Background(), `SELECT id FROM staff_sessions LIMIT 1`).Scan(&signIn); err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(data, func(b []byte) bool { return bytes.Contains(b, []byte(signIn)) }) {
			t.Error("no session holds its sign-in's id; the test looks in the wrong place")
		}
	})
}

func TestStaffStreamEndsAtSignOutInTheSameProcess(t *testing.T) {
	t.Parallel()
	// The watch never runs: only sign-out can end the stream.
	a := newStaffApp(t, staffOptions{sessionCheck: hour})
	session := a.login(t, call{})
	other := a.login(t, call{}) // another member of staff, signed in apart
	s := a.openStream(t, session)
	kept := a.openStream(t, other)
	before := a.create(t, "Before sign-out")
	s.waitFor(t, before.Token)

	r := a.send(t, http.MethodPost, "/staff/logout", call{form: url.Values{}, session: session})
	if r.status != http.StatusSeeOther {
		t.Fatalf("sign-out = %d, want 303", r.status)
	}
	took := s.waitEnd(t, "after sign-out")
	t.Logf("the stream ended %s after the sign-out's answer", took)

	// The browser reconnects with the copied cookie and is refused.
	a.refusesSession(t, session)

	// Another session's stream is not touched.
	after := a.create(t, "After sign-out")
	kept.waitFor(t, after.Token)
	if !kept.open() {
		t.Error("another session's stream ended too")
	}
}

func TestStaffStreamEndsWhenAnotherProcessSignsOut(t *testing.T) {
	t.Parallel()
	a := newStaffApp(t, staffOptions{sessionCheck: 100 * time.Millisecond})
	// The other process shares the sessions table, not the hub.
	b := newStaffApp(t, staffOptions{pool: a.pool, sessionCheck: hour})
	session := a.login(t, call{})
	kept := a.login(t, call{})
	s := a.openStream(t, session)
	k := a.openStream(t, kept)
	o := a.create(t, "Ada")
	s.waitFor(t, o.Token)

	start := time.Now()
	if r := b.send(t, http.MethodPost, "/staff/logout", call{form: url.Values{}, session: session}); r.status != http.StatusSeeOther {
		t.Fatalf("sign-out in the other process = %d, want 303", r.status)
	}
	s.waitEnd(t, "after sign-out in another process")
	t.Logf("the stream ended %s after sign-out in another process (check every 100ms)", time.Since(start))
	a.refusesSession(t, session)
	if !k.open() {
		t.Error("another session's stream ended too")
	}
}

func TestStaffStreamEndsWhenTheSessionIsRemoved(t *testing.T) {
	t.Parallel()
	a := newStaffApp(t, staffOptions{sessionCheck: 100 * time.Millisecond})
	session := a.login(t, call{})
	s := a.openStream(t, session)
	// An operator empties the sessions table by hand.
	if _, err := a.pool.Exec(context.Background(), `DELETE FROM sessions`); err != nil {
		t.Fatal(err)
	}
	s.waitEnd(t, "after the session was deleted from the store")
	a.refusesSession(t, session)
}

func TestStaffStreamEndsWhenTheSessionExpires(t *testing.T) {
	t.Parallel()
	// Long enough for a sign-in, whose argon2id takes about 0.4 s under the
	// race detector and several times that on a busy machine, and the
	// stream's opening to fit in it.
	const lifetime = 6 * time.Second
	a := newStaffApp(t, staffOptions{sessionLifetime: lifetime, sessionCheck: 100 * time.Millisecond})
	signedIn := time.Now() // the session's lifetime starts during the request
	session := a.login(t, call{})
	s := a.openStream(t, session)
	if time.Since(signedIn) >= lifetime {
		t.Fatalf("the stream took %s to open, longer than the session lasts", time.Since(signedIn))
	}
	s.waitEnd(t, "after the session expired")
	if took := time.Since(signedIn); took < lifetime {
		t.Errorf("the stream ended %s after sign-in, before the session's %s ran out", took, lifetime)
	}
	t.Logf("the stream ended %s after sign-in, with a lifetime of %s", time.Since(signedIn), lifetime)
	a.refusesSession(t, session)
}

// breakableSessions is a session store whose database can be taken away.
type breakableSessions struct {
	scs.Store
	broken atomic.Bool
	// failed gets a signal for each read that failed.
	failed chan struct{}
}

func (s *breakableSessions) Find(token string) ([]byte, bool, error) {
	if s.broken.Load() {
		select {
		case s.failed <- struct{}{}:
		default:
		}
		return nil, false, errSessionsDown
	}
	return s.Store.Find(token)
}

// newTextLog is a logger that writes text to w.
func newTextLog(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// lockedBuffer is a log's output that tests read while the log writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestStaffStreamsOutliveAStoreError(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	store := &breakableSessions{Store: pgxstore.NewWithCleanupInterval(pool, 0), failed: make(chan struct{})}
	logs := &lockedBuffer{}
	a := newStaffApp(t, staffOptions{pool: pool, sessions: store, sessionCheck: 50 * time.Millisecond, log: newTextLog(logs)})
	first, second := a.login(t, call{}), a.login(t, call{})
	streams := []*staffStream{a.openStream(t, first), a.openStream(t, second)}

	store.broken.Store(true)
	// Six failed reads: at least two checks of both sessions.
	for range 6 {
		select {
		case <-store.failed:
		case <-time.After(browserWait):
			t.Fatal("the watch does not read the sessions")
		}
	}
	o := a.create(t, "During the outage")
	for i, s := range streams {
		s.waitFor(t, o.Token)
		if !s.open() {
			t.Errorf("stream %d ended while the store could not be read", i+1)
		}
	}

	// One line for a whole check, which counts the sessions it could not
	// read, not one line per session. (The check under way when the store
	// broke may have read one of them.)
	both := 0
	for line := range strings.Lines(logs.String()) {
		if !strings.Contains(line, "staff sessions unreadable") {
			continue
		}
		if strings.Contains(line, "sessions=2") {
			both++
		}
		if !strings.Contains(line, errSessionsDown.Error()) {
			t.Errorf("log line %q does not say why", line)
		}
		if strings.Contains(line, first.Value) || strings.Contains(line, second.Value) {
			t.Error("the log holds a session token")
		}
	}
	if both == 0 {
		t.Errorf("no log line counts both sessions; the log says:\n%s", logs.String())
	}

	// Once the store is back, a session that ended meanwhile ends its stream.
	store.broken.Store(false)
	if _, err := a.pool.Exec(context.Background(), `DELETE FROM sessions`); err != nil {
		t.Fatal(err)
	}
	for i, s := range streams {
		s.waitEnd(t, "stream "+itoa(int64(i+1))+" after the store came back without its session")
	}
}

func TestStaffSessionProbe(t *testing.T) {
	t.Parallel()
	const lifetime = 2 * time.Hour
	a := newStaffApp(t, staffOptions{sessionLifetime: lifetime, sessionCheck: hour})
	type answer struct {
		SignedIn  *bool  `json:"signed_in"`
		ExpiresAt string `json:"expires_at"`
		LoginURL  string `json:"login_url"`
	}
	probe := func(t *testing.T, session *http.Cookie) (reply, answer) {
		t.Helper()
		r := a.send(t, http.MethodGet, "/staff/session", call{session: session})
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("Content-Type %q, want JSON", ct)
		}
		if cc := r.header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control %q, want no-store", cc)
		}
		if loc := r.header.Get("Location"); loc != "" {
			t.Errorf("the probe redirects to %q; a script cannot follow that", loc)
		}
		var got answer
		if err := json.Unmarshal([]byte(r.body), &got); err != nil {
			t.Fatalf("the answer %q is not JSON: %v", r.body, err)
		}
		if got.SignedIn == nil {
			t.Fatalf("the answer %q does not say signed_in", r.body)
		}
		return r, got
	}
	signedOut := func(t *testing.T, session *http.Cookie) {
		t.Helper()
		r, got := probe(t, session)
		if r.status != http.StatusUnauthorized || *got.SignedIn || got.LoginURL != "/staff/login" || got.ExpiresAt != "" {
			t.Errorf("the probe = %d %s, want 401 {signed_in: false, login_url: /staff/login}", r.status, r.body)
		}
		if r.session != nil {
			t.Error("the probe set a session cookie for a visitor who is not signed in")
		}
	}

	t.Run("without a session it is 401 and says where to sign in", func(t *testing.T) {
		signedOut(t, nil)
	})
	t.Run("a made-up cookie is no session", func(t *testing.T) {
		signedOut(t, &http.Cookie{Name: "staff_session", Value: "made-up-token-aaaaaaaaaaaaaaaaaaaaaaaaaaa"})
	})
	session := a.login(t, call{})
	t.Run("signed in it is 200 and says until when", func(t *testing.T) {
		before := time.Now().Truncate(time.Second)
		r, got := probe(t, session)
		if r.status != http.StatusOK || !*got.SignedIn || got.LoginURL != "" {
			t.Fatalf("the probe = %d %s, want 200 {signed_in: true, expires_at}", r.status, r.body)
		}
		at, err := time.Parse(time.RFC3339, got.ExpiresAt)
		if err != nil {
			t.Fatalf("expires_at %q is not RFC 3339: %v", got.ExpiresAt, err)
		}
		if at.Before(before.Add(lifetime-time.Minute)) || at.After(time.Now().Add(lifetime)) {
			t.Errorf("expires_at %s, want about %s from now", at, lifetime)
		}
	})
	t.Run("after sign-out it is 401 again", func(t *testing.T) {
		a.send(t, http.MethodPost, "/staff/logout", call{form: url.Values{}, session: session})
		signedOut(t, session)
	})
	t.Run("while the sessions cannot be read it is 503, not a sign-out", func(t *testing.T) {
		down := newStaffApp(t, staffOptions{sessions: failingSessions{}, sessionCheck: hour})
		r := down.send(t, http.MethodGet, "/staff/session", call{session: session})
		if r.status != http.StatusServiceUnavailable {
			t.Errorf("the probe = %d, want 503: the board must retry, not send the person to sign in", r.status)
		}
	})
}
