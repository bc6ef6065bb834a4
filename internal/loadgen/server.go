package loadgen

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordertracker/ordertracker/internal/pglocal"
)

// A server is the web process under load, started here or already running.
type server struct {
	base     string // http://host:port
	addr     string // host:port
	pid      int
	database string // the server's DATABASE_URL
	password string

	// The rest is for a server started here.
	cluster *pglocal.Cluster
	driver  string   // the load generator's own DATABASE_URL, as role loadgenRole
	argv    []string // the server's command line
	env     []string
	log     io.Writer
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has exited
	probes  int           // /readyz requests of the latest waitReady
	started time.Time     // when cmd was started
}

// loadgenRole is the database role the load generator works as on a
// throwaway PostgreSQL, so that PostgreSQL's statistics tell its
// statements from the server's.
const loadgenRole = "loadgen"

// clusterSettings are the throwaway PostgreSQL's extra settings: statistics
// of every statement, and of the time spent in WAL writes and syncs.
var clusterSettings = []string{
	"shared_preload_libraries=pg_stat_statements",
	"track_wal_io_timing=on",
}

// startServer starts a throwaway PostgreSQL, durable unless fastDB, and the
// server (argv, usually "BIN web") on a free loopback port.
func startServer(ctx context.Context, argv []string, extraEnv []string, fastDB bool, log io.Writer) (*server, error) {
	cluster, err := pglocal.Start(ctx, pglocal.Options{Ephemeral: true, Durable: !fastDB, Settings: clusterSettings, Log: log})
	if err != nil {
		return nil, fmt.Errorf("start a throwaway PostgreSQL: %w", err)
	}
	port, err := freePort()
	if err != nil {
		cluster.Stop()
		return nil, err
	}
	s := &server{
		addr:     net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		database: cluster.URL("postgres"),
		password: rand.Text(),
		cluster:  cluster,
		argv:     argv,
		log:      log,
	}
	s.base = "http://" + s.addr
	s.env = append(os.Environ(),
		"DATABASE_URL="+s.database,
		"ADDR="+s.addr,
		"STAFF_PASSWORD="+s.password,
		"LOG_LEVEL=warn",
	)
	s.env = append(s.env, extraEnv...)
	if s.driver, err = addRole(ctx, s.database); err != nil {
		cluster.Stop()
		return nil, err
	}
	if err := s.launch(ctx); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// addRole makes the load generator's role and the statement statistics on
// the database at url, and returns the URL to connect as that role.
func addRole(ctx context.Context, databaseURL string) (string, error) {
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return "", fmt.Errorf("connect to the throwaway PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	password := rand.Text()
	if _, err := conn.Exec(ctx, "CREATE ROLE "+loadgenRole+" LOGIN SUPERUSER PASSWORD '"+password+"'"); err != nil {
		return "", fmt.Errorf("create the load generator's role: %w", err)
	}
	if _, err := conn.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"); err != nil {
		return "", fmt.Errorf("create pg_stat_statements: %w", err)
	}
	u, err := url.Parse(databaseURL)
	if err != nil {
		return "", err
	}
	u.User = url.UserPassword(loadgenRole, password)
	return u.String(), nil
}

// launch starts the server's process and waits until it is ready.
func (s *server) launch(ctx context.Context) error {
	s.cmd = exec.Command(s.argv[0], s.argv[1:]...)
	s.cmd.Env = s.env
	s.cmd.Stderr = s.log
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", strings.Join(s.argv, " "), err)
	}
	s.pid = s.cmd.Process.Pid
	go io.Copy(io.Discard, out)
	exited := make(chan struct{})
	s.exited = exited
	go func(cmd *exec.Cmd) { cmd.Wait(); close(exited) }(s.cmd)
	s.started = time.Now()
	// Long: a server started again under a storm of reconnections may
	// take minutes to answer its readiness probe.
	return s.waitReady(ctx, 5*time.Minute)
}

// halt sends the server's process sig and waits until it has exited, for
// up to a minute before it kills it.
func (s *server) halt(sig os.Signal) error {
	if s.cmd == nil {
		return nil
	}
	s.cmd.Process.Signal(sig)
	select {
	case <-s.exited:
		return nil
	case <-time.After(time.Minute):
		s.cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("the server ignored %v for a minute and was killed", sig)
	}
}

// stop stops a server started here, and its database.
func (s *server) stop() {
	if s.cluster == nil {
		return
	}
	s.halt(os.Interrupt)
	s.cluster.Stop()
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitReady asks /readyz every 20 ms until it answers 200, and counts
// the requests it made in s.probes (each costs the server a few queries).
func (s *server) waitReady(ctx context.Context, within time.Duration) error {
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(within)
	s.probes = 0
	for {
		s.probes++
		resp, err := client.Get(s.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.exited:
			return fmt.Errorf("the server at %s exited before it was ready", s.base)
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("the server at %s never became ready: %v", s.base, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sessionCookie is the name of the staff session's cookie.
const sessionCookie = "staff_session"

// login signs in as staff and returns the session cookie, "name=value".
func (s *server) login() (string, error) {
	if s.password == "" {
		return "", nil
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.PostForm(s.base+"/staff/login", url.Values{"password": {s.password}})
	if err != nil {
		return "", fmt.Errorf("staff sign-in: %w", err)
	}
	resp.Body.Close()
	// Sign-in also sets a device cookie, for the sign-in form alone.
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie && c.Value != "" {
			return c.Name + "=" + c.Value, nil
		}
	}
	return "", fmt.Errorf("staff sign-in: %s and no session cookie (is STAFF_PASSWORD right?)", resp.Status)
}

// rssBytes reads a process's resident set size from /proc.
func rssBytes(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

// cpuTime is the user plus system time a process has used.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name may hold spaces; the fields after it do not.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// machineCPU returns the busy and total jiffies of the whole machine.
func machineCPU() (busy, total int64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	for i, f := range strings.Fields(line)[1:] {
		n, _ := strconv.ParseInt(f, 10, 64)
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}

// metrics scrapes /metrics into name{labels} -> value.
func (s *server) metrics() map[string]float64 {
	resp, err := http.Get(s.base + "/metrics")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	m := make(map[string]float64)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			m[line[:i]] = v
		}
	}
	return m
}

var bucketLabel = regexp.MustCompile(`le="([^"]+)"`)

// histogramQuantile estimates a quantile of a Prometheus histogram from the
// difference of two scrapes, as the upper bound of the bucket it falls in.
func histogramQuantile(before, after map[string]float64, name, match string, q float64) (bound float64, count float64) {
	type bucket struct{ le, n float64 }
	var buckets []bucket
	for k, v := range after {
		if !strings.HasPrefix(k, name+"_bucket{") || !strings.Contains(k, match) {
			continue
		}
		m := bucketLabel.FindStringSubmatch(k)
		if m == nil {
			continue
		}
		le, err := strconv.ParseFloat(m[1], 64)
		if m[1] == "+Inf" {
			le, err = math.Inf(1), nil
		}
		if err != nil {
			continue
		}
		buckets = append(buckets, bucket{le, v - before[k]})
	}
	if len(buckets) == 0 {
		return 0, 0
	}
	for i := range buckets {
		for j := i + 1; j < len(buckets); j++ {
			if buckets[j].le < buckets[i].le {
				buckets[i], buckets[j] = buckets[j], buckets[i]
			}
		}
	}
	total := buckets[len(buckets)-1].n
	for _, b := range buckets {
		if b.n >= q*total {
			return b.le, total
		}
	}
	return math.Inf(1), total
}
