package web

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordertracker/ordertracker/internal/accounts"
	"github.com/ordertracker/ordertracker/internal/clientaddr"
	"github.com/ordertracker/ordertracker/internal/pgtest"
	"github.com/ordertracker/ordertracker/internal/ratelimit"
	"github.com/ordertracker/ordertracker/internal/stream"
	"github.com/ordertracker/ordertracker/orders"
)

// logRecorder keeps every log record, for tests of what is logged.
type logRecorder struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logRecorder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// records returns the records so far, decoded.
func (l *logRecorder) records(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(l.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, rec)
	}
	return out
}

// edgeApp is the whole handler over a store, with its log recorded.
type edgeApp struct {
	fixtures
	server *httptest.Server
	log    *logRecorder
}

func newEdgeApp(t *testing.T, cfg Config, readTimeout time.Duration) *edgeApp {
	t.Helper()
	pool := pgtest.NewPool(t)
	store := orders.NewStore(pool, orders.Options{})
	rec := &logRecorder{}
	log := slog.New(slog.NewJSONHandler(rec, &slog.HandlerOptions{Level: slog.LevelDebug}))
	accts := accounts.NewStore(pool)
	if _, err := accts.Bootstrap(context.Background(), accounts.BootstrapName, testStaffPassword); err != nil {
		t.Fatal(err)
	}
	cfg.Staff = StaffConfig{Accounts: accts}
	server := httptest.NewUnstartedServer(NewHandler(store, stream.NewHub(stream.Options{Logger: quiet}), nil, cfg, log))
	server.Config.ReadTimeout = readTimeout
	server.Start()
	t.Cleanup(func() {
		server.CloseClientConnections()
		server.Close()
	})
	return &edgeApp{fixtures: fixtures{store}, server: server, log: rec}
}

// post sends a form or, with json set, a JSON body, from the loopback
// address from (empty: 127.0.0.1) with header lines as name, value pairs.
func (a *edgeApp) post(t *testing.T, path, from, body string, json bool, header ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, a.server.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if json {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if from == "" {
		from = "127.0.0.1"
	}
	transport := &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}).DialContext}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

const goodOrderJSON = `{"name": "Ada", "items": [{"id": "margherita", "quantity": 1}]}`

var goodOrderForm = url.Values{"name": {"Ada Lovelace"}, "qty-margherita": {"2"}}.Encode()

func TestOrderCreationIsLimitedPerClient(t *testing.T) {
	t.Parallel()
	a := newEdgeApp(t, Config{OrderLimit: ratelimit.Rate{Burst: 3, Every: time.Hour}}, 0)
	const from = "127.0.0.3"

	// A form that needs fixing costs nothing.
	for range 5 {
		if resp, _ := a.post(t, "/api/orders", from, `{"name": "", "items": []}`, true); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("a bad order = %d, want 400", resp.StatusCode)
		}
	}
	// The burst, on the form and the API together.
	for i, json := range []bool{true, false, true} {
		body := goodOrderForm
		if json {
			body = goodOrderJSON
		}
		if resp, _ := a.post(t, map[bool]string{true: "/api/orders", false: "/orders"}[json], from, body, json); resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("order %d of the burst = %d, want it placed", i+1, resp.StatusCode)
		}
	}

	t.Run("the JSON API answers 429 with Retry-After and a JSON error", func(t *testing.T) {
		resp, body := a.post(t, "/api/orders", from, goodOrderJSON, true)
		if resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("status %d, want 429", resp.StatusCode)
		}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 || s > 3600 {
			t.Errorf("Retry-After %q, want whole seconds up to an hour", resp.Header.Get("Retry-After"))
		}
		var got struct{ Error string }
		if err := json.Unmarshal([]byte(body), &got); err != nil || !strings.Contains(got.Error, "wait") {
			t.Errorf("body %q, want a JSON error that says to wait", body)
		}
	})
	t.Run("the form comes back, 429, with what was typed and why", func(t *testing.T) {
		resp, body := a.post(t, "/orders", from, goodOrderForm, false)
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("status %d, Retry-After %q; want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		if !strings.Contains(body, `value="Ada Lovelace"`) || !strings.Contains(body, `value="2"`) || !strings.Contains(body, "Please wait") {
			t.Errorf("the page does not keep the name and quantity or say to wait:\n%s", body)
		}
	})
	t.Run("another client places its order", func(t *testing.T) {
		if resp, _ := a.post(t, "/orders", "127.0.0.2", goodOrderForm, false); resp.StatusCode != http.StatusSeeOther {
			t.Errorf("status %d, want 303", resp.StatusCode)
		}
	})
	if list, _ := a.store.List(t.Context(), orders.ListOptions{}); len(list) != 4 {
		t.Errorf("%d orders placed, want the burst of 3 and the other client's", len(list))
	}
}

func TestLimitsCountTheClientBehindATrustedProxy(t *testing.T) {
	t.Parallel()
	proxies, err := clientaddr.ParseProxies("127.0.0.1/32")
	if err != nil {
		t.Fatal(err)
	}
	a := newEdgeApp(t, Config{TrustedProxies: proxies, OrderLimit: ratelimit.Rate{Burst: 2, Every: time.Hour}}, 0)
	xff := func(addr string) []string { return []string{"X-Forwarded-For", "192.0.2.50, " + addr} }

	t.Run("orders", func(t *testing.T) {
		for range 2 {
			a.post(t, "/api/orders", "127.0.0.1", goodOrderJSON, true, xff("203.0.113.9")...)
		}
		if resp, _ := a.post(t, "/api/orders", "127.0.0.1", goodOrderJSON, true, xff("203.0.113.9")...); resp.StatusCode != http.StatusTooManyRequests {
			t.Errorf("the third order of one client through the proxy = %d, want 429", resp.StatusCode)
		}
		if resp, _ := a.post(t, "/api/orders", "127.0.0.1", goodOrderJSON, true, xff("198.51.100.7")...); resp.StatusCode != http.StatusCreated {
			t.Errorf("another client through the same proxy = %d, want 201", resp.StatusCode)
		}
		// A peer that is no proxy is counted as itself, whatever it says.
		for range 2 {
			a.post(t, "/api/orders", "127.0.0.4", goodOrderJSON, true, xff("198.51.100.99")...)
		}
		if resp, _ := a.post(t, "/api/orders", "127.0.0.4", goodOrderJSON, true, xff("198.51.100.100")...); resp.StatusCode != http.StatusTooManyRequests {
			t.Errorf("an untrusted peer escaped its limit with a new X-Forwarded-For: %d, want 429", resp.StatusCode)
		}
	})
	t.Run("staff sign-in", func(t *testing.T) {
		// At another name than the one that signs in, so that only the
		// address's limit is at stake.
		guess := url.Values{"name": {"someone"}, "password": {"guess"}}.Encode()
		for range loginBurst {
			a.post(t, "/staff/login", "127.0.0.1", guess, false, xff("203.0.113.66")...)
		}
		if resp, _ := a.post(t, "/staff/login", "127.0.0.1", guess, false, xff("203.0.113.66")...); resp.StatusCode != http.StatusTooManyRequests {
			t.Errorf("the guesser through the proxy = %d, want 429", resp.StatusCode)
		}
		right := url.Values{"password": {testStaffPassword}}.Encode()
		if resp, _ := a.post(t, "/staff/login", "127.0.0.1", right, false, xff("198.51.100.8")...); resp.StatusCode != http.StatusSeeOther {
			t.Errorf("staff through the same proxy = %d, want 303: one guesser locked everyone out", resp.StatusCode)
		}
	})
	t.Run("the request log names the client", func(t *testing.T) {
		found := false
		for _, rec := range a.log.records(t) {
			if rec["msg"] == "request" && rec["client"] == "198.51.100.8" {
				found = true
			}
		}
		if !found {
			t.Error("no request line names the client 198.51.100.8")
		}
	})
}

// sendPartial opens a connection, sends a POST to path whose body should
// be n bytes but stops after the first part, and returns the connection.
func (a *edgeApp) sendPartial(t *testing.T, path, contentType, part string, n int, header ...string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", a.server.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: %d\r\n", path, contentType, n)
	for i := 0; i+1 < len(header); i += 2 {
		fmt.Fprintf(c, "%s: %s\r\n", header[i], header[i+1])
	}
	fmt.Fprintf(c, "\r\n%s", part)
	return c
}

// requestLine waits for the log line of the request to route and returns
// it, failing the test if anything was logged as an error.
func (a *edgeApp) requestLine(t *testing.T, route string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var line map[string]any
		for _, rec := range a.log.records(t) {
			if rec["level"] == "ERROR" {
				t.Errorf("logged as an error: %v", rec)
			}
			if rec["msg"] == "request" && rec["route"] == route {
				line = rec
			}
		}
		if line != nil {
			return line
		}
		if time.Now().After(deadline) {
			t.Fatalf("no request line for %s", route)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAClientThatGoesAwayMidBodyIsNoServerError(t *testing.T) {
	t.Parallel()
	staffCookie := func(a *edgeApp) string {
		resp, _ := a.post(t, "/staff/login", "", url.Values{"password": {testStaffPassword}}.Encode(), false)
		for _, c := range resp.Cookies() {
			if c.Name == "staff_session" {
				return c.Name + "=" + c.Value
			}
		}
		t.Fatal("no session cookie")
		return ""
	}
	for _, tt := range []struct {
		name, path, route, contentType, part string
		staff                                bool
	}{
		{"the order form", "/orders", "/orders", "application/x-www-form-urlencoded", "name=Ada&qty-mar", false},
		{"the JSON API", "/api/orders", "/api/orders", "application/json", `{"name": "Ad`, false},
		{"the sign-in form", "/staff/login", "/staff/login", "application/x-www-form-urlencoded", "password=cor", false},
		{"a staff move", "/staff/orders/x/advance", "/staff/orders/{token}/advance", "application/x-www-form-urlencoded", "from=rec", true},
	} {
		t.Run(tt.name+", aborted", func(t *testing.T) {
			t.Parallel()
			a := newEdgeApp(t, Config{}, 0)
			var header []string
			if tt.staff {
				header = []string{"Cookie", staffCookie(a)}
			}
			c := a.sendPartial(t, tt.path, tt.contentType, tt.part, 1000, header...)
			c.Close()
			if got := a.requestLine(t, tt.route); got["status"] != float64(http.StatusBadRequest) || got["level"] != "INFO" {
				t.Errorf("logged %v at %v, want 400 at INFO", got["status"], got["level"])
			}
		})
		t.Run(tt.name+", too slow", func(t *testing.T) {
			t.Parallel()
			a := newEdgeApp(t, Config{}, 300*time.Millisecond)
			var header []string
			if tt.staff {
				header = []string{"Cookie", staffCookie(a)}
			}
			c := a.sendPartial(t, tt.path, tt.contentType, tt.part, 1000, header...)
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("no answer once the read timed out: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("answered %d, want 400", resp.StatusCode)
			}
			if got := a.requestLine(t, tt.route); got["status"] != float64(http.StatusBadRequest) || got["level"] != "INFO" {
				t.Errorf("logged %v at %v, want 400 at INFO", got["status"], got["level"])
			}
		})
	}
}

func TestANameIsStoredWithoutBidirectionalControls(t *testing.T) {
	t.Parallel()
	a := newEdgeApp(t, Config{}, 0)
	resp, body := a.post(t, "/api/orders", "", `{"name": "Ada\u202egnp.exe", "items": [{"id": "margherita", "quantity": 1}]}`, true)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status %d, want 201: %s", resp.StatusCode, body)
	}
	var o struct{ Token, Name string }
	json.Unmarshal([]byte(body), &o)
	stored, err := a.store.Get(t.Context(), o.Token)
	if err != nil {
		t.Fatal(err)
	}
	if o.Name != "Adagnp.exe" || stored.CustomerName != "Adagnp.exe" {
		t.Errorf("answered %+q and stored %+q, want %+q", o.Name, stored.CustomerName, "Adagnp.exe")
	}
	resp, body = a.post(t, "/orders", "", url.Values{"name": {"\u3164\u200b\u2800"}, "qty-margherita": {"1"}}.Encode(), false)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "can be seen") {
		t.Errorf("a name of invisible characters = %d, want 400 saying why", resp.StatusCode)
	}
}
