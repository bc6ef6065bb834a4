package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ordertracker/ordertracker/internal/pgtest"
	"github.com/ordertracker/ordertracker/internal/stream"
	"github.com/ordertracker/ordertracker/orders"
)

// TestMain, in main_test.go, runs pgtest.Main: the databases below come from it.

// fastStages moves an order from received to delivered in about a second.
const fastStages = "received=300ms,cooking=300ms,out_for_delivery=300ms"

// TestE2E runs the topology of docker-compose.yml natively: the program is
// built, a fresh database is migrated by `migrate`, and then one `web` and
// two `worker` processes share that database, each its own OS process, as
// the containers would. Everything is observed from outside, over HTTP.
func TestE2E(t *testing.T) {
	t.Parallel()
	bin := buildProgram(t)

	t.Run("an order's stream shows every stage once, in order, and then ends", func(t *testing.T) {
		t.Parallel()
		top := startTopology(t, bin, fastStages, 2)
		order := top.createOrder(t)
		if order.Status != string(orders.Received) || order.EventsURL != "/orders/"+order.Token+"/events" {
			t.Fatalf("created order: status %q, events_url %q; want received, /orders/{token}/events", order.Status, order.EventsURL)
		}

		// The tracking page's stream (no cursor) starts with the current
		// state, which may already be past received; a stream resumed from
		// the start (?since=0) must replay every stage.
		var fromNow, fromStart []sseEvent
		var g errgroup.Group
		g.Go(func() (err error) { fromNow, err = top.readUntil(t, order.EventsURL, ""); return err })
		g.Go(func() (err error) { fromStart, err = top.readUntil(t, order.EventsURL+"?since=0", ""); return err })
		if err := g.Wait(); err != nil {
			t.Fatal(err)
		}
		checkJourney(t, "the stream from ?since=0", order.Token, fromStart, 1)
		if len(fromNow) == 0 || fromNow[0].data.Seq < 1 || fromNow[0].data.Seq > len(orders.Stages) {
			t.Fatalf("the stream without a cursor began with %+v, want the current state", fromNow)
		}
		checkJourney(t, "the stream without a cursor", order.Token, fromNow, fromNow[0].data.Seq)

		// A browser that saw the last event reconnects with its id and
		// must be told to stop.
		resp := top.get(t, order.EventsURL, "4")
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Errorf("reconnect after delivered: status %d, want 204", resp.StatusCode)
		}
		top.stopAll(t)
	})

	t.Run("200 orders are each delivered exactly once although a worker is killed", func(t *testing.T) {
		t.Parallel()
		top := startTopology(t, bin, fastStages, 2)
		tokens := top.createOrders(t, 200)

		// Kill a worker while the orders are on their way: once the
		// newest order has left received, the others are spread over
		// every stage.
		newest := tokens[len(tokens)-1]
		if _, err := top.readUntil(t, "/orders/"+newest+"/events?since=0", orders.Cooking); err != nil {
			t.Fatal(err)
		}
		victim := top.workers[0]
		if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if code, err := victim.wait(10 * time.Second); err != nil || code != -1 {
			t.Fatalf("%s: exit code %d, %v; want it ended by SIGKILL, not before", victim.name, code, err)
		}

		deadline := time.Now().Add(60 * time.Second)
		for _, token := range tokens {
			o := top.waitDelivered(t, token, deadline)
			var statuses []orders.Status
			for i, ev := range o.Events {
				statuses = append(statuses, orders.Status(ev.Status))
				if ev.Seq != i+1 {
					t.Errorf("order %s: event %d has seq %d, want %d", short(token), i, ev.Seq, i+1)
				}
			}
			if !slices.Equal(statuses, orders.Stages) {
				t.Errorf("order %s: events %v, want %v", short(token), statuses, orders.Stages)
			}
			if t.Failed() {
				t.FailNow() // one order's story is enough
			}
		}
		top.stopAll(t)
	})

	t.Run("SIGTERM ends web at once with exit code 0 while a stream is open", func(t *testing.T) {
		t.Parallel()
		top := startTopology(t, bin, "received=1h", 1)
		order := top.createOrder(t)

		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, top.base+order.EventsURL, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		stream := bufio.NewReader(resp.Body)
		first, err := readEvent(stream)
		if err != nil || first.ID != "1" {
			t.Fatalf("first event: %+v, %v; want the current state, id 1", first, err)
		}

		began := time.Now()
		if err := top.web.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		rest, err := io.ReadAll(stream)
		if err != nil {
			t.Errorf("the open stream ended with %v after %v, want a clean end; it sent %q", err, time.Since(began), rest)
		}
		if code, err := top.web.wait(5 * time.Second); err != nil || code != 0 {
			t.Errorf("web after SIGTERM: exit code %d, %v; want 0 within 5s", code, err)
		}
		if took := time.Since(began); took > 3*time.Second {
			t.Errorf("web took %v to shut down with a stream open, want under 3s", took)
		}
		top.stopAll(t)
	})

	// The load generator's own numbers are only worth what its checks are:
	// every stream opened, every event received once. It is a command of
	// its own, which starts the program built above, or the floor or the
	// plain hub (itself).
	loadgen := buildPackage(t, "./cmd/loadgen", "loadgen")
	for _, server := range []struct {
		name  string
		flags []string
	}{
		{"the web process", []string{"-server-bin", bin}},
		{"the floor", []string{"-floor"}},
		{"the plain hub", []string{"-plain"}},
	} {
		t.Run("the load generator gets every event exactly once from "+server.name, func(t *testing.T) {
			t.Parallel()
			// Exactly once is the point here, not durability: a database
			// without fsync keeps the test quick.
			args := []string{"-fast-db", "-staff-streams", "200", "-changes", "5", "-interval", "20ms", "-settle", "0s"}
			args = append(args, server.flags...)
			cmd := exec.Command(loadgen, append(args, "fanout")...)
			cmd.Dir = t.TempDir()
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("loadgen: %v\n%s\n%s", err, out, stderr.String())
			}
			for _, want := range []string{
				"streams: 200 opened, 0 failed",
				"exactly once: 1000 events received, 0 lost, 0 duplicated, 0 reconnects",
				"dropped slow streams: 0",
			} {
				if !strings.Contains(string(out), want) {
					t.Errorf("loadgen printed no %q:\n%s", want, out)
				}
			}
		})
	}
}

// raceEnabled reports whether this test binary was built with -race, so the
// program under test can be built the same way and its races reported too.
func raceEnabled() bool {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range info.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// buildProgram builds the module's program into a temporary directory.
func buildProgram(t *testing.T) string {
	t.Helper()
	return buildPackage(t, ".", "ordertracker")
}

// buildPackage builds the command in pkg into a temporary directory as
// name, with the race detector if this test binary has it.
func buildPackage(t *testing.T, pkg, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	args := []string{"build", "-o", bin}
	if raceEnabled() {
		args = append(args, "-race")
	}
	out, err := exec.Command("go", append(args, pkg)...).CombinedOutput()
	if err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// A topology is a migrated database with one web and some worker processes
// on it, all stopped when the test ends.
type topology struct {
	base    string // the web process's URL: http://127.0.0.1:PORT
	web     *process
	workers []*process
	client  *http.Client // for requests that are not streams
}

// startTopology migrates a fresh database with `migrate`, then starts `web`
// and n `worker` processes on it with the given STAGE_DURATIONS.
func startTopology(t *testing.T, bin, stages string, n int) *topology {
	t.Helper()
	// An empty database, so that `migrate` has the work it has in compose.
	env := []string{
		"DATABASE_URL=" + pgtest.NewEmptyDatabase(t),
		"STAGE_DURATIONS=" + stages,
		// Small batches, so both workers take part.
		"WORKER_BATCH=10",
		// The test places 200 orders from one address in a moment.
		"ORDER_LIMIT=off",
	}
	migrate := startProcess(t, bin, "migrate", env, "migrate")
	if code, err := migrate.wait(60 * time.Second); err != nil || code != 0 || !strings.Contains(migrate.out.String(), "up to date") {
		t.Fatalf("migrate: exit code %d, %v; want 0 and a word that the schema is up to date", code, err)
	}

	top := &topology{client: &http.Client{Timeout: 10 * time.Second}}
	top.web = startProcess(t, bin, "web", append(env, "ADDR=127.0.0.1:0"), "web")
	for i := range n {
		top.workers = append(top.workers, startProcess(t, bin, fmt.Sprintf("worker-%d", i+1), env, "worker"))
	}
	select {
	case top.base = <-top.web.out.listening:
	case <-top.web.done:
		t.Fatalf("web ended before it listened: %v", top.web.err)
	case <-time.After(30 * time.Second):
		t.Fatal("web did not say where it listens within 30s")
	}
	top.waitReady(t)
	return top
}

// waitReady waits for web's /readyz to answer 200, as a load balancer would
// before it sends web any traffic: until then its listener may not be
// connected, and a stream opened then could miss events.
func (top *topology) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := ""
		resp, err := top.client.Get(top.base + "/readyz")
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
		case <-top.web.done:
			t.Fatalf("web ended before it was ready: %v", top.web.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("web is not ready after 30s: /readyz answers %s", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stopAll ends every process still running with SIGTERM and fails the test
// unless each exits with code 0 (a program built with -race exits with 66
// when it saw a data race).
func (top *topology) stopAll(t *testing.T) {
	t.Helper()
	for _, p := range append([]*process{top.web}, top.workers...) {
		select {
		case <-p.done:
			continue // ended by the test
		default:
		}
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Errorf("%s: %v", p.name, err)
		}
		if code, err := p.wait(15 * time.Second); err != nil || code != 0 {
			t.Errorf("%s after SIGTERM: exit code %d, %v; want 0", p.name, code, err)
		}
	}
}

// apiOrder is an order as GET /api/orders/{token} shows it.
type apiOrder struct {
	Token     string `json:"token"`
	Status    string `json:"status"`
	Seq       int    `json:"seq"`
	EventsURL string `json:"events_url"`
	Events    []struct {
		Seq    int    `json:"seq"`
		Status string `json:"status"`
	} `json:"events"`
}

// createOrder places an order through the JSON API.
func (top *topology) createOrder(t *testing.T) apiOrder {
	t.Helper()
	o, err := top.tryCreateOrder()
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func (top *topology) tryCreateOrder() (apiOrder, error) {
	resp, err := top.client.Post(top.base+"/api/orders", "application/json",
		strings.NewReader(`{"name":"Ada","items":[{"id":"margherita","quantity":2}]}`))
	if err != nil {
		return apiOrder{}, fmt.Errorf("create an order: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var o apiOrder
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(body, &o) != nil || o.Token == "" {
		return apiOrder{}, fmt.Errorf("create an order: %s %s; want 201 with a token", resp.Status, body)
	}
	return o, nil
}

// createOrders places n orders, a few at a time, and returns their tokens in
// the order they were created.
func (top *topology) createOrders(t *testing.T, n int) []string {
	t.Helper()
	tokens := make([]string, n)
	var g errgroup.Group
	g.SetLimit(8)
	for i := range n {
		g.Go(func() error {
			o, err := top.tryCreateOrder()
			tokens[i] = o.Token
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	return tokens
}

// waitDelivered polls the order until it is delivered and returns it, and
// fails the test if that has not happened by the deadline.
func (top *topology) waitDelivered(t *testing.T, token string, deadline time.Time) apiOrder {
	t.Helper()
	for {
		resp, err := top.client.Get(top.base + "/api/orders/" + token)
		if err != nil {
			t.Fatal(err)
		}
		var o apiOrder
		err = json.NewDecoder(resp.Body).Decode(&o)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil {
			t.Fatalf("GET /api/orders/%s: %s, %v", short(token), resp.Status, err)
		}
		if orders.Status(o.Status).Terminal() {
			return o
		}
		if time.Now().After(deadline) {
			t.Fatalf("order %s is still %s at the deadline, with events %+v", short(token), o.Status, o.Events)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// get starts a GET of path, with a Last-Event-ID header unless lastID is
// empty, whose body the caller reads and closes. It is cancelled when the
// test ends.
func (top *topology) get(t *testing.T, path, lastID string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, top.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// readUntil reads an event stream until an event with the given status, or
// to the stream's end when until is empty, and returns its events. It fails
// if the answer is not an event stream, or if 30 seconds were not enough.
func (top *topology) readUntil(t *testing.T, path string, until orders.Status) ([]sseEvent, error) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, top.base+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "text/event-stream") {
		return nil, fmt.Errorf("GET %s: %s, %s; want 200, text/event-stream", path, resp.Status, ct)
	}
	stream := bufio.NewReader(resp.Body)
	var events []sseEvent
	for {
		ev, err := readEvent(stream)
		if errors.Is(err, io.EOF) && until == "" {
			return events, nil
		}
		if err != nil {
			return events, fmt.Errorf("GET %s: after %d events: %w", path, len(events), err)
		}
		events = append(events, ev)
		if until != "" && ev.data.Status == until {
			return events, nil
		}
	}
}

// An sseEvent is one event of an order's stream.
type sseEvent struct {
	ID, Event, Data string
	data            struct {
		Token  string        `json:"token"`
		Seq    int           `json:"seq"`
		Status orders.Status `json:"status"`
		Final  bool          `json:"final"`
	}
}

// readEvent reads the next event, skipping retry, comment and heartbeat
// frames. It returns io.EOF when the stream ends cleanly between events.
func readEvent(r *bufio.Reader) (sseEvent, error) {
	var ev sseEvent
	fields, hasData := 0, false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) && line == "" && fields == 0 {
				return ev, io.EOF
			}
			return ev, fmt.Errorf("read a frame: %w (partial line %q)", err, line)
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if ev.Event == "" && ev.Data == "" || ev.Event == stream.HeartbeatEventName {
				ev, fields, hasData = sseEvent{}, 0, false
				continue // a retry, comment or heartbeat frame
			}
			if err := json.Unmarshal([]byte(ev.Data), &ev.data); err != nil {
				return ev, fmt.Errorf("event data %q: %w", ev.Data, err)
			}
			return ev, nil
		}
		fields++
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch name {
		case "id":
			ev.ID = value
		case "event":
			ev.Event = value
		case "data":
			if hasData {
				ev.Data += "\n" // as the browser joins data lines
			}
			ev.Data += value
			hasData = true
		}
	}
}

// checkJourney checks that events are an order's order_update events from
// sequence number first to delivered, each once, in order.
func checkJourney(t *testing.T, what, token string, events []sseEvent, first int) {
	t.Helper()
	want := orders.Stages[first-1:]
	var got []orders.Status
	for i, ev := range events {
		got = append(got, ev.data.Status)
		seq := first + i
		if ev.Event != "order_update" || ev.ID != strconv.Itoa(seq) || ev.data.Seq != seq || ev.data.Token != token {
			t.Errorf("%s: event %d is %q, id %q, seq %d, token %s; want order_update, id and seq %d, token %s",
				what, i, ev.Event, ev.ID, ev.data.Seq, short(ev.data.Token), seq, short(token))
		}
		if ev.data.Final != (i == len(events)-1) {
			t.Errorf("%s: event %d (%s) has final %v", what, i, ev.data.Status, ev.data.Final)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s: statuses %v, want %v", what, got, want)
	}
}

// short shortens a token for a message: enough to tell orders apart.
func short(token string) string { return token[:min(len(token), 8)] + "…" }

// A process is the program running as a child of the test.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *output
	done chan struct{} // closed once the process has ended and err is set
	err  error
}

// startProcess starts the program with exactly the given environment, so
// that nothing set around the test changes what it does. Its output is shown
// if the test fails, and it is killed, if still running, when the test ends.
func startProcess(t *testing.T, bin, name string, env []string, args ...string) *process {
	t.Helper()
	p := &process{name: name, cmd: exec.Command(bin, args...), out: newOutput(), done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdout = p.out // one writer for both: lines stay in order
	p.cmd.Stderr = p.out
	dieWithTest(p.cmd)
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("--- output of %s (%v):\n%s", name, p.err, p.out.tail(200))
		}
		if strings.Contains(p.out.String(), "WARNING: DATA RACE") {
			t.Errorf("%s: the race detector found a data race; see its output", name)
			if !t.Failed() {
				t.Logf("--- output of %s:\n%s", name, p.out.tail(200))
			}
		}
	})
	return p
}

// wait waits up to timeout for the process to end and returns its exit code.
func (p *process) wait(timeout time.Duration) (int, error) {
	select {
	case <-p.done:
	case <-time.After(timeout):
		return -1, fmt.Errorf("%s still running after %v", p.name, timeout)
	}
	var exit *exec.ExitError
	if errors.As(p.err, &exit) {
		return exit.ExitCode(), nil // -1 when a signal ended it
	}
	if p.err != nil {
		return -1, p.err
	}
	return 0, nil
}

// dieWithTest asks the kernel to kill the child if the test binary dies
// first, as it does on a panic or a -timeout, when no t.Cleanup runs. Only
// Linux has this (SysProcAttr.Pdeathsig); the field is set by name so that
// this file builds on every system.
func dieWithTest(cmd *exec.Cmd) {
	attr := &syscall.SysProcAttr{}
	if f := reflect.ValueOf(attr).Elem().FieldByName("Pdeathsig"); f.IsValid() && f.CanSet() {
		f.Set(reflect.ValueOf(syscall.SIGKILL))
	}
	cmd.SysProcAttr = attr
}

// output collects what a process writes and hands on, once, the address in
// its "Listening on http://..." line.
type output struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	scanned   int         // how much of buf has been looked at for whole lines
	listening chan string // receives the URL the web server listens on
}

func newOutput() *output { return &output{listening: make(chan string, 1)} }

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(p)
	for {
		rest := o.buf.Bytes()[o.scanned:]
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			return len(p), nil
		}
		o.scanned += i + 1
		if url, ok := strings.CutPrefix(string(rest[:i]), "Listening on "); ok {
			select {
			case o.listening <- url:
			default:
			}
		}
	}
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// tail returns the last n lines of the output.
func (o *output) tail(n int) string {
	lines := strings.SplitAfter(o.String(), "\n")
	if len(lines) <= n {
		return strings.Join(lines, "")
	}
	return fmt.Sprintf("[%d earlier lines]\n", len(lines)-n) + strings.Join(lines[len(lines)-n:], "")
}
