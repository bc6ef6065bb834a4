package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"maps"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordertracker/ordertracker/internal/pgbouncer"
	"github.com/ordertracker/ordertracker/internal/pgtest"
	"github.com/ordertracker/ordertracker/orders"
)

// env is a getenv over a map.
func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// startRun calls run as main does, on a free port, and returns the base URL
// once the server answers /healthz, and a function that stops run and
// returns its error.
func startRun(t *testing.T, args []string, vars map[string]string) (string, func() error) {
	t.Helper()
	base, stop, _ := startRunOutput(t, args, vars)
	return base, stop
}

// startRunOutput is startRun that also returns what run prints.
func startRunOutput(t *testing.T, args []string, vars map[string]string) (string, func() error, *runOutput) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, outW := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, args, env(vars), nil, outW, io.Discard)
		outW.Close()
	}()
	printed := &runOutput{more: make(chan struct{}, 1)}
	lines := bufio.NewScanner(out)
	base := ""
	for lines.Scan() {
		printed.add(lines.Text())
		if addr, ok := strings.CutPrefix(lines.Text(), "Listening on "); ok {
			base = addr
			break
		}
	}
	go func() {
		for lines.Scan() {
			printed.add(lines.Text())
		}
		io.Copy(io.Discard, out)
	}()
	if base == "" {
		cancel()
		t.Fatalf("run never said where it listens; it returned %v", <-errc)
	}
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-errc:
			return err
		case <-time.After(20 * time.Second):
			t.Fatal("run did not return after its context ended")
			return nil
		}
	}
	t.Cleanup(func() { stop() })
	return base, stop, printed
}

// runOutput is what run printed, line by line.
type runOutput struct {
	mu    sync.Mutex
	lines []string
	more  chan struct{}
}

func (o *runOutput) add(line string) {
	o.mu.Lock()
	o.lines = append(o.lines, line)
	o.mu.Unlock()
	select {
	case o.more <- struct{}{}:
	default:
	}
}

// after waits for a line that starts with prefix and returns the rest of it.
func (o *runOutput) after(t *testing.T, prefix string) string {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		o.mu.Lock()
		for _, line := range o.lines {
			if rest, ok := strings.CutPrefix(line, prefix); ok {
				o.mu.Unlock()
				return rest
			}
		}
		printed := strings.Join(o.lines, "\n")
		o.mu.Unlock()
		select {
		case <-o.more:
		case <-deadline:
			t.Fatalf("run never printed a line starting %q; it printed:\n%s", prefix, printed)
		}
	}
}

func TestRunServesAndShutsDownWithAStreamOpen(t *testing.T) {
	t.Parallel()
	base, stop := startRun(t, nil, map[string]string{
		"DATABASE_URL": pgtest.NewDatabase(t),
		"ADDR":         "127.0.0.1:0",
	})
	get(t, base+"/healthz")
	// Ready once the listener has connected, which may take a moment.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /readyz = %d, want 200 once started", resp.StatusCode)
		}
	}
	metrics := get(t, base+"/metrics")
	for _, name := range []string{
		"ordertracker_streams_open", "ordertracker_stream_events_sent_total", "ordertracker_streams_dropped_slow_total",
		"ordertracker_listener_reconnects_total", "ordertracker_worker_due_orders", "ordertracker_worker_lag_seconds",
		"ordertracker_worker_transitions_total", "ordertracker_http_requests_total", "go_goroutines",
	} {
		if !strings.Contains(metrics, "\n"+name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if !strings.Contains(metrics, `ordertracker_http_requests_total{method="GET",route="/healthz",status="200"} 1`) {
		t.Errorf("/metrics does not count the /healthz request by its route")
	}
	resp, err := http.Post(base+"/api/orders", "application/json",
		strings.NewReader(`{"name":"Ada","items":[{"id":"margherita","quantity":1}]}`))
	if err != nil {
		t.Fatal(err)
	}
	var created struct {
		EventsURL string `json:"events_url"`
	}
	decodeJSON(t, resp, &created)
	stream, err := http.Get(base + created.EventsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	first := make([]byte, 1)
	if _, err := stream.Body.Read(first); err != nil {
		t.Fatalf("read the stream: %v", err)
	}
	if err := stop(); err != nil {
		t.Errorf("run returned %v after a graceful shutdown, want nil", err)
	}
	if _, err := io.ReadAll(stream.Body); err != nil && !strings.Contains(err.Error(), "EOF") {
		t.Errorf("the open stream ended with %v, want a clean end", err)
	}
}

func TestRunMigrateAppliesTheSchemaAndExits(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	err := run(context.Background(), []string{"migrate"}, env(map[string]string{"DATABASE_URL": pgtest.NewEmptyDatabase(t)}), nil, &out, io.Discard)
	if err != nil || !strings.Contains(out.String(), "up to date") {
		t.Errorf("migrate: %v, said %q", err, out.String())
	}
}

func TestRunRefusesBadInput(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		args []string
		vars map[string]string
		want string
	}{
		{"an unknown command", []string{"serve"}, nil, `unknown command "serve"`},
		{"extra arguments", []string{"web", "now"}, nil, "unexpected arguments"},
		{"malformed stage durations", nil, map[string]string{"STAGE_DURATIONS": "received=soon"}, `STAGE_DURATIONS="received=soon"`},
		{"an unknown stage", nil, map[string]string{"STAGE_DURATIONS": "baking=1s"}, "unknown stage"},
		{"a bad heartbeat", nil, map[string]string{"HEARTBEAT_INTERVAL": "often"}, "HEARTBEAT_INTERVAL"},
		{"a bad replay window", nil, map[string]string{"REPLAY_WINDOW": "-1"}, "REPLAY_WINDOW"},
		{"a bad log format", nil, map[string]string{"LOG_FORMAT": "xml"}, "LOG_FORMAT"},
		{"a probe timeout as long as its interval", nil, map[string]string{"LISTENER_PROBE_INTERVAL": "5s", "LISTENER_PROBE_TIMEOUT": "5s"}, "LISTENER_PROBE_TIMEOUT"},
		{"a bad probe interval", nil, map[string]string{"LISTENER_PROBE_INTERVAL": "-1s"}, "LISTENER_PROBE_INTERVAL"},
		{"a metrics address without a port", nil, map[string]string{"METRICS_ADDR": "localhost"}, "METRICS_ADDR"},
		{"a direct URL without a pooled one", nil, map[string]string{"DATABASE_DIRECT_URL": "postgres://localhost/db"}, "DATABASE_DIRECT_URL"},
		{"a direct URL that cannot be parsed", nil, map[string]string{"DATABASE_URL": "postgres://localhost/db", "DATABASE_DIRECT_URL": "postgres://u:secret@[::1/db"}, "DATABASE_DIRECT_URL"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := run(context.Background(), tt.args, env(tt.vars), nil, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func decodeJSON(t *testing.T, resp *http.Response, v any) {
	t.Helper()
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("decode %s: %v", resp.Request.URL.Path, err)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(body)
}

func TestHealthcheckAsksTheServerOnADDR(t *testing.T) {
	t.Parallel()
	base, _ := startRun(t, []string{"web"}, map[string]string{"DATABASE_URL": pgtest.NewDatabase(t), "ADDR": "127.0.0.1:0"})
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(base, "http://"))
	check := func() error {
		return run(context.Background(), []string{"healthcheck"}, env(map[string]string{"ADDR": ":" + port}), nil, io.Discard, io.Discard)
	}
	deadline := time.Now().Add(10 * time.Second)
	for err := check(); err != nil; err = check() {
		if time.Now().After(deadline) {
			t.Fatalf("healthcheck of a running server: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, closed, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	if err := run(context.Background(), []string{"healthcheck"}, env(map[string]string{"ADDR": ":" + closed}), nil, io.Discard, io.Discard); err == nil {
		t.Error("healthcheck of a port nobody listens on succeeded")
	}
}

// waitForReadyz polls /readyz until it answers status with a body that
// contains want, and returns the body.
func waitForReadyz(t *testing.T, base string, status int, want string) string {
	t.Helper()
	return waitForReadyzWith(t, http.DefaultClient, base, status, want)
}

// waitForReadyzWith is waitForReadyz asking through client.
func waitForReadyzWith(t *testing.T, client *http.Client, base string, status int, want string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get(base + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == status && strings.Contains(string(body), want) {
			return string(body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /readyz = %d %s, want %d with %q", resp.StatusCode, body, status, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// followNewOrder creates an order through the API and reads its stream
// from the start (?since=0) until the order is delivered, checking that
// every stage arrives once, in order.
func followNewOrder(t *testing.T, base string) {
	t.Helper()
	resp, err := http.Post(base+"/api/orders", "application/json",
		strings.NewReader(`{"name":"Ada","items":[{"id":"margherita","quantity":1}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusCreated {
		resp.Body.Close()
		t.Fatalf("POST /api/orders = %d, want 201", resp.StatusCode)
	}
	var created struct {
		Token     string `json:"token"`
		EventsURL string `json:"events_url"`
	}
	decodeJSON(t, resp, &created)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+created.EventsURL+"?since=0", nil)
	if err != nil {
		t.Fatal(err)
	}
	// A connection of its own: the server keeps a stream's connection to
	// itself and closes it when the stream ends, and a later request must
	// not be sent down it.
	streams := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	stream, err := streams.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	r := bufio.NewReader(stream.Body)
	var events []sseEvent
	for len(events) == 0 || events[len(events)-1].data.Status != orders.Delivered {
		ev, err := readEvent(r)
		if err != nil {
			t.Fatalf("the order's stream, after %d events: %v", len(events), err)
		}
		events = append(events, ev)
	}
	checkJourney(t, "the order's stream", created.Token, events, 1)
}

// startWorker runs the worker role until the test ends.
func startWorker(t *testing.T, vars map[string]string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, []string{"worker"}, env(vars), nil, io.Discard, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("the worker returned %v, want nil", err)
		}
	})
}

// TestRunBehindATransactionPooler runs every role with DATABASE_URL
// pointing at PgBouncer in transaction mode and DATABASE_DIRECT_URL at the
// database itself, as the README's Deploying section says: the schema is
// migrated, an order made through the API is moved on by a worker, its
// events reach the stream, staff sessions (kept in the database) work, and
// the web process is ready.
func TestRunBehindATransactionPooler(t *testing.T) {
	t.Parallel()
	direct := pgtest.NewEmptyDatabase(t)
	vars := map[string]string{
		"DATABASE_URL":        pgbouncer.Start(t, direct),
		"DATABASE_DIRECT_URL": direct,
		"STAGE_DURATIONS":     fastStages,
	}
	var out strings.Builder
	if err := run(t.Context(), []string{"migrate"}, env(vars), nil, &out, io.Discard); err != nil {
		t.Fatalf("migrate through PgBouncer: %v", err)
	}
	startWorker(t, vars)
	web := maps.Clone(vars)
	web["ADDR"], web["STAFF_PASSWORD"] = "127.0.0.1:0", "correct horse"
	base, _ := startRun(t, []string{"web"}, web)
	waitForReadyz(t, base, http.StatusOK, `"listener":"ok"`)
	followNewOrder(t, base)

	// Staff sessions live in the database, read and written through the
	// pooled URL by the session store.
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	staff := &http.Client{Jar: jar}
	resp, err := staff.PostForm(base+"/staff/login", url.Values{"password": {"correct horse"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/staff" {
		t.Errorf("staff sign-in ended at %s with %d, want the board with 200", resp.Request.URL.Path, resp.StatusCode)
	}
}

// TestRunWithOnlyAPooledURLSaysItCannotHearAndStillDelivers gives the web
// process nothing but a pooled DATABASE_URL: LISTEN through the pooler
// hears nothing. The process must say so on /readyz (naming the fix) and in
// its metrics, and events must still reach the streams, by reading the log.
func TestRunWithOnlyAPooledURLSaysItCannotHearAndStillDelivers(t *testing.T) {
	t.Parallel()
	base, _ := startRun(t, nil, map[string]string{
		"DATABASE_URL":           pgbouncer.Start(t, pgtest.NewDatabase(t)),
		"ADDR":                   "127.0.0.1:0",
		"STAGE_DURATIONS":        fastStages,
		"LISTENER_PROBE_TIMEOUT": "500ms",
	})
	body := waitForReadyz(t, base, http.StatusServiceUnavailable, "DATABASE_DIRECT_URL")
	var checks map[string]string
	if err := json.Unmarshal([]byte(body), &checks); err != nil {
		t.Fatalf("/readyz body %s: %v", body, err)
	}
	if !strings.Contains(checks["listener"], "cannot hear") || checks["database"] != "ok" {
		t.Errorf("/readyz = %s, want the database ok and the listener unable to hear", body)
	}
	followNewOrder(t, base)

	metrics := get(t, base+"/metrics")
	for _, want := range []string{
		"\nordertracker_listener_hears 0\n",
		"\nordertracker_listener_connected 1\n",
		"\nordertracker_listener_seconds_since_notification ",
		"\nordertracker_listener_safety_net_events_total ",
		"\nordertracker_listener_lag_events ",
		"\nordertracker_notification_queue_usage_ratio ",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", strings.TrimSpace(want))
		}
	}
}

func TestRunServesMetricsOnlyOnMETRICS_ADDR(t *testing.T) {
	t.Parallel()
	base, _, out := startRunOutput(t, []string{"web"}, map[string]string{
		"DATABASE_URL": pgtest.NewDatabase(t),
		"ADDR":         "127.0.0.1:0",
		"METRICS_ADDR": "127.0.0.1:0",
	})
	metricsURL := out.after(t, "Metrics on ")
	get(t, base+"/healthz") // the rest of the main listener is as it was, and counted
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /metrics on the main listener = %d, want 404", resp.StatusCode)
	}
	metrics := get(t, metricsURL)
	for _, name := range []string{"ordertracker_listener_hears", "ordertracker_streams_open", "ordertracker_http_requests_total"} {
		if !strings.Contains(metrics, "\n"+name) {
			t.Errorf("METRICS_ADDR's /metrics lacks %s", name)
		}
	}
}

func TestRunKeepsDatabasePasswordsOutOfConfigurationErrors(t *testing.T) {
	for _, name := range []string{"DATABASE_URL", "DATABASE_DIRECT_URL"} {
		vars := map[string]string{"DATABASE_URL": "postgres://localhost/db", name: "postgres://u:hunter2@[::1/db"}
		err := run(context.Background(), nil, env(vars), nil, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), name) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("a %s that cannot be parsed: run error = %v, want one naming it without its password", name, err)
		}
	}
}

func TestEveryVariableIsInTheREADMEsTable(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range envVars {
		if !strings.Contains(string(readme), "\n| `"+name+"` |") {
			t.Errorf("README.md's configuration table has no row for %s", name)
		}
	}
}

// TestRunOverTLSServesManyStreamsOnOneHTTP2Connection runs the web server
// with TLS_CERT_FILE and TLS_KEY_FILE, as the README's Deploying section
// says, and follows it as a browser does over HTTPS: HTTP/2, with every
// request and every event stream of the site on one connection, so that
// the six-connection limit of HTTP/1.1 is no limit. The staff session
// cookie it hands out there is Secure.
func TestRunOverTLSServesManyStreamsOnOneHTTP2Connection(t *testing.T) {
	t.Parallel()
	certFile, keyFile, roots := writeCertificate(t, "127.0.0.1")
	base, stop := startRun(t, []string{"web"}, map[string]string{
		"DATABASE_URL":   pgtest.NewDatabase(t),
		"ADDR":           "127.0.0.1:0",
		"TLS_CERT_FILE":  certFile,
		"TLS_KEY_FILE":   keyFile,
		"STAFF_PASSWORD": "correct horse",
	})
	if !strings.HasPrefix(base, "https://") {
		t.Fatalf("run says it listens on %s, want an https:// address", base)
	}

	var dials atomic.Int32
	transport := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
	t.Cleanup(transport.CloseIdleConnections)
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{
		Transport:     transport,
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	do := func(req *http.Request, wantStatus int) *http.Response {
		t.Helper()
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
		}
		if resp.ProtoMajor != 2 || resp.StatusCode != wantStatus {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			t.Fatalf("%s %s: %s %s %.200q; want HTTP/2 with %d", req.Method, req.URL.Path, resp.Proto, resp.Status, body, wantStatus)
		}
		return resp
	}
	post := func(path, contentType, body string, wantStatus int) *http.Response {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Accept", "application/json")
		return do(req, wantStatus)
	}
	waitForReadyzWith(t, client, base, http.StatusOK, `"listener":"ok"`)

	resp := post("/staff/login", "application/x-www-form-urlencoded", url.Values{"password": {"correct horse"}}.Encode(), http.StatusSeeOther)
	resp.Body.Close()
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "staff_session" {
			session = c
		}
	}
	if session == nil || !session.Secure {
		t.Errorf("staff sign-in over TLS set the session cookie %v, want it Secure", session)
	}

	const orderCount = 4
	var tokens []string
	for range orderCount {
		var created struct {
			Token string `json:"token"`
		}
		decodeJSON(t, post("/api/orders", "application/json", `{"name":"Ada","items":[{"id":"margherita","quantity":1}]}`, http.StatusCreated), &created)
		tokens = append(tokens, created.Token)
	}

	// Every stream starts with the current state; what follows is live.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	open := func(path string) *bufio.Reader {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp := do(req, http.StatusOK)
		t.Cleanup(func() { resp.Body.Close() })
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
			t.Fatalf("GET %s: Content-Type %q, want text/event-stream", path, ct)
		}
		return bufio.NewReader(resp.Body)
	}
	next := func(what string, stream *bufio.Reader, want orders.Status) sseEvent {
		t.Helper()
		ev, err := readEvent(stream)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ev.data.Status != want {
			t.Fatalf("%s: event %+v, want one saying %s", what, ev.data, want)
		}
		return ev
	}
	staff := open("/staff/events")
	for range orderCount {
		next("the staff stream's first events", staff, orders.Received)
	}
	streams := make([]*bufio.Reader, orderCount)
	for i, token := range tokens {
		streams[i] = open("/orders/" + token + "/events")
		next("order "+short(token)+"'s first event", streams[i], orders.Received)
	}
	for i, token := range tokens {
		resp := post("/staff/orders/"+token+"/advance", "application/x-www-form-urlencoded", "from=received", http.StatusOK)
		resp.Body.Close()
		ev := next("order "+short(token)+"'s stream after staff moved it on", streams[i], orders.Cooking)
		if ev.data.Token != token || ev.data.Seq != 2 {
			t.Errorf("order %s's stream: event %+v, want that order's seq 2", short(token), ev.data)
		}
		if ev := next("the staff stream after staff moved an order on", staff, orders.Cooking); ev.data.Token != token {
			t.Errorf("the staff stream: event for order %s, want %s", short(ev.data.Token), short(token))
		}
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("the client dialled %d connections for %d requests and %d streams at once, want 1 (HTTP/2 multiplexes them)",
			n, 2+orderCount*2, orderCount+1)
	}
	cancel()
	if err := stop(); err != nil {
		t.Errorf("run returned %v after a graceful shutdown, want nil", err)
	}
}

// writeCertificate makes a self-signed certificate for host, an IP
// address, writes it and its key as PEM files, and returns their paths and
// a pool that trusts the certificate.
func writeCertificate(t *testing.T, host string) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: host},
		IPAddresses:           []net.IP{net.ParseIP(host)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for _, f := range []struct {
		path, kind string
		der        []byte
	}{{certFile, "CERTIFICATE", der}, {keyFile, "PRIVATE KEY", keyDER}} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.kind, Bytes: f.der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return certFile, keyFile, roots
}
