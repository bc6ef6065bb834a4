package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ordertracker/ordertracker/internal/pgtest"
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
	ctx, cancel := context.WithCancel(context.Background())
	out, outW := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, args, env(vars), outW, io.Discard)
		outW.Close()
	}()
	lines := bufio.NewScanner(out)
	base := ""
	for lines.Scan() {
		if addr, ok := strings.CutPrefix(lines.Text(), "Listening on "); ok {
			base = addr
			break
		}
	}
	go io.Copy(io.Discard, out)
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
	return base, stop
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
	err := run(context.Background(), []string{"migrate"}, env(map[string]string{"DATABASE_URL": pgtest.NewEmptyDatabase(t)}), &out, io.Discard)
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
		{"a bad log format", nil, map[string]string{"LOG_FORMAT": "xml"}, "LOG_FORMAT"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := run(context.Background(), tt.args, env(tt.vars), io.Discard, io.Discard)
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
		return run(context.Background(), []string{"healthcheck"}, env(map[string]string{"ADDR": ":" + port}), io.Discard, io.Discard)
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
	if err := run(context.Background(), []string{"healthcheck"}, env(map[string]string{"ADDR": ":" + closed}), io.Discard, io.Discard); err == nil {
		t.Error("healthcheck of a port nobody listens on succeeded")
	}
}
