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

	"github.com/ordertracker/ordertracker/internal/pglocal"
)

// A server is the web process under load, started here or already running.
type server struct {
	base     string // http://host:port
	addr     string // host:port
	pid      int
	database string
	password string
	cmd      *exec.Cmd
	stop     func()
}

// startServer starts a throwaway PostgreSQL and the server (cmd, usually
// "BIN web") on a free loopback port.
func startServer(ctx context.Context, cmd []string, extraEnv []string, log io.Writer) (*server, error) {
	cluster, err := pglocal.Start(ctx, pglocal.Options{Ephemeral: true, Log: log})
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
	}
	s.base = "http://" + s.addr
	s.cmd = exec.Command(cmd[0], cmd[1:]...)
	s.cmd.Env = append(os.Environ(),
		"DATABASE_URL="+s.database,
		"ADDR="+s.addr,
		"STAFF_PASSWORD="+s.password,
		"LOG_LEVEL=warn",
	)
	s.cmd.Env = append(s.cmd.Env, extraEnv...)
	s.cmd.Stderr = log
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		cluster.Stop()
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		cluster.Stop()
		return nil, fmt.Errorf("start %s: %w", strings.Join(cmd, " "), err)
	}
	s.pid = s.cmd.Process.Pid
	go io.Copy(io.Discard, out)
	s.stop = func() {
		s.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			s.cmd.Process.Kill()
			<-done
		}
		cluster.Stop()
	}
	if err := s.waitReady(ctx, 60*time.Second); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (s *server) waitReady(ctx context.Context, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		resp, err := http.Get(s.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("the server at %s never became ready: %v", s.base, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// login signs in as staff and returns the session cookie, "name=value".
// sessionCookie is the name of the staff session's cookie.
const sessionCookie = "staff_session"

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
