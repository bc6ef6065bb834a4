// Package nginxtest runs Debian's nginx as a reverse proxy in front of a
// test's web processes, so that tests can show what the program does behind
// the proxy that docker-compose.yml puts in front of it, with the proxy
// settings the repository ships:
//
//	proxy := nginxtest.Start(t, nginxtest.Options{
//		Upstream: "ordertracker",
//		Servers:  []string{"127.0.0.1:8081", "127.0.0.1:8082"},
//		Include:  "deploy/nginx-proxy.conf",
//	})
//	resp, err := http.Get(proxy.URL + "/healthz")
//
// nginx is started from the PATH or /usr/sbin/nginx as one process in the
// foreground (master_process off, daemon off), as the user the tests run
// as, root included: its pid file, temporary files and logs are in a
// temporary directory of its own, so nothing of the machine's nginx is
// touched. It listens on a free loopback port and is stopped when the test
// ends. A missing binary fails the test with the command that installs it:
// such a test is never skipped.
package nginxtest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// debianPath is where Debian's package installs the binary, which is not on
// an ordinary user's PATH.
const debianPath = "/usr/sbin/nginx"

// ErrNoBinary reports that nginx is not installed; errors wrapping it say
// how to install it.
var ErrNoBinary = errors.New("nginx is not installed")

// Options configure the proxy: one upstream block of Servers, and one
// server block on a loopback port whose directives come from Include.
type Options struct {
	// Upstream names the upstream block, which the included file's
	// proxy_pass refers to (proxy_pass http://NAME).
	Upstream string
	// Servers are the upstream's servers, host:port each.
	Servers []string
	// ServerParams are added to every server line, such as "max_fails=0".
	ServerParams string
	// Keepalive is how many idle connections to the upstream nginx keeps
	// open (its keepalive directive); zero keeps none.
	Keepalive int
	// Include is a file of server-context directives (the location
	// blocks), put into the server block as it is: what is under test.
	Include string
	// Binary is the nginx program; empty means nginx on the PATH, else
	// /usr/sbin/nginx.
	Binary string
}

// A Proxy is one running nginx.
type Proxy struct {
	// URL is where it listens: http://127.0.0.1:PORT.
	URL string

	dir     string
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error // set before exited is closed
}

// Start starts nginx with opts and returns it once it accepts connections.
// It is stopped when the test ends; if the test failed, the end of its
// error and access logs is shown.
func Start(t testing.TB, opts Options) *Proxy {
	t.Helper()
	p, err := start(opts)
	if err != nil {
		t.Fatalf("nginx: %v", err)
	}
	t.Cleanup(func() {
		if err := p.stop(); err != nil {
			t.Errorf("nginx: %v", err)
		}
		if t.Failed() {
			t.Logf("nginx's error log:\n%s\nnginx's access log:\n%s", p.tail("error.log"), p.tail("access.log"))
		}
		os.RemoveAll(p.dir)
	})
	return p
}

// start checks opts, finds the binary and starts nginx, trying another port
// if another process took the one it was given.
func start(opts Options) (*Proxy, error) {
	bin, err := binary(opts.Binary)
	if err != nil {
		return nil, err
	}
	if opts.Upstream == "" || len(opts.Servers) == 0 || opts.Include == "" {
		return nil, errors.New("Options need an Upstream name, its Servers and a file to Include")
	}
	if opts.Include, err = filepath.Abs(opts.Include); err != nil {
		return nil, err
	}
	if _, err := os.Stat(opts.Include); err != nil {
		return nil, fmt.Errorf("the file to include: %w", err)
	}
	for attempt := 1; ; attempt++ {
		p, err := launch(bin, opts)
		if errors.Is(err, errPortTaken) && attempt < 5 {
			continue
		}
		return p, err
	}
}

// binary finds the nginx program, or says how to install it.
func binary(name string) (string, error) {
	if name != "" {
		if _, err := os.Stat(name); err != nil {
			return "", fmt.Errorf("%w: %s: %v; install it with `apt-get install nginx-light` (Debian, Ubuntu)", ErrNoBinary, name, err)
		}
		return name, nil
	}
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	if _, err := os.Stat(debianPath); err == nil {
		return debianPath, nil
	}
	return "", fmt.Errorf("%w: no nginx on the PATH nor at %s; the tests that run the program behind a "+
		"reverse proxy need it: install it with `apt-get install nginx-light` (Debian, Ubuntu) "+
		"or `brew install nginx` (macOS)", ErrNoBinary, debianPath)
}

var errPortTaken = errors.New("port taken")

// launch writes the configuration, starts one nginx on a port that was
// free a moment ago and waits until it accepts connections.
func launch(bin string, opts Options) (_ *Proxy, err error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "nginx-*")
	if err != nil {
		return nil, fmt.Errorf("make a directory for its files: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(config(dir, port, opts)), 0o600); err != nil {
		return nil, fmt.Errorf("write nginx.conf: %w", err)
	}
	out, err := os.Create(filepath.Join(dir, "output.log"))
	if err != nil {
		return nil, fmt.Errorf("create its output file: %w", err)
	}
	defer out.Close() // the child has its own copy
	p := &Proxy{URL: "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir: dir}
	// -e names the error log before the configuration is read, so that a
	// configuration nginx cannot read is reported there too.
	p.cmd = exec.Command(bin, "-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log"))
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = out, out
	p.cmd.SysProcAttr = sysProcAttr()
	if err := p.run(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	if err := p.waitReady(port); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// config is nginx.conf: one process in the foreground with every file it
// writes in dir, the upstream, and a server on the loopback port holding
// the included directives.
func config(dir string, port int, opts Options) string {
	path := func(name string) string { return filepath.Join(dir, name) }
	var servers strings.Builder
	for _, s := range opts.Servers {
		fmt.Fprintf(&servers, "        server %s %s;\n", s, opts.ServerParams)
	}
	keepalive := ""
	if opts.Keepalive > 0 {
		keepalive = fmt.Sprintf("        keepalive %d;\n", opts.Keepalive)
	}
	return fmt.Sprintf(`# Written by nginxtest for one test.
daemon off;
master_process off;
pid %s;
error_log %s notice;

events {
    worker_connections 4096;
}

http {
    log_format upstream '$remote_addr "$request" $status $body_bytes_sent '
                        'upstream=$upstream_addr upstream_status=$upstream_status time=$request_time';
    access_log %s upstream;
    client_body_temp_path %s;
    proxy_temp_path %s;
    fastcgi_temp_path %s;
    uwsgi_temp_path %s;
    scgi_temp_path %s;

    upstream %s {
%s%s    }

    server {
        listen 127.0.0.1:%d;
        include %s;
    }
}
`, path("nginx.pid"), path("error.log"), path("access.log"),
		path("client_body"), path("proxy"), path("fastcgi"), path("uwsgi"), path("scgi"),
		opts.Upstream, servers.String(), keepalive, port, opts.Include)
}

// freePort returns a loopback port that nobody listened on a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// run starts the command from a goroutine locked to its OS thread for the
// child's whole life: the parent-death signal (see sysProcAttr) fires when
// the thread that forked the child ends, and the Go runtime ends a thread
// whose locked goroutine returns.
func (p *Proxy) run() error {
	p.exited = make(chan struct{})
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := p.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	return <-started
}

// waitReady connects to nginx's port until it accepts, it exits, or ten
// seconds pass.
func (p *Proxy) waitReady(port int) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(10 * time.Second)
	delay := 5 * time.Millisecond
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-p.exited:
			log := p.tail("error.log") + p.tail("output.log")
			if strings.Contains(log, "Address already in use") {
				return errPortTaken
			}
			return fmt.Errorf("nginx exited during start-up (%v); its log:\n%s", p.waitErr, log)
		case <-time.After(delay):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nginx did not accept connections on %s within 10s (last attempt: %v); its log:\n%s", addr, err, p.tail("error.log"))
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
}

// stop ends nginx at once (SIGTERM is its fast shutdown: SIGQUIT would wait
// for every open event stream to end) and waits for it to exit.
func (p *Proxy) stop() error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
		return errors.New("it did not stop within 10s of SIGTERM and was killed")
	}
}

// tail returns the end of one of nginx's files in its directory.
func (p *Proxy) tail(name string) string {
	b, err := os.ReadFile(filepath.Join(p.dir, name))
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)\n", name, err)
	}
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	return string(b)
}
