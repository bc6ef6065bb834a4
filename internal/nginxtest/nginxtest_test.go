package nginxtest

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// include writes a file of server-context directives and returns its path.
func include(t *testing.T, directives string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "proxy.conf")
	if err := os.WriteFile(path, []byte(directives), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// closedAddr returns a loopback address that nobody listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestProxiesToTheUpstreamPastAServerThatRefuses(t *testing.T) {
	t.Parallel()
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "forwarded for "+r.Header.Get("X-Forwarded-For"))
	}))
	t.Cleanup(backend.Close)
	proxy := Start(t, Options{
		Upstream:     "app",
		Servers:      []string{closedAddr(t), strings.TrimPrefix(backend.URL, "http://")},
		ServerParams: "max_fails=0",
		Keepalive:    2,
		Include: include(t, `location / {
			proxy_pass http://app;
			proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
			proxy_next_upstream error timeout;
		}`),
	})
	// Round robin sends every other request to the closed port first.
	for range 4 {
		resp, err := http.Get(proxy.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != "forwarded for 127.0.0.1" {
			t.Fatalf("GET through nginx: %s %q, want 200 from the server that listens, forwarded for 127.0.0.1", resp.Status, body)
		}
	}
}

func TestAConfigurationNginxRefusesFailsWithItsMessage(t *testing.T) {
	t.Parallel()
	_, err := start(Options{
		Upstream: "app",
		Servers:  []string{closedAddr(t)},
		Include:  include(t, "location / { proxy_pass http://app; no_such_directive on; }"),
	})
	if err == nil || !strings.Contains(err.Error(), "no_such_directive") {
		t.Errorf("got %v, want an error quoting nginx's complaint about no_such_directive", err)
	}
}

func TestAMissingBinarySaysHowToInstallIt(t *testing.T) {
	t.Parallel()
	_, err := start(Options{Binary: "/nonexistent/nginx"})
	if !errors.Is(err, ErrNoBinary) || !strings.Contains(err.Error(), "apt-get install nginx-light") {
		t.Errorf("got %v, want ErrNoBinary saying `apt-get install nginx-light`", err)
	}
}
