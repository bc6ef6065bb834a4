// Package loadgen is the load generator, the code behind the loadgen
// command (cmd/loadgen). It opens many event streams on one web process,
// from several client processes and loopback source addresses, drives
// status changes through PostgreSQL the way the worker makes them, and
// reports delivery latency, events lost or duplicated (each stream checks
// that it got every event once, in order), and the server's memory per
// stream and CPU per event.
//
// It is a command of its own, not part of the product binary, and it starts
// the product as a separate process: what it measures is the program that
// ships, and the product carries no test tools.
//
// Latency is measured from each event's own timestamp, the start of the
// transaction that made the change (PostgreSQL's now()), to the moment a
// client has read the event; both clocks are the machine's. It therefore
// includes the statement and the commit, and so is never less than
// commit-to-delivery.
package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// The load generator runs copies of itself in three roles, named by the
// first argument: its client processes, and the floor and the plain hub
// that -floor and -plain start in place of the web process.
const (
	roleClient = "client"
	roleFloor  = "floor"
	rolePlain  = "plain"
)

// serverProgram is the name of the product's program, looked for next to
// the load generator and then on PATH when -server-bin is not given.
const serverProgram = "ordertracker"

// Config is the command line.
type Config struct {
	Scenario     string
	ServerBin    string
	Floor        bool
	Plain        bool // the plain hub instead of the web process
	FastDB       bool
	Hops         bool // fanout: streams ask for hop events
	ServerURL    string
	ServerPID    int
	Database     string
	Password     string
	ServerEnv    []string
	StaffStreams int
	OrderStreams int
	PerChild     int
	Sources      int
	OpenRate     int
	Changes      int
	Interval     time.Duration
	Rate         int
	Batch        int
	Conns        int
	Orders       int
	Duration     time.Duration
	Settle       time.Duration
	PagePath     string
	Rounds       int
	Restarts     []string
}

const usage = `usage: loadgen [flags] fanout|throughput|latency|page|restart

Scenarios:
  fanout      open -staff-streams streams of all orders (default 19500), measure the
              server's memory per idle stream, then make -changes single changes,
              -interval apart, and measure how long each takes to reach every stream
  throughput  with a few streams open, move orders as fast as PostgreSQL takes it,
              -duration each, -rounds times in turn: a plain UPDATE of one row per
              transaction on a copy of the orders without triggers, the same with a
              NOTIFY, the same with the position lock, then the orders themselves
              one change per transaction (the naive baseline), then -batch per
              transaction
  latency     -rate single changes per second for -duration, to -staff-streams
              streams of all orders and -order-streams streams of one order each
  page        -rate GETs per second of -page-path for -duration
  restart     open -staff-streams streams of all orders and -order-streams of one
              order each (default 9750 and 9750) while -rate changes a second (4) move
              the watched orders, and time how long until every stream is live;
              then, for each of -restarts, stop the server (term: SIGTERM, which
              drains; kill: SIGKILL), start it again on the same port, and time
              how long from its being ready until every stream is live again,
              counting what PostgreSQL ran and the server's memory after

Without -server it starts a throwaway PostgreSQL and "BIN web" on a free loopback
port, and stops both at the end. The PostgreSQL is durable, as PostgreSQL is by
default (fsync, synchronous commit and full-page writes on, its data on disk);
-fast-db turns those off, for figures that leave out the cost of a commit's sync.
BIN is -server-bin, else ordertracker next to this program, else ordertracker on
PATH; build it with

  go build -o /tmp/ordertracker . && go build -o /tmp/loadgen ./cmd/loadgen
  /tmp/loadgen -server-bin /tmp/ordertracker fanout

The load generator runs copies of itself as "loadgen client" (its client
processes), and "loadgen floor" and "loadgen plain" (the servers -floor and
-plain start, on ADDR over DATABASE_URL); none is meant to be started by
hand.

Flags:`

// Run is the loadgen command: args are its arguments, without the program
// name. getenv is read only by the floor and the plain hub, which take DATABASE_URL and ADDR
// from its environment as the web process it stands in for does; stdin
// carries a client process's instructions.
func Run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case roleClient:
			return runChild(ctx, stdin, stdout)
		case roleFloor:
			return runFloor(ctx, getenv("DATABASE_URL"), getenv("ADDR"), stderr)
		case rolePlain:
			return runPlain(ctx, getenv("DATABASE_URL"), getenv("ADDR"), stderr)
		}
	}
	var cfg Config
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, usage); fs.PrintDefaults() }
	fs.StringVar(&cfg.ServerBin, "server-bin", "", "the product's program to start as the server (`path`; default: "+serverProgram+" next to this program, else on PATH)")
	fs.BoolVar(&cfg.Plain, "plain", false, "start the plain hub instead of the web process: the event server most Go code is, a net/http handler goroutine per stream reading a channel, writing and flushing (streams of all orders only)")
	fs.BoolVar(&cfg.Floor, "floor", false, "start the floor instead of the web process: a server that only writes each event's bytes to every stream's socket, to measure what the machine allows (streams of all orders only)")
	fs.StringVar(&cfg.ServerURL, "server", "", "base URL of a running server; then -database, -server-pid and -staff-password too")
	fs.IntVar(&cfg.ServerPID, "server-pid", 0, "pid of the running server, for its memory and CPU")
	fs.StringVar(&cfg.Database, "database", "", "DATABASE_URL of the running server's database")
	fs.StringVar(&cfg.Password, "staff-password", "", "STAFF_PASSWORD of the running server")
	env := fs.String("server-env", "", "extra environment for the started server, comma-separated KEY=VALUE")
	fs.IntVar(&cfg.StaffStreams, "staff-streams", -1, "streams of all orders (/staff/events); default per scenario")
	fs.IntVar(&cfg.OrderStreams, "order-streams", -1, "streams of one order each (/orders/{token}/events); default per scenario")
	fs.IntVar(&cfg.PerChild, "per-child", 8000, "most streams per client process")
	fs.IntVar(&cfg.Sources, "sources", 4, "loopback source addresses to dial from (127.0.0.2 and up)")
	fs.IntVar(&cfg.OpenRate, "open-rate", 2000, "streams opened per second, over all client processes")
	fs.IntVar(&cfg.Changes, "changes", 20, "fanout: how many single changes to make")
	fs.DurationVar(&cfg.Interval, "interval", 500*time.Millisecond, "fanout: time between changes")
	fs.IntVar(&cfg.Rate, "rate", -1, "changes (latency) or requests (page) per second; default per scenario")
	fs.IntVar(&cfg.Batch, "batch", 500, "throughput: changes per transaction after the baseline")
	fs.IntVar(&cfg.Conns, "conns", 4, "throughput: database connections driving changes")
	fs.IntVar(&cfg.Orders, "orders", 0, "orders to create; default per scenario")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long each measured phase lasts")
	fs.DurationVar(&cfg.Settle, "settle", 10*time.Second, "fanout: how long the streams sit idle before memory is read")
	fs.StringVar(&cfg.PagePath, "page-path", "/orders/{token}", "page: the path to GET, {token} replaced by an order's token")
	fs.BoolVar(&cfg.Hops, "hops", false, "fanout: the streams ask for hops (?hops), so each write of live events to each stream is followed by a hop event of its own")
	fs.BoolVar(&cfg.FastDB, "fast-db", false, "run the throwaway PostgreSQL with fsync, synchronous commit and full-page writes off (not durable; labelled so in the output)")
	fs.IntVar(&cfg.Rounds, "rounds", 2, "throughput: how many times to run every phase, in turn")
	restarts := fs.String("restarts", "term,kill", "restart: how to stop the server each time, in order, comma-separated: term (SIGTERM) or kill (SIGKILL)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("loadgen: name one scenario")
	}
	cfg.Scenario = fs.Arg(0)
	if *env != "" {
		cfg.ServerEnv = strings.Split(*env, ",")
	}
	for r := range strings.SplitSeq(*restarts, ",") {
		if r != "term" && r != "kill" {
			return fmt.Errorf("loadgen: -restarts %q: want term or kill, comma-separated", *restarts)
		}
		cfg.Restarts = append(cfg.Restarts, r)
	}
	defaults := map[string][3]int{ // staff streams, order streams, rate
		"fanout":     {19500, 0, 0},
		"throughput": {10, 100, 0},
		"latency":    {100, 1000, 500},
		"page":       {0, 0, 1000},
		"restart":    {9750, 9750, 4},
	}
	d, ok := defaults[cfg.Scenario]
	if !ok {
		fs.Usage()
		return fmt.Errorf("loadgen: unknown scenario %q", cfg.Scenario)
	}
	if cfg.StaffStreams < 0 {
		cfg.StaffStreams = d[0]
	}
	if cfg.OrderStreams < 0 {
		cfg.OrderStreams = d[1]
	}
	if cfg.Rate < 0 {
		cfg.Rate = d[2]
	}
	if cfg.Floor && cfg.Plain {
		return errors.New("loadgen: -floor and -plain each start a server in place of the web process: name one")
	}
	if baseline := cfg.baseline(); baseline != "" && (cfg.ServerURL != "" || cfg.ServerBin != "" || cfg.OrderStreams > 0 || cfg.Scenario == "page") {
		return fmt.Errorf("loadgen: -%s starts its own server, of streams of all orders only: use it without -server or -server-bin, with fanout, or latency with -order-streams 0", baseline)
	}
	if cfg.Scenario == "restart" && (cfg.ServerURL != "" || cfg.baseline() != "") {
		return errors.New("loadgen: restart stops and starts the server itself: use it without -server, -floor and -plain")
	}
	if cfg.ServerURL == "" && cfg.baseline() == "" {
		bin, err := findServer(cfg.ServerBin)
		if err != nil {
			return err
		}
		cfg.ServerBin = bin
	}
	g := &gen{cfg: cfg, out: stdout, log: stderr}
	return g.run(ctx)
}

// findServer returns the program to start as the server: bin if given,
// else ordertracker next to the running program, else ordertracker on
// PATH. The load generator builds nothing itself, so that what it measures
// is exactly the binary that was named or found.
func findServer(bin string) (string, error) {
	if bin != "" {
		path, err := exec.LookPath(bin)
		if err != nil {
			return "", fmt.Errorf("loadgen: -server-bin: %w", err)
		}
		return path, nil
	}
	if self, err := os.Executable(); err == nil {
		if path, err := exec.LookPath(filepath.Join(filepath.Dir(self), serverProgram)); err == nil {
			return path, nil
		}
	}
	if path, err := exec.LookPath(serverProgram); err == nil {
		return path, nil
	}
	return "", errors.New(`loadgen: no ` + serverProgram + ` to start: run "go build -o /tmp/` + serverProgram + ` ." in the module's root and pass -server-bin /tmp/` + serverProgram + ` (or -server URL for a running one)`)
}

// gen is one run of the load generator.
type gen struct {
	cfg  Config
	out  io.Writer
	log  io.Writer
	srv  *server
	pool *pgxpool.Pool
	// cookie is the staff session the streams of all orders use; ""
	// until streams signs in.
	cookie string
}

// baseline is the role of the server started in place of the web process
// (-floor, -plain), or "" for the web process.
func (c *Config) baseline() string {
	switch {
	case c.Floor:
		return roleFloor
	case c.Plain:
		return rolePlain
	}
	return ""
}

func (g *gen) printf(format string, args ...any) { fmt.Fprintf(g.out, format+"\n", args...) }

func (g *gen) run(ctx context.Context) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	if g.cfg.ServerURL == "" {
		cmd := []string{g.cfg.ServerBin, "web"}
		if role := g.cfg.baseline(); role != "" {
			self, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find this program, to start the %s: %w", role, err)
			}
			cmd = []string{self, role}
		}
		srv, err := startServer(ctx, cmd, g.cfg.ServerEnv, g.cfg.FastDB, g.log)
		if err != nil {
			return err
		}
		defer srv.stop()
		g.srv = srv
	} else {
		if g.cfg.Database == "" {
			return errors.New("loadgen: -server needs -database, to drive changes")
		}
		g.srv = &server{base: strings.TrimSuffix(g.cfg.ServerURL, "/"), pid: g.cfg.ServerPID, database: g.cfg.Database, password: g.cfg.Password}
		g.srv.addr = strings.TrimPrefix(strings.TrimPrefix(g.srv.base, "http://"), "https://")
	}
	dbURL := g.srv.database
	if g.srv.driver != "" {
		dbURL = g.srv.driver
	}
	poolCfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return err
	}
	// No pings: every statement of the load generator is then one
	// transaction, which the database's statistics can be corrected by.
	poolCfg.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return false }
	poolCfg.MaxConns = max(poolCfg.MaxConns, int32(g.cfg.Conns)+2)
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	g.pool = pool
	g.printf("machine: %d CPUs (GOMAXPROCS %d), %s; server pid %d at %s", runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), g.srv.pid, g.srv.base)
	g.printf("database: %s", databaseLabel(ctx, pool))
	switch g.cfg.Scenario {
	case "fanout":
		return g.fanout(ctx)
	case "throughput":
		return g.throughput(ctx)
	case "latency":
		return g.latency(ctx)
	case "restart":
		return g.restart(ctx)
	default:
		return g.page(ctx)
	}
}

// sample is the server's state at one moment.
type sample struct {
	at      time.Time
	rss     int64
	cpu     time.Duration
	busy    int64 // machine jiffies
	total   int64
	metrics map[string]float64
}

func (g *gen) sample() sample {
	s := sample{at: time.Now(), metrics: g.srv.metrics()}
	if g.srv.pid > 0 {
		s.rss, _ = rssBytes(g.srv.pid)
		s.cpu = cpuTime(g.srv.pid)
	}
	s.busy, s.total = machineCPU()
	return s
}

// cpuLine describes the CPU used between two samples, per event.
func cpuLine(a, b sample, events int64, what string) string {
	cpu := b.cpu - a.cpu
	busy := float64(b.busy-a.busy) / float64(max(b.total-a.total, 1)) * 100
	per := time.Duration(0)
	if events > 0 {
		per = cpu / time.Duration(events)
	}
	return fmt.Sprintf("server CPU %s over %s (%.0f%% of one core), %s per %s; whole machine %.0f%% busy",
		cpu, b.at.Sub(a.at).Round(time.Millisecond), cpu.Seconds()/b.at.Sub(a.at).Seconds()*100, per, what, busy)
}

// streams opens the streams over client processes and returns them once
// all have answered.
func (g *gen) streams(ctx context.Context, specs []streamSpec) (*clients, error) {
	cookie := g.cookie
	for _, s := range specs {
		if s.Staff && cookie == "" {
			var err error
			if cookie, err = g.srv.login(); err != nil {
				return nil, err
			}
			break
		}
	}
	var sources []string
	for i := range max(g.cfg.Sources, 1) {
		sources = append(sources, fmt.Sprintf("127.0.0.%d", 2+i))
	}
	n := (len(specs) + g.cfg.PerChild - 1) / g.cfg.PerChild
	cs := &clients{}
	began := time.Now()
	for i := range n {
		part := specs[i*len(specs)/n : (i+1)*len(specs)/n]
		cfg := childConfig{Addr: g.srv.addr, Cookie: cookie, Sources: sources, OpenRate: max(g.cfg.OpenRate/n, 1), Streams: part}
		// Each child dials from its own addresses, so that no two share
		// a port range.
		cfg.Sources = nil
		for j := range sources {
			if j%n == i || len(sources) < n {
				cfg.Sources = append(cfg.Sources, sources[j])
			}
		}
		if err := cs.start(ctx, cfg, g.log); err != nil {
			cs.kill()
			return nil, err
		}
	}
	reps, err := cs.ready()
	if err != nil {
		cs.kill()
		return nil, err
	}
	var opened, failed int
	var firstErr string
	for _, r := range reps {
		opened += r.Opened
		failed += r.Failed
		if firstErr == "" {
			firstErr = r.FirstError
		}
	}
	g.printf("streams: %d opened, %d failed in %s, from %d client processes over %d source addresses",
		opened, failed, time.Since(began).Round(time.Millisecond), n, len(sources))
	if failed > 0 {
		g.printf("  first failure: %s", firstErr)
	}
	return cs, nil
}

// clients are the client processes.
type clients struct {
	procs []*childProc
}

type childProc struct {
	cmd *exec.Cmd
	in  *json.Encoder
	out *json.Decoder
}

func (cs *clients) start(ctx context.Context, cfg childConfig, log io.Writer) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this program, to start a client process: %w", err)
	}
	cmd := exec.CommandContext(ctx, self, roleClient)
	cmd.Stderr = log
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start a client process: %w", err)
	}
	p := &childProc{cmd: cmd, in: json.NewEncoder(stdin), out: json.NewDecoder(stdout)}
	cs.procs = append(cs.procs, p)
	return p.in.Encode(cfg)
}

func (cs *clients) ready() ([]childReport, error) { return cs.each(nil) }

// each sends cmd to every child (nil sends nothing) and reads one report
// from each.
func (cs *clients) each(cmd *command) ([]childReport, error) {
	reps := make([]childReport, len(cs.procs))
	errs := make([]error, len(cs.procs))
	var wg sync.WaitGroup
	for i, p := range cs.procs {
		wg.Go(func() {
			if cmd != nil {
				if errs[i] = p.in.Encode(cmd); errs[i] != nil {
					return
				}
			}
			errs[i] = p.out.Decode(&reps[i])
		})
	}
	wg.Wait()
	return reps, errors.Join(errs...)
}

// finishStreams waits until every stream has had what the log holds after
// start (each watched order's four events), then collects the clients'
// reports.
func (g *gen) finishStreams(ctx context.Context, cs *clients, start int64) ([]childReport, error) {
	cmd, err := g.expect(ctx, start, 4, 60*time.Second)
	if err != nil {
		return nil, err
	}
	return cs.finish(cmd)
}

// finish tells every client process that the run is over and collects
// their reports.
func (cs *clients) finish(cmd command) ([]childReport, error) {
	cmd.Finish = true
	reps, err := cs.each(&cmd)
	for _, p := range cs.procs {
		p.cmd.Wait()
	}
	return reps, err
}

func (cs *clients) kill() {
	for _, p := range cs.procs {
		p.cmd.Process.Kill()
		p.cmd.Wait()
	}
}

// total adds up the children's reports.
func total(reps []childReport) childReport {
	var t childReport
	for _, r := range reps {
		t.Opened += r.Opened
		t.Failed += r.Failed
		t.Events += r.Events
		t.Live += r.Live
		t.Duplicates += r.Duplicates
		t.Lost += r.Lost
		t.Reconnects += r.Reconnects
		t.Finished += r.Finished
		t.Heartbeats += r.Heartbeats
		t.Hops += r.Hops
		t.Resets += r.Resets
		t.ResetStreams += r.ResetStreams
		t.Skipped += r.Skipped
		t.Latency.Merge(&r.Latency)
		t.LiveStreams += r.LiveStreams
		t.NotLive += r.NotLive
		t.LiveLast = max(t.LiveLast, r.LiveLast)
		t.LiveAfter.Merge(&r.LiveAfter)
		t.FirstFrame.Merge(&r.FirstFrame)
		t.FirstEvent.Merge(&r.FirstEvent)
		t.Refused += r.Refused
		t.Unanswered += r.Unanswered
		if r.Reached == 0 || t.Reached == -1 {
			t.Reached = -1
		} else {
			t.Reached = max(t.Reached, r.Reached)
		}
		if r.FirstLive != 0 && (t.FirstLive == 0 || r.FirstLive < t.FirstLive) {
			t.FirstLive = r.FirstLive
		}
		t.LastLive = max(t.LastLive, r.LastLive)
	}
	return t
}

func (g *gen) checkLine(t childReport) string {
	return fmt.Sprintf("exactly once: %d events received, %d lost, %d duplicated, %d reconnects, %d order streams finished",
		t.Events, t.Lost, t.Duplicates, t.Reconnects, t.Finished)
}

// staffSpecs returns n streams of all orders, starting after position from.
func staffSpecs(n int, from int64) []streamSpec {
	specs := make([]streamSpec, n)
	for i := range specs {
		specs[i] = streamSpec{Path: "/staff/events", LastEventID: strconv.FormatInt(from, 10), Staff: true}
	}
	return specs
}

func orderSpecs(tokens []string) []streamSpec {
	specs := make([]streamSpec, len(tokens))
	for i, t := range tokens {
		specs[i] = streamSpec{Path: "/orders/" + t + "/events"}
	}
	return specs
}

// expect is what every staff stream must have got by the head now.
func (g *gen) expect(ctx context.Context, start int64, orderFinal int, timeout time.Duration) (command, error) {
	last, err := head(ctx, g.pool)
	if err != nil {
		return command{}, err
	}
	n, err := eventsBetween(ctx, g.pool, start, last)
	return command{StaffLast: last, StaffExpected: n, OrderFinal: orderFinal, Timeout: timeout}, err
}

func (g *gen) fanout(ctx context.Context) error {
	ids, _, err := createOrders(ctx, g.pool, max(g.cfg.Changes, 1))
	if err != nil {
		return err
	}
	start, err := head(ctx, g.pool)
	if err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	before := g.sample()
	specs := staffSpecs(g.cfg.StaffStreams, start)
	if g.cfg.Hops {
		for i := range specs {
			specs[i].Path += "?hops"
		}
	}
	cs, err := g.streams(ctx, specs)
	if err != nil {
		return err
	}
	defer cs.kill()
	opened := g.sample()
	time.Sleep(g.cfg.Settle)
	idle := g.sample()
	n := int64(g.cfg.StaffStreams)
	g.printf("memory: server RSS %s with no streams, %s with %d open, %s after %s idle: %s per stream (%s per stream right after opening)",
		mib(before.rss), mib(opened.rss), n, mib(idle.rss), g.cfg.Settle, kib((idle.rss-before.rss)/max(n, 1)), kib((opened.rss-before.rss)/max(n, 1)))
	g.printf("  Go runtime: heap in use %s -> %s (allocated %s, next GC at %s), stacks %s -> %s, goroutines %.0f -> %.0f, open streams %.0f",
		mib(int64(before.metrics["go_memstats_heap_inuse_bytes"])), mib(int64(idle.metrics["go_memstats_heap_inuse_bytes"])),
		mib(int64(idle.metrics["go_memstats_heap_alloc_bytes"])), mib(int64(idle.metrics["go_memstats_next_gc_bytes"])),
		mib(int64(before.metrics["go_memstats_stack_inuse_bytes"])), mib(int64(idle.metrics["go_memstats_stack_inuse_bytes"])),
		before.metrics["go_goroutines"], idle.metrics["go_goroutines"], idle.metrics["ordertracker_streams_open"])
	g.printf("  idle CPU: %s", cpuLine(opened, idle, 0, "-"))

	var all Hist
	var perChange []time.Duration
	a := g.sample()
	for i := range g.cfg.Changes {
		if _, err := g.pool.Exec(ctx, moveOrders, []int64{ids[i%len(ids)]}); err != nil {
			return err
		}
		cmd, err := g.expect(ctx, start, 0, 30*time.Second)
		if err != nil {
			return err
		}
		reps, err := cs.each(&cmd)
		if err != nil {
			return err
		}
		t := total(reps)
		perChange = append(perChange, t.Latency.Quantile(.99))
		all.Merge(&t.Latency)
		time.Sleep(g.cfg.Interval)
	}
	b := g.sample()
	cmd, err := g.expect(ctx, start, 0, 30*time.Second)
	if err != nil {
		return err
	}
	reps, err := cs.finish(cmd)
	if err != nil {
		return err
	}
	t := total(reps)
	all.Merge(&t.Latency)
	sort.Slice(perChange, func(i, j int) bool { return perChange[i] < perChange[j] })
	g.printf("fan-out: %d single changes, each to %d streams: delivery latency %s", g.cfg.Changes, n, all.String())
	if len(perChange) > 0 {
		g.printf("  p99 of each change: best %s, median %s, worst %s", round(perChange[0]), round(perChange[len(perChange)/2]), round(perChange[len(perChange)-1]))
	}
	g.printf("  %s", cpuLine(a, b, int64(g.cfg.Changes)*n, "delivery"))
	g.printf("  dropped slow streams: %.0f", b.metrics["ordertracker_streams_dropped_slow_total"])
	if g.cfg.Hops {
		g.printf("  hop events: %d (one after each write of live events)", t.Hops)
	}
	g.printf("  %s", g.checkLine(t))
	return nil
}

func (g *gen) latency(ctx context.Context) error {
	changes := g.cfg.Rate * int(g.cfg.Duration/time.Second)
	orders := max((changes+2)/3, g.cfg.OrderStreams)
	ids, tokens, err := createOrders(ctx, g.pool, orders)
	if err != nil {
		return err
	}
	start, err := head(ctx, g.pool)
	if err != nil {
		return err
	}
	// Watch the orders spread over the run.
	var watched []string
	for i := range min(g.cfg.OrderStreams, len(tokens)) {
		watched = append(watched, tokens[i*len(tokens)/max(g.cfg.OrderStreams, 1)])
	}
	cs, err := g.streams(ctx, append(staffSpecs(g.cfg.StaffStreams, start), orderSpecs(watched)...))
	if err != nil {
		return err
	}
	defer cs.kill()
	time.Sleep(time.Second)
	a := g.sample()
	res, err := drive{stmt: moveOrders, batch: 1, conns: 2, rate: g.cfg.Rate, d: g.cfg.Duration}.run(ctx, g.pool, &mover{ids: ids})
	if err != nil {
		return err
	}
	reps, err := g.finishStreams(ctx, cs, start)
	if err != nil {
		return err
	}
	b := g.sample()
	t := total(reps)
	g.printf("latency: %d single changes at %d/s (%.0f/s achieved) to %d streams of all orders and %d of one order",
		res.moves, g.cfg.Rate, float64(res.moves)/res.elapsed.Seconds(), g.cfg.StaffStreams, len(watched))
	g.printf("  transaction time %s", res.txTime.String())
	g.printf("  delivery latency %s", t.Latency.String())
	g.printf("  %s", cpuLine(a, b, res.moves, "change"))
	g.printf("  dropped slow streams: %.0f", b.metrics["ordertracker_streams_dropped_slow_total"])
	if g.cfg.Hops {
		g.printf("  hop events: %d (one after each write of live events)", t.Hops)
	}
	g.printf("  %s", g.checkLine(t))
	return nil
}

func (g *gen) page(ctx context.Context) error {
	orders := g.cfg.Orders
	if orders == 0 {
		orders = 1000
	}
	ids, tokens, err := createOrders(ctx, g.pool, orders)
	if err != nil {
		return err
	}
	// Give the orders a history, as a tracking page usually shows.
	if _, err := g.pool.Exec(ctx, moveOrders, ids); err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}, Timeout: 10 * time.Second}
	get := func(token string) (int, error) {
		resp, err := client.Get(g.srv.base + strings.ReplaceAll(g.cfg.PagePath, "{token}", token))
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := get(tokens[0]); err != nil || code != http.StatusOK {
		return fmt.Errorf("GET %s: %d %v", g.cfg.PagePath, code, err)
	}
	for range 200 { // warm up the connections and the server
		get(tokens[rand.IntN(len(tokens))])
	}
	a := g.sample()
	var mu sync.Mutex
	var lat Hist
	statuses := map[int]int{}
	var wg sync.WaitGroup
	interval := time.Second / time.Duration(g.cfg.Rate)
	began := time.Now()
	n := int(g.cfg.Duration / interval)
	for i := range n {
		time.Sleep(time.Until(began.Add(time.Duration(i) * interval)))
		wg.Go(func() {
			t0 := time.Now()
			code, err := get(tokens[rand.IntN(len(tokens))])
			d := time.Since(t0)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				statuses[-1]++
				return
			}
			statuses[code]++
			lat.Add(d)
		})
	}
	wg.Wait()
	elapsed := time.Since(began)
	b := g.sample()
	route := strings.ReplaceAll(g.cfg.PagePath, "{token}", "{token}")
	g.printf("page: %d GET %s at %d/s (%.0f/s achieved), statuses %v", n, g.cfg.PagePath, g.cfg.Rate, float64(n)/elapsed.Seconds(), statuses)
	g.printf("  client round trip %s", lat.String())
	for _, q := range []float64{.5, .9, .99} {
		bound, count := histogramQuantile(a.metrics, b.metrics, "ordertracker_http_request_duration_seconds", `route="`+route+`"`, q)
		g.printf("  server time p%g <= %gs (from the server's histogram, %.0f requests)", q*100, bound, count)
	}
	g.printf("  %s", cpuLine(a, b, int64(n), "request"))
	return nil
}

// databaseLabel says how durable the database is, from its own settings.
func databaseLabel(ctx context.Context, pool *pgxpool.Pool) string {
	var fsync, syncCommit, fpw, version string
	err := pool.QueryRow(ctx, `SELECT current_setting('fsync'), current_setting('synchronous_commit'), current_setting('full_page_writes'), current_setting('server_version')`).Scan(&fsync, &syncCommit, &fpw, &version)
	if err != nil {
		return "settings unknown: " + err.Error()
	}
	what := "DURABLE"
	if fsync != "on" || syncCommit != "on" {
		what = "FAST, NOT DURABLE (-fast-db)"
	}
	return fmt.Sprintf("%s: PostgreSQL %s, fsync=%s synchronous_commit=%s full_page_writes=%s", what, version, fsync, syncCommit, fpw)
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
func kib(b int64) string { return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10)) }
