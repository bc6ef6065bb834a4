package loadgen

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// This file is the restart scenario: what a web process's restart costs
// the browsers and the database. Its streams, of all orders and of one
// order each, are first opened fresh and then, for each restart, resumed
// as browsers resume them: each waits the delay the server last sent in
// retry, then reconnects with its Last-Event-ID. A stream is live again
// once a new connection has begun a stream and it has every event that
// was in the log when the new process was ready; every stream checks that
// it gets each event once, across every restart.

// steadyWindow is how long the scenario watches the server with every
// stream open and orders moving, for the transactions it runs anyway (the
// listener's reads, the pool's pings), which each phase's count is
// corrected by.
const steadyWindow = 20 * time.Second

// liveTimeout bounds how long a phase waits for every stream to be live.
const liveTimeout = 10 * time.Minute

// A phaseResult is what one opening or resumption of every stream did.
type phaseResult struct {
	name      string
	took      time.Duration // from the start (or ready) until every stream was live
	last      time.Time     // when the last stream was live
	fromStart time.Duration // from the new server's start until every stream was live
	xacts     float64       // the server's transactions, less its steady ones
	streams   int
	memRight  int64 // RSS when every stream was live
	memLater  int64 // RSS -settle later
}

func (g *gen) restart(ctx context.Context) error {
	n := g.cfg.OrderStreams
	ids, tokens, err := createOrders(ctx, g.pool, max(g.cfg.Orders, n, 1))
	if err != nil {
		return err
	}
	watchedIDs, watched := ids[:n], tokens[:n]
	start, err := head(ctx, g.pool)
	if err != nil {
		return err
	}
	if g.cookie, err = g.srv.login(); err != nil {
		return err
	}
	specs := append(staffSpecs(g.cfg.StaffStreams, start), orderSpecs(watched)...)

	// The watched orders move all along, two statements a second, each
	// moving the next few on by a stage; no order is moved more than twice,
	// so that every order stream stays open to the end.
	batch := max(g.cfg.Rate/2, 1)
	stopDriving := make(chan struct{})
	driven := make(chan error, 1)
	if g.cfg.Rate > 0 && n > 0 {
		go func() {
			_, err := drive{stmt: moveOrders, batch: batch, conns: 1, rate: g.cfg.Rate, d: 24 * time.Hour, stop: stopDriving}.run(ctx, g.pool, &mover{ids: watchedIDs, rounds: 2})
			driven <- err
		}()
	} else {
		driven <- nil
	}
	stopped := false
	stopDriver := func() error {
		if stopped {
			return nil
		}
		stopped = true
		close(stopDriving)
		return <-driven
	}
	defer stopDriver()
	g.printf("restart: %d streams of all orders and %d of one order each; %d changes a second move the watched orders, %d per statement, none more than twice",
		g.cfg.StaffStreams, n, g.cfg.Rate, batch)

	// Fresh: open every stream.
	before := g.sample()
	a, err := readStats(ctx, g.pool, true)
	if err != nil {
		return err
	}
	lc, err := g.liveTargets(ctx, watched)
	if err != nil {
		return err
	}
	cs, err := g.streams(ctx, specs)
	if err != nil {
		return err
	}
	defer cs.kill()
	fresh, err := g.phase(ctx, cs, "fresh open", lc, false, before)
	if err != nil {
		return err
	}

	// The server's steady work, with every stream open and orders moving.
	s1, err := readStats(ctx, g.pool, true)
	if err != nil {
		return err
	}
	time.Sleep(steadyWindow)
	s2, err := readStats(ctx, g.pool, true)
	if err != nil {
		return err
	}
	steady := diffStats(s1, s2, loadgenRole)
	steadyRate := float64(steady.serverXacts()) / steady.elapsed.Seconds()
	g.printf("steady, every stream open and orders moving, %s: the server ran %d transactions (%.1f/s) and %d statements: %s",
		steady.elapsed.Round(time.Millisecond), steady.serverXacts(), steadyRate, steady.serverCalls(), topStatements(steady, 4))
	fresh.correct(a, s1, steadyRate, g)
	results := []phaseResult{fresh}

	for _, how := range g.cfg.Restarts {
		r, err := g.restartOnce(ctx, cs, how, watched, steadyRate)
		if err != nil {
			return err
		}
		results = append(results, r)
	}

	if err := stopDriver(); err != nil {
		return err
	}
	g.printf("summary (target: back within 1.5x the fresh open, at most 1 transaction per 100 resumed streams, memory back near the fresh open's within seconds):")
	for _, r := range results {
		took := fmt.Sprintf("in %s", round(r.took))
		if r.fromStart > 0 {
			// A server under a storm answers streams before its
			// readiness probe gets through: its start is the firmer
			// mark.
			took = fmt.Sprintf("%s after the process started (%.2fx the fresh open), %s after it was ready", round(r.fromStart), r.fromStart.Seconds()/max(fresh.took.Seconds(), 1e-9), round(r.took))
		}
		g.printf("  %-15s %d streams live %s; %.0f transactions of the server (%.3f per stream); RSS %s right after, %s %s later",
			r.name+":", r.streams, took, r.xacts, r.xacts/float64(max(r.streams, 1)), mib(r.memRight), mib(r.memLater), g.cfg.Settle)
	}

	// Every stream must now have every event of the log after its
	// cursor, once, in order: the streams of all orders, every position
	// after the one they started from; each order stream, every sequence
	// number up to its order's.
	final, err := g.liveTargets(ctx, watched)
	if err != nil {
		return err
	}
	cmd, err := g.expect(ctx, start, 0, 2*time.Minute)
	if err != nil {
		return err
	}
	cmd.OrderLast = final.OrderTargets
	if cmd.Positions, err = positionsBetween(ctx, g.pool, start, cmd.StaffLast); err != nil {
		return err
	}
	reps, err := cs.finish(cmd)
	if err != nil {
		return err
	}
	t := total(reps)
	g.printf("  %s", g.checkLine(t))
	if t.Resets > 0 {
		g.printf("  %d streams of all orders were told %d times to load the board afresh, too far behind to replay (over %d events): the %d events that skipped are not counted lost",
			t.ResetStreams, t.Resets, maxStaffReplay, t.Skipped)
	}
	return nil
}

// restartOnce stops the server (how: term or kill), starts it again on
// the same port, and measures every stream's resumption.
func (g *gen) restartOnce(ctx context.Context, cs *clients, how string, watched []string, steadyRate float64) (phaseResult, error) {
	if _, err := cs.each(&command{Mark: true}); err != nil {
		return phaseResult{}, err
	}
	a, err := readStats(ctx, g.pool, true)
	if err != nil {
		return phaseResult{}, err
	}
	sig, name := os.Signal(syscall.SIGTERM), "SIGTERM"
	if how == "kill" {
		sig, name = syscall.SIGKILL, "SIGKILL"
	}
	before := g.sample()
	signalled := time.Now()
	if err := g.srv.halt(sig); err != nil {
		return phaseResult{}, err
	}
	exited := time.Now()
	if err := g.srv.launch(ctx); err != nil {
		return phaseResult{}, fmt.Errorf("start the server again: %w", err)
	}
	ready := time.Now()
	lc, err := g.liveTargets(ctx, watched)
	if err != nil {
		return phaseResult{}, err
	}
	lc.ReadyAt = ready.UnixNano()
	atReady, err := readStats(ctx, g.pool, true)
	if err != nil {
		return phaseResult{}, err
	}
	g.printf("after %s: the server exited %s after the signal; the new one (pid %d) was ready %s after it was started (%d /readyz requests, each a few queries)",
		name, exited.Sub(signalled).Round(time.Millisecond), g.srv.pid, ready.Sub(g.srv.started).Round(time.Millisecond), g.srv.probes)
	startup := diffStats(a, atReady, loadgenRole)
	g.printf("  statements of the server from the signal until ready: %d: %s", startup.serverCalls(), topStatements(startup, 4))
	r, err := g.phase(ctx, cs, "after "+name, lc, true, before)
	if err != nil {
		return r, err
	}
	r.fromStart = r.last.Sub(g.srv.started)
	g.printf("  the last stream was live %s after the signal, %s after the new server was started", round(r.last.Sub(signalled)), round(r.fromStart))
	b, err := readStats(ctx, g.pool, true)
	if err != nil {
		return r, err
	}
	r.correct(a, b, steadyRate, g)
	return r, nil
}

// maxStaffReplay is how far behind a stream of all orders may be and still
// be replayed, rather than told to load the board afresh (web/events.go).
const maxStaffReplay = 1000

// positionsBetween returns the log's positions in (after, upTo], in order.
func positionsBetween(ctx context.Context, pool *pgxpool.Pool, after, upTo int64) ([]int64, error) {
	rows, err := pool.Query(ctx, `SELECT position FROM order_events WHERE position > $1 AND position <= $2 ORDER BY position`, after, upTo)
	if err != nil {
		return nil, fmt.Errorf("read the log's positions: %w", err)
	}
	positions, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("read the log's positions: %w", err)
	}
	if positions == nil {
		positions = []int64{}
	}
	return positions, nil
}

// liveTargets reads where the log and every watched order stand now: what
// each stream must have to be live.
func (g *gen) liveTargets(ctx context.Context, watched []string) (*liveCheck, error) {
	lc := &liveCheck{ReadyAt: time.Now().UnixNano(), OrderTargets: make(map[string]int64, len(watched)), Timeout: liveTimeout}
	var err error
	if lc.StaffTarget, err = head(ctx, g.pool); err != nil {
		return nil, err
	}
	rows, err := g.pool.Query(ctx, `SELECT token, seq FROM orders WHERE token = ANY($1)`, watched)
	if err != nil {
		return nil, fmt.Errorf("read the watched orders: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var token string
		var seq int64
		if err := rows.Scan(&token, &seq); err != nil {
			return nil, err
		}
		lc.OrderTargets["/orders/"+token+"/events"] = seq
	}
	return lc, rows.Err()
}

// phase waits until every stream is live, and prints how long that took,
// how the reconnections went, and the server's memory right after and
// -settle later; it then waits until PostgreSQL has counted the phase's
// transactions. before is the server's state before the phase (before it
// was stopped, if restarted).
func (g *gen) phase(ctx context.Context, cs *clients, name string, lc *liveCheck, restarted bool, before sample) (phaseResult, error) {
	reps, err := cs.each(&command{Live: lc})
	if err != nil {
		return phaseResult{}, err
	}
	right := g.sample()
	t := total(reps)
	r := phaseResult{name: name, streams: t.LiveStreams, memRight: right.rss}
	if t.LiveLast > 0 {
		// Streams that were back before the server said it was ready
		// count as back at once.
		r.took = max(time.Duration(t.LiveLast-lc.ReadyAt), 0)
		r.last = time.Unix(0, t.LiveLast)
	}
	from := "the first stream was opened"
	if restarted {
		from = "the new server was ready"
	}
	g.printf("%s: %d streams live %s after %s, %d not live after %s", name, t.LiveStreams, round(r.took), from, t.NotLive, liveTimeout)
	busy := float64(right.busy-before.busy) / float64(max(right.total-before.total, 1)) * 100
	g.printf("  the whole machine was %.0f%% busy meanwhile; load average %s", busy, loadAverage())
	g.printf("  each stream live after %s", t.LiveAfter.String())
	g.printf("  first frame (the stream's heartbeat) after dialling: %s", t.FirstFrame.String())
	g.printf("  first order_update after dialling, on connections that got one: %s", t.FirstEvent.String())
	g.printf("  connections that began no stream: %d answered with only a retry delay (refused while draining, or busy), %d refused or cut before an answer",
		t.Refused, t.Unanswered)
	g.printf("  so far: %d duplicated, %d order sequence numbers skipped, %d reconnects", t.Duplicates, t.Lost, t.Reconnects)
	// The server's memory from then on.
	points := slices.DeleteFunc([]time.Duration{time.Second, 2 * time.Second, 5 * time.Second}, func(d time.Duration) bool { return d >= g.cfg.Settle })
	var marks []string
	for _, at := range append(points, g.cfg.Settle) {
		time.Sleep(time.Until(right.at.Add(at)))
		s := g.sample()
		marks = append(marks, fmt.Sprintf("%s after %s", mib(s.rss), at))
		r.memLater = s.rss
	}
	was := fmt.Sprintf("%s with no streams; ", mib(before.rss))
	if restarted {
		was = fmt.Sprintf("the old process %s; the new one ", mib(before.rss))
	}
	g.printf("  server RSS: %s%s when every stream was live; %s", was, mib(right.rss), strings.Join(marks, ", "))
	g.printf("    Go heap in use %s, stacks %s, goroutines %.0f, open streams %.0f (when every stream was live)",
		mib(int64(right.metrics["go_memstats_heap_inuse_bytes"])), mib(int64(right.metrics["go_memstats_stack_inuse_bytes"])),
		right.metrics["go_goroutines"], right.metrics["ordertracker_streams_open"])
	// Every backend reports its transactions within statsDelay.
	time.Sleep(time.Until(time.Unix(0, max(t.LiveLast, lc.ReadyAt)).Add(statsDelay)))
	return r, nil
}

// loadAverage is the machine's load average over 1, 5 and 15 minutes.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// correct sets the phase's transactions from the readings before it and
// after it, less the server's steady rate over that time, and prints them.
func (r *phaseResult) correct(a, b pgStats, steadyRate float64, g *gen) {
	d := diffStats(a, b, loadgenRole)
	steady := steadyRate * d.elapsed.Seconds()
	r.xacts = float64(d.serverXacts()) - steady
	g.printf("  %s, database: the server ran %d transactions in %s, %.0f of them beyond its steady %.1f/s: %.3f per stream (%d of the load generator's own not counted)",
		r.name, d.serverXacts(), d.elapsed.Round(time.Millisecond), r.xacts, steadyRate, r.xacts/float64(max(r.streams, 1)), d.own)
	g.printf("    statements of the server: %d: %s", d.serverCalls(), topStatements(d, 8))
}

// topStatements lists the n statements run most, with their calls.
func topStatements(d statsDelta, n int) string {
	var parts []string
	for i, s := range d.server {
		if i == n {
			parts = append(parts, fmt.Sprintf("%d others", len(d.server)-n))
			break
		}
		parts = append(parts, fmt.Sprintf("%d× %q", s.calls, s.query))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "; ")
}
