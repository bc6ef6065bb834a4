package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordertracker/ordertracker/internal/nginxtest"
	"github.com/ordertracker/ordertracker/internal/pgbouncer"
	"github.com/ordertracker/ordertracker/internal/pgtest"
	"github.com/ordertracker/ordertracker/internal/stream"
	"github.com/ordertracker/ordertracker/orders"
)

// The proxy of the production topology, as deploy/ ships it: the test runs
// deploy/nginx-proxy.conf itself, inside an upstream of loopback web
// processes with the parameters that deploy/nginx.conf gives the compose
// service's replicas (compose_test.go checks that they agree).
const (
	proxyInclude      = "deploy/nginx-proxy.conf"
	proxyUpstream     = "ordertracker"
	proxyServerParams = "max_fails=0"
	proxyKeepalive    = 16
)

// startProxy starts nginx with the repository's proxy settings in front of
// the web processes at addrs.
func startProxy(t *testing.T, addrs []string) *nginxtest.Proxy {
	t.Helper()
	return nginxtest.Start(t, nginxtest.Options{
		Upstream:     proxyUpstream,
		Servers:      addrs,
		ServerParams: proxyServerParams,
		Keepalive:    proxyKeepalive,
		Include:      proxyInclude,
	})
}

// topologyStaffPassword is the staff password of the topology's web
// processes.
const topologyStaffPassword = "correct horse battery"

// TestTopology runs the production topology of the README's Deploying
// section with the real programs: web processes behind Debian's nginx with
// deploy/nginx-proxy.conf, reaching PostgreSQL through PgBouncer in
// transaction mode (DATABASE_URL) and directly (DATABASE_DIRECT_URL), and
// workers beside them. Everything is observed from outside, through nginx,
// as browsers would.
func TestTopology(t *testing.T) {
	t.Parallel()
	bin := buildProgram(t)

	t.Run("every stream through nginx gets every event once, in order, while each web process is restarted and one is killed", func(t *testing.T) {
		t.Parallel()
		testRollingRestart(t, bin)
	})

	t.Run("two clients behind nginx have sign-in limits of their own", func(t *testing.T) {
		t.Parallel()
		w := &webProcess{name: "web", bin: bin, addr: restartablePorts(t, 1)[0], env: []string{
			"DATABASE_URL=" + pgtest.NewDatabase(t),
			"STAFF_PASSWORD=" + topologyStaffPassword,
			"TRUSTED_PROXIES=127.0.0.1/32",
		}}
		w.start(t)
		w.waitReady(t)
		proxy := startProxy(t, []string{w.addr})

		// nginx sees each client's own address and says so in
		// X-Forwarded-For; from any other peer the web process would
		// ignore the header, and both would be nginx, 127.0.0.1.
		// The guesses are at another name than the colleague's, so that
		// only the addresses' limits are at stake (a name's own limit is
		// web/accounts_test.go's).
		guesser, colleague := browserFrom(t, "127.0.0.2"), browserFrom(t, "127.0.0.3")
		for attempt := 1; ; attempt++ {
			resp := signIn(t, guesser, proxy.URL, "someone", "not the password")
			if resp.StatusCode == http.StatusTooManyRequests {
				break
			}
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("wrong password, attempt %d: %s, want 401 and, after a few, 429", attempt, resp.Status)
			}
			if attempt == 20 {
				t.Fatal("20 wrong passwords from one client, and still no 429: sign-in attempts are not limited behind nginx")
			}
		}
		if resp := signIn(t, guesser, proxy.URL, "", topologyStaffPassword); resp.StatusCode != http.StatusTooManyRequests {
			t.Errorf("the right password from the client that used up its attempts: %s, want 429", resp.Status)
		}
		resp := signIn(t, colleague, proxy.URL, "", topologyStaffPassword)
		if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/staff" {
			t.Errorf("the right password from another client behind the same nginx: %s at %s, want 200 at /staff (the board)",
				resp.Status, resp.Request.URL.Path)
		}
		w.stop(t, syscall.SIGTERM)
	})
}

// testRollingRestart runs three web processes behind nginx and two workers,
// and, while orders move, restarts each web process in turn with SIGTERM,
// as a rolling deploy does, then kills one with SIGKILL and starts it
// again. Meanwhile every order placed has a stream that follows it through
// nginx as EventSource does, and two staff streams follow every order.
func testRollingRestart(t *testing.T, bin string) {
	began := time.Now()
	direct := pgtest.NewDatabase(t)
	env := []string{
		"DATABASE_URL=" + pgbouncer.StartWith(t, direct, pgbouncer.Options{PoolSize: 4}),
		"DATABASE_DIRECT_URL=" + direct,
		"STAGE_DURATIONS=received=400ms,cooking=400ms,out_for_delivery=400ms",
		"STAFF_PASSWORD=" + topologyStaffPassword,
		"TRUSTED_PROXIES=127.0.0.1/32",
		// The test places an order every few hundred milliseconds, all
		// from one address.
		"ORDER_LIMIT=off",
		"SSE_RETRY=500ms",
		"DRAIN_TIMEOUT=1s",
		"SHUTDOWN_TIMEOUT=5s",
	}
	var webs []*webProcess
	var addrs []string
	for i, addr := range restartablePorts(t, 3) {
		w := &webProcess{name: fmt.Sprintf("web-%d", i+1), bin: bin, addr: addr, env: env}
		w.start(t)
		webs, addrs = append(webs, w), append(addrs, addr)
	}
	var workers []*process
	for i := range 2 {
		workers = append(workers, startProcess(t, bin, fmt.Sprintf("worker-%d", i+1), env, "worker"))
	}
	for _, w := range webs {
		w.waitReady(t)
	}
	proxy := startProxy(t, addrs)
	db, err := pgx.Connect(t.Context(), direct)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(context.Background()) })
	t.Logf("three web processes, two workers, PgBouncer and nginx ready after %v", time.Since(began).Round(time.Millisecond))

	// Everything that follows a stream stops by this deadline at the
	// latest, so that a stream that waits for ever fails the test.
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	streams := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 100}}
	staffClient := browserFrom(t, "127.0.0.1")
	if resp := signIn(t, staffClient, proxy.URL, "", topologyStaffPassword); resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/staff" {
		t.Fatalf("staff sign-in through nginx: %s at %s, want 200 at /staff", resp.Status, resp.Request.URL.Path)
	}

	var wg sync.WaitGroup
	staffCtx, stopStaff := context.WithCancel(ctx)
	defer stopStaff()
	followStaff := func(name string, since int64) *staffFollower {
		f := &staffFollower{name: name, since: since, progress: make(chan struct{}, 1), done: make(chan struct{})}
		f.es = eventSource{client: staffClient, url: fmt.Sprintf("%s/staff/events?since=%d", proxy.URL, since)}
		wg.Go(func() {
			defer close(f.done)
			f.err = f.es.follow(staffCtx, f.event)
		})
		return f
	}
	staff := []*staffFollower{followStaff("the staff stream from the start", 0)}

	// Orders, placed through nginx every 150 ms until the restarts are
	// over, each followed from its first event to its 204.
	var followersMu sync.Mutex
	var followers []*orderFollower
	stopPlacing := make(chan struct{})
	placing := make(chan error, 1)
	go func() {
		tick := time.NewTicker(150 * time.Millisecond)
		defer tick.Stop()
		for {
			token, err := placeOrder(ctx, proxy.URL)
			if err != nil {
				placing <- err
				return
			}
			f := &orderFollower{token: token, next: 1}
			f.es = eventSource{client: streams, url: proxy.URL + "/orders/" + token + "/events?since=0"}
			followersMu.Lock()
			followers = append(followers, f)
			followersMu.Unlock()
			wg.Go(func() { f.err = f.es.follow(ctx, f.event) })
			select {
			case <-stopPlacing:
				placing <- nil
				return
			case <-tick.C:
			}
		}
	}()

	// Restart only once the staff stream is flowing through nginx.
	if !staff[0].waitFor(ctx, 3) {
		<-staff[0].done
		t.Fatalf("the staff stream saw %d events before the restarts, want 3: %v", staff[0].seen(), staff[0].err)
	}
	restarts := time.Now()
	for i, w := range webs {
		w.restart(t, syscall.SIGTERM)
		if i == 0 {
			// A board loaded now, which resumes from the log's head.
			staff = append(staff, followStaff("the staff stream from mid-way", head(t, db)))
		}
	}
	webs[1].restart(t, syscall.SIGKILL)
	t.Logf("three rolling restarts and one kill took %v", time.Since(restarts).Round(time.Millisecond))
	close(stopPlacing)
	if err := <-placing; err != nil {
		t.Fatalf("place an order through nginx: %v", err)
	}

	// Every order is delivered; then each staff stream must reach the
	// head of the log, and its events are compared with the log.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var moving int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM orders WHERE status NOT IN ('delivered', 'cancelled')`).Scan(&moving); err != nil {
			t.Fatal(err)
		}
		if moving == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d orders are still on their way after 30s", moving)
		}
	}
	end := head(t, db)
	for _, f := range staff {
		if !f.waitFor(ctx, end) {
			t.Errorf("%s reached position %d, want the head of the log, %d", f.name, f.last(), end)
		}
	}
	stopStaff()
	wg.Wait()

	followersMu.Lock()
	defer followersMu.Unlock()
	reconnects := 0
	for _, f := range followers {
		reconnects += f.es.connects - 1
		switch {
		case f.err != nil:
			t.Errorf("order %s's stream: %v", short(f.token), f.err)
		case f.next != len(orders.Stages)+1:
			t.Errorf("order %s's stream ended (204) after seq %d, want %d (delivered)", short(f.token), f.next-1, len(orders.Stages))
		}
	}
	for _, f := range staff {
		reconnects += f.es.connects - 1
		if f.err != nil && !errors.Is(f.err, context.Canceled) {
			t.Errorf("%s: %v", f.name, f.err)
		}
		f.compareWithLog(t, db, end)
	}
	// Every web process was restarted, so whichever served the first
	// staff stream ended it: unless it reconnected, nothing was tested.
	if staff[0].es.connects < 2 {
		t.Errorf("%s connected %d time, want more: the restarts never ended it", staff[0].name, staff[0].es.connects)
	}
	t.Logf("%d orders followed to the end and %d staff streams, with %d reconnects in all, through nginx in %v",
		len(followers), len(staff), reconnects, time.Since(began).Round(time.Millisecond))

	running := slices.Clone(workers)
	for _, w := range webs {
		running = append(running, w.p)
	}
	terminate(t, running...)
}

// terminate sends SIGTERM to every process at once, and fails the test
// unless each then exits with code 0 (a program built with -race exits
// with 66 when it saw a data race).
func terminate(t *testing.T, ps ...*process) {
	t.Helper()
	for _, p := range ps {
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Errorf("%s: %v", p.name, err)
		}
	}
	for _, p := range ps {
		if code, err := p.wait(20 * time.Second); err != nil || code != 0 {
			t.Errorf("%s after SIGTERM: exit code %d, %v; want 0", p.name, code, err)
		}
	}
}

// head is the position of the newest event in the log, 0 when it is empty.
// Positions follow commit order, so every event below it has committed.
func head(t *testing.T, db *pgx.Conn) int64 {
	t.Helper()
	var p int64
	if err := db.QueryRow(t.Context(), `SELECT coalesce(max(position), 0) FROM order_events`).Scan(&p); err != nil {
		t.Fatal(err)
	}
	return p
}

// placeOrder places an order through the JSON API. A request that a web
// process going away took and never answered comes back from nginx as 502
// (nginx does not send a POST to another process once one has it) or as a
// broken connection; it is sent again, as a person would press the button
// again. That order may then exist twice: the first is not followed.
func placeOrder(ctx context.Context, base string) (string, error) {
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/orders",
			strings.NewReader(`{"name":"Ada","items":[{"id":"margherita","quantity":1}]}`))
		if err != nil {
			return "", err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			var o apiOrder
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusCreated && json.Unmarshal(body, &o) == nil && o.Token != "":
				return o.Token, nil
			case resp.StatusCode != http.StatusBadGateway:
				return "", fmt.Errorf("POST /api/orders: %s %q, want 201 with a token", resp.Status, body)
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("POST /api/orders: %w (last attempt: %v)", ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// browserFrom returns a client with a cookie jar whose connections come from
// the loopback address ip, as if from a machine of its own.
func browserFrom(t *testing.T, ip string) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	transport := &http.Transport{DialContext: dialer.DialContext}
	t.Cleanup(transport.CloseIdleConnections)
	return &http.Client{Transport: transport, Jar: jar, Timeout: 10 * time.Second}
}

// signIn posts the staff sign-in form as a browser without Sec-Fetch-Site
// does, with the page's Origin (which the web process compares with the
// Host that nginx passes on), and returns the answer at the end of any
// redirect, its body read.
func signIn(t *testing.T, client *http.Client, base, name, password string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/staff/login", strings.NewReader(url.Values{"name": {name}, "password": {password}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("staff sign-in: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// A webProcess is a `web` process on a fixed address, where the test
// restarts it as an orchestrator would.
type webProcess struct {
	name string
	bin  string
	addr string // host:port
	env  []string
	runs int
	p    *process
}

// start starts the process, without waiting for it to be ready.
func (w *webProcess) start(t *testing.T) {
	t.Helper()
	w.runs++
	name := w.name
	if w.runs > 1 {
		name = fmt.Sprintf("%s, run %d", w.name, w.runs)
	}
	w.p = startProcess(t, w.bin, name, append(slices.Clip(w.env), "ADDR="+w.addr), "web")
}

// waitReady waits for /readyz to answer 200, as a load balancer would
// before it sends the process any traffic.
func (w *webProcess) waitReady(t *testing.T) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := ""
		resp, err := client.Get("http://" + w.addr + "/readyz")
		if err != nil {
			got = err.Error()
		} else {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			got = resp.Status
		}
		select {
		case <-w.p.done:
			t.Fatalf("%s ended before it was ready: %v", w.p.name, w.p.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is not ready after 30s: /readyz answers %s", w.p.name, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends the process with sig and waits for it to exit: with code 0
// after SIGTERM, once it has drained; killed after SIGKILL.
func (w *webProcess) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := w.p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%s: %v", w.p.name, err)
	}
	want := 0
	if sig == syscall.SIGKILL {
		want = -1
	}
	if code, err := w.p.wait(20 * time.Second); err != nil || code != want {
		t.Fatalf("%s after %v: exit code %d, %v; want %d", w.p.name, sig, code, err, want)
	}
}

// restart stops the process with sig and starts it again on its address,
// ready.
func (w *webProcess) restart(t *testing.T, sig syscall.Signal) {
	t.Helper()
	w.stop(t, sig)
	w.start(t)
	w.waitReady(t)
}

// restartablePorts returns n loopback addresses whose ports were free a
// moment ago and lie below the kernel's range of ephemeral ports: a
// process restarted on one must find it free again, and the kernel hands
// out ports of that range to every connection made meanwhile.
func restartablePorts(t *testing.T, n int) []string {
	t.Helper()
	low := 32768 // Linux's default
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil && v > 2048 {
				low = v
			}
		}
	}
	var addrs []string
	for attempt := 0; len(addrs) < n; attempt++ {
		if attempt == 1000 {
			t.Fatalf("found %d free ports below %d in 1000 attempts, want %d", len(addrs), low, n)
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(low-1-rand.IntN(min(low-2048, 10000))))
		ln, err := net.Listen("tcp", addr)
		if err != nil || slices.Contains(addrs, addr) {
			continue
		}
		ln.Close()
		addrs = append(addrs, addr)
	}
	return addrs
}

// An orderFollower follows one order's stream and checks that it gets
// every event of the order once, in order: seq 1, 2, 3, 4.
type orderFollower struct {
	token string
	es    eventSource
	next  int // the seq it waits for
	err   error
}

func (f *orderFollower) event(ev sseEvent) error {
	switch {
	case ev.Event != "order_update" || ev.data.Token != f.token:
		return fmt.Errorf("event %q for order %s, want order_update for this order", ev.Event, short(ev.data.Token))
	case ev.data.Seq != f.next || ev.ID != strconv.Itoa(f.next):
		return fmt.Errorf("event with id %s and seq %d, want %d: a gap or a repeat", ev.ID, ev.data.Seq, f.next)
	case f.next > len(orders.Stages) || ev.data.Status != orders.Stages[f.next-1]:
		return fmt.Errorf("event %d says %s, want the stages %v in order", f.next, ev.data.Status, orders.Stages)
	case ev.data.Final != (ev.data.Status == orders.Delivered):
		return fmt.Errorf("event %d (%s) has final %v", f.next, ev.data.Status, ev.data.Final)
	}
	f.next++
	return nil
}

// A staffFollower follows the stream of all orders from a position and
// keeps what it got.
type staffFollower struct {
	name     string
	since    int64
	es       eventSource
	progress chan struct{} // receives after every event, if nobody has yet
	done     chan struct{} // closed when it has stopped following, and err is set
	err      error

	mu     sync.Mutex
	events []staffEvent
}

// A staffEvent is what the staff stream said of one event in the log.
type staffEvent struct {
	Position int64
	Token    string
	Seq      int
	Status   orders.Status
}

func (f *staffFollower) event(ev sseEvent) error {
	pos, err := strconv.ParseInt(ev.ID, 10, 64)
	if err != nil || ev.Event != "order_update" {
		return fmt.Errorf("event %q with id %q, want order_update with a position", ev.Event, ev.ID)
	}
	if last := f.last(); pos <= last {
		return fmt.Errorf("position %d after %d: positions must only grow", pos, last)
	}
	f.mu.Lock()
	f.events = append(f.events, staffEvent{pos, ev.data.Token, ev.data.Seq, ev.data.Status})
	f.mu.Unlock()
	select {
	case f.progress <- struct{}{}:
	default:
	}
	return nil
}

// last is the position of the last event received, or where it started.
func (f *staffFollower) last() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.events) == 0 {
		return f.since
	}
	return f.events[len(f.events)-1].Position
}

func (f *staffFollower) seen() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.events)
}

// waitFor waits until the stream has reached position p, and reports
// whether it did before it stopped or ctx ended.
func (f *staffFollower) waitFor(ctx context.Context, p int64) bool {
	for f.last() < p {
		select {
		case <-f.progress:
		case <-f.done:
			return f.last() >= p
		case <-ctx.Done():
			return f.last() >= p
		}
	}
	return true
}

// compareWithLog fails the test unless the stream got exactly the events
// that the log holds after its starting point up to end, as the log has
// them.
func (f *staffFollower) compareWithLog(t *testing.T, db *pgx.Conn, end int64) {
	t.Helper()
	rows, err := db.Query(t.Context(), `
		SELECT e.position, o.token, e.seq, e.status
		FROM order_events e JOIN orders o ON o.id = e.order_id
		WHERE e.position > $1 AND e.position <= $2
		ORDER BY e.position`, f.since, end)
	if err != nil {
		t.Fatal(err)
	}
	want, err := pgx.CollectRows(rows, pgx.RowToStructByPos[staffEvent])
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	got := slices.Clone(f.events)
	f.mu.Unlock()
	for i := range max(len(got), len(want)) {
		var g, w staffEvent
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Errorf("%s: event %d of %d is %+v, want %+v as the log has it (the log holds %d after position %d)",
				f.name, i+1, len(got), g, w, len(want), f.since)
			return
		}
	}
	if len(got) == 0 {
		t.Errorf("%s got no events", f.name)
	}
}

// An eventSource follows an event stream as a browser's EventSource does:
// whenever the stream ends or breaks, it waits the last retry delay the
// server sent and asks again, with the id of the last event in
// Last-Event-ID. A 204 ends it for good. Any other answer than 200 with
// text/event-stream makes a browser give up for good, so it is an error.
type eventSource struct {
	client   *http.Client
	url      string
	lastID   string
	retry    time.Duration
	connects int
}

// follow follows the stream, calling event with every event, until a 204,
// an error from event, an answer that would stop EventSource, or the end
// of ctx.
func (es *eventSource) follow(ctx context.Context, event func(sseEvent) error) error {
	if es.retry == 0 {
		es.retry = 3 * time.Second // what browsers wait until told otherwise
	}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, es.url, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("Cache-Control", "no-cache")
		if es.lastID != "" {
			req.Header.Set("Last-Event-ID", es.lastID)
		}
		es.connects++
		resp, err := es.client.Do(req)
		if err == nil {
			ct := resp.Header.Get("Content-Type")
			switch {
			case resp.StatusCode == http.StatusNoContent:
				resp.Body.Close()
				return nil
			case resp.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "text/event-stream"):
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 500))
				resp.Body.Close()
				return fmt.Errorf("connection %d (Last-Event-ID %q): %s, %s %q; EventSource gives up for good on that",
					es.connects, es.lastID, resp.Status, ct, body)
			}
			err = es.read(resp.Body, event)
			resp.Body.Close()
			if errors.Is(err, errEvent) {
				return fmt.Errorf("connection %d (Last-Event-ID %q): %w", es.connects, es.lastID, err)
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(es.retry):
		}
	}
}

// errEvent marks an error returned by the caller's event function.
var errEvent = errors.New("event refused")

// read reads one response's events as the specification says a browser
// does: the retry field takes effect at once, an event is dispatched at a
// blank line and sets the last event id, and an event cut off by the end
// of the stream is dropped.
func (es *eventSource) read(body io.Reader, event func(sseEvent) error) error {
	r := bufio.NewReader(body)
	var ev sseEvent
	id := es.lastID
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return err // io.EOF when the stream ended between events
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			es.lastID = id
			if ev.Data != "" && ev.Event != stream.HeartbeatEventName {
				ev.ID = id
				if err := json.Unmarshal([]byte(ev.Data), &ev.data); err != nil {
					return fmt.Errorf("%w: data %q: %v", errEvent, ev.Data, err)
				}
				if err := event(ev); err != nil {
					return fmt.Errorf("%w: %v", errEvent, err)
				}
			}
			ev = sseEvent{}
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "retry":
			if ms, err := strconv.Atoi(value); err == nil && ms >= 0 && strings.Trim(value, "0123456789") == "" {
				es.retry = time.Duration(ms) * time.Millisecond
			}
		case "id":
			if !strings.ContainsRune(value, 0) {
				id = value
			}
		case "event":
			ev.Event = value
		case "data":
			if ev.Data != "" {
				ev.Data += "\n"
			}
			ev.Data += value
		}
	}
}
