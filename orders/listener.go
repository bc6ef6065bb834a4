package orders

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Channel is the NOTIFY channel on which the database announces new events.
const Channel = "order_update"

// catchUpPage is how many events one catch-up query reads at most.
const catchUpPage = 1000

var (
	// ErrNotListening is what Ready reports while the listener has no
	// LISTEN connection.
	ErrNotListening = errors.New("not connected")
	// ErrDeaf is what Ready reports while the listener's connection is up
	// but its own probe notifications do not come back to it.
	ErrDeaf = errors.New("cannot hear notifications")
	// ErrUnproven is what Ready reports between a connect and the first
	// probe that comes back on it.
	ErrUnproven = errors.New("waiting for its first probe notification to come back")
)

// A Listener follows the event log for one process. It holds the process's
// one LISTEN connection and hands every event, once and in position order,
// to its handlers.
//
// A notification is only a wake-up call carrying positions; the events
// themselves are read from the log after the last position handed on. That
// makes the recovery from a lost connection the same code as the normal
// path: Postgres drops notifications sent while a listener is away, so after
// every reconnect the Listener LISTENs again first and then reads everything
// after its position, and notifications for events it has already read are
// skipped without a query. The same reading, on a timer, is the safety net
// for a connection that is up but hears nothing (see Probe).
type Listener struct {
	config   *pgx.ConnConfig
	log      *slog.Logger
	handlers []func([]Event)

	// Set by Probe before Run; pool is nil when the listener does not probe.
	pool  *pgxpool.Pool
	probe ProbeOptions
	id    string // tells this listener's probes from everyone else's

	position atomic.Int64 // written by Run only
	started  bool         // position is set; owned by Run once it runs
	connects int          // owned by Run
	probes   int64        // probes sent; owned by Run

	connected       atomic.Bool
	heard           atomic.Bool // the latest probe on this connection came back in time
	deaf            atomic.Bool // a probe went unheard, and none has come back since
	reconnects      atomic.Uint64
	backend         atomic.Int32 // the server process of the current connection; 0 when none (listener_break.go)
	lastNotified    atomic.Int64 // unix nanoseconds of the last notification of any kind
	safetyNetEvents atomic.Uint64

	mu      sync.Mutex
	lastErr error // why the latest connection ended or failed; guarded by mu
}

// ProbeOptions configure how a Listener proves that it hears.
type ProbeOptions struct {
	// Interval is how often a listener that hears sends a probe; zero
	// means 30 seconds. A listener sends one on every connect as well.
	Interval time.Duration
	// Timeout is how long a probe may take to come back before the
	// listener counts as deaf; zero means 5 seconds.
	Timeout time.Duration
	// DeafInterval is how often a deaf listener reads the log by itself,
	// and probes again, until a probe comes back; zero means 2 seconds. It
	// bounds the delay of every event while notifications do not arrive.
	DeafInterval time.Duration
	// SafetyNet is how often a listener that hears reads the log by
	// itself all the same; zero means one minute.
	SafetyNet time.Duration
	// Fix is added to what the listener logs and reports when it cannot
	// hear: how to give it a connection that hears, in the words of the
	// program's configuration. Empty means nothing is added.
	Fix string
}

// NewListener returns a Listener that connects with config (a copy is
// taken). Add handlers with Handle, and a probe with Probe, before calling
// Run.
func NewListener(config *pgx.ConnConfig, log *slog.Logger) *Listener {
	if log == nil {
		log = slog.Default()
	}
	return &Listener{config: config.Copy(), log: log, id: rand.Text()}
}

// From makes the listener hand on every event after position, the first
// time it connects as after any reconnect. Without it, the listener starts at
// the head of the log when it first connects. A web process calls it with the
// head read before it serves any stream: otherwise an event that committed
// after a stream's replay but before the listener's first connection would
// reach neither. Call it before Run.
func (l *Listener) From(position int64) {
	l.position.Store(position)
	l.started = true
}

// Handle adds a handler. Handlers are called from Run's goroutine, one batch
// at a time, in position order; they must not block.
func (l *Listener) Handle(h func([]Event)) { l.handlers = append(l.handlers, h) }

// Probe makes the listener prove that it hears. On every connect, and then
// every opts.Interval, it sends a probe notification on Channel through
// pool, the pool the writers use, so that a probe that comes back proves the
// path their notifications take to this listener's session. (Sent on the
// listening connection itself, it would prove nothing: a session hears its
// own notifications even through a pooler that hides everyone else's.)
//
// A probe that does not come back within opts.Timeout means a transaction
// pooler is in between, or the connection reaches another database than
// the writers' (a standby refuses LISTEN outright), or it has stalled. The
// listener then asks its connection for an answer, and makes a new one if
// none comes; otherwise it counts as deaf (see Ready), says so in the log
// once, and reads the log by itself every opts.DeafInterval, so that events
// are late but never lost, until a probe comes back. These reads, the
// listener's safety net, go through pool, and so do those it makes while it
// has no connection at all.
//
// Without Probe, the listener sends no probes, counts as hearing while it is
// connected, and reads the log by itself, on its connection, once a minute.
// Call it before Run.
func (l *Listener) Probe(pool *pgxpool.Pool, opts ProbeOptions) {
	if opts.Interval <= 0 {
		opts.Interval = 30 * time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.DeafInterval <= 0 {
		opts.DeafInterval = 2 * time.Second
	}
	if opts.SafetyNet <= 0 {
		opts.SafetyNet = time.Minute
	}
	l.pool, l.probe = pool, opts
}

// Connected reports whether the LISTEN connection is up.
func (l *Listener) Connected() bool { return l.connected.Load() }

// Ready reports nil when the listener is connected and, if it probes, its
// latest probe came back in time; otherwise an error wrapping
// ErrNotListening, ErrDeaf or ErrUnproven that says why.
func (l *Listener) Ready() error {
	switch {
	case !l.connected.Load():
		l.mu.Lock()
		last := l.lastErr
		l.mu.Unlock()
		if last == nil {
			return ErrNotListening
		}
		if isStandby(last) {
			return fmt.Errorf("%w: %v%s", ErrNotListening, last, l.fix())
		}
		return fmt.Errorf("%w: %v", ErrNotListening, last)
	case l.pool == nil:
		return nil
	case l.deaf.Load():
		return fmt.Errorf("%w: its own probe did not come back within %v on the LISTEN connection "+
			"(as happens through a transaction pooler, or on a connection to another database than the writers'); "+
			"until one does, events arrive late, by reading the log every %v%s",
			ErrDeaf, l.probe.Timeout, l.probe.DeafInterval, l.fix())
	case !l.heard.Load():
		return ErrUnproven
	}
	return nil
}

// Hears reports whether the listener is connected and its latest probe, if
// it probes, came back in time.
func (l *Listener) Hears() bool { return l.Ready() == nil }

// Reconnects counts the times the connection was lost and made again.
func (l *Listener) Reconnects() uint64 { return l.reconnects.Load() }

// Position is the position of the last event handed on.
func (l *Listener) Position() int64 { return l.position.Load() }

// SinceNotification is how long ago the listener last heard a
// notification, probes included; before the first one, how long it has run.
func (l *Listener) SinceNotification() time.Duration {
	at := l.lastNotified.Load()
	if at == 0 {
		return 0
	}
	return time.Since(time.Unix(0, at))
}

// SafetyNetEvents counts the events handed on by a read of the log that no
// notification prompted: each one reached this process late, because its
// notification did not (or had not yet).
func (l *Listener) SafetyNetEvents() uint64 { return l.safetyNetEvents.Load() }

// Run listens until ctx is done, reconnecting with backoff whenever the
// connection is lost. It returns nil when ctx ends.
func (l *Listener) Run(ctx context.Context) error {
	l.lastNotified.Store(time.Now().UnixNano())
	var backoff time.Duration
	var lastLogged string
	for {
		began, connects := time.Now(), l.connects
		err := l.listen(ctx)
		l.connected.Store(false)
		if ctx.Err() != nil {
			return nil
		}
		l.mu.Lock()
		l.lastErr = err
		l.mu.Unlock()
		if time.Since(began) > time.Minute {
			backoff = 0 // it was a good connection; try again at once
		}
		backoff = min(max(2*backoff, 50*time.Millisecond), 5*time.Second)
		// The same failure over and over (a server that refuses LISTEN, a
		// database that is down) is said once, not at every attempt.
		level := slog.LevelWarn
		if err.Error() == lastLogged && l.connects == connects {
			level = slog.LevelDebug
		}
		lastLogged = err.Error()
		l.log.Log(ctx, level, "listener lost its connection; reconnecting", "err", err, "in", backoff)
		if l.pool != nil && l.started {
			// Without a connection nothing is heard: read the log through
			// the pool meanwhile, so that events come late, not never.
			if err := l.catchUp(ctx, l.pool, bySafetyNet); err != nil && ctx.Err() == nil {
				l.log.Debug("listener cannot read the log through the pool either", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
	}
}

// A readCause says what made the listener read the log.
type readCause int

const (
	byNotification readCause = iota // a notification, or a (re)connect
	bySafetyNet                     // the clock: nothing announced these events
)

// payload is what a notification on Channel carries: the positions of the
// events a statement logged (see notify_order_events), or, from a listener's
// probe, only Probe, which no event notification has.
type payload struct {
	Last  int64  `json:"last"`
	Probe string `json:"probe,omitempty"`
}

// session is what the listener keeps about one connection.
type session struct {
	conn *pgx.Conn

	probe         string    // the Probe of the one in flight; "" when none is
	probeDeadline time.Time // when the one in flight counts as unheard
	nextProbe     time.Time // when the next one goes out
	nextRead      time.Time // when the listener next reads the log by itself
	// unread is when the first notification not yet followed by a read of
	// the log was heard; zero when there is none.
	unread time.Time
}

// listen runs one connection: LISTEN, catch up, probe, then follow
// notifications, probes and the safety net's clock.
//
// While a probe is in flight, the listening connection runs no statement,
// and a notification heard then is followed up once the probe is decided.
// A transaction pooler passes a notification on to a client only when the
// server session that holds it runs one of that client's statements: a
// probe would come back through the listener's own statements and prove
// nothing. (On a direct connection the probe takes a round trip, so the
// wait is a millisecond.) For the same reason the safety net reads the log
// through the pool, not on the listening connection.
func (l *Listener) listen(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, l.config)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		conn.Close(closeCtx)
	}()
	// LISTEN before reading the log: whatever commits after this is either
	// in the catch-up or announced by a notification.
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if err := l.noteBackend(ctx, conn); err != nil {
		return err
	}
	defer l.backend.Store(0)
	if !l.started {
		// Nothing needs the past: start at the head.
		p, err := head(ctx, conn)
		if err != nil {
			return err
		}
		l.position.Store(p)
		l.started = true
	}
	if l.connects++; l.connects == 1 {
		l.log.Info("listener connected", "channel", Channel, "position", l.Position())
	} else {
		l.reconnects.Add(1)
		l.log.Info("listener reconnected; catching up", "channel", Channel, "position", l.Position())
	}
	l.heard.Store(false)
	l.connected.Store(true)
	if err := l.catchUp(ctx, conn, byNotification); err != nil {
		return err
	}
	s := &session{conn: conn, nextRead: time.Now().Add(l.safetyNetInterval())}
	if l.pool != nil {
		l.sendProbe(ctx, s)
	}
	for {
		wake := s.nextRead
		if s.probe != "" {
			wake = earliest(wake, s.probeDeadline)
		} else if l.pool != nil {
			wake = earliest(wake, s.nextProbe)
		}
		n, err := waitForNotification(ctx, conn, time.Until(wake))
		if err != nil {
			return fmt.Errorf("wait for notification: %w", err)
		}
		if n != nil {
			l.notified(n, s)
		}
		now := time.Now()
		if s.probe != "" && !now.Before(s.probeDeadline) {
			if err := l.unheard(ctx, s); err != nil {
				return err
			}
			s.nextRead = earliest(s.nextRead, now.Add(l.safetyNetInterval())) // deaf: read soon
		}
		if !s.unread.IsZero() && s.probe == "" {
			if err := l.catchUp(ctx, conn, byNotification); err != nil {
				return err
			}
			s.unread = time.Time{}
		}
		if !now.Before(s.nextRead) {
			if err := l.safetyNet(ctx, s); err != nil {
				return err
			}
			s.nextRead = now.Add(l.safetyNetInterval())
		}
		if l.pool != nil && s.probe == "" && !now.Before(s.nextProbe) {
			l.sendProbe(ctx, s)
		}
	}
}

// waitForNotification waits up to d for a notification, and returns nil,
// nil if none came: a deadline leaves a pgx connection usable, unlike the
// end of ctx.
func waitForNotification(ctx context.Context, conn *pgx.Conn, d time.Duration) (*pgconn.Notification, error) {
	waitCtx, cancel := context.WithTimeout(ctx, max(d, time.Millisecond))
	defer cancel()
	n, err := conn.WaitForNotification(waitCtx)
	if err != nil && ctx.Err() == nil && waitCtx.Err() != nil && pgconn.Timeout(err) {
		return nil, nil
	}
	return n, err
}

// notified handles one notification: a probe of ours comes back, anyone
// else's is ignored, and an event notification calls for a read of the log
// unless an earlier read already went past it.
func (l *Listener) notified(n *pgconn.Notification, s *session) {
	noticed := time.Now()
	l.lastNotified.Store(noticed.UnixNano())
	var p payload
	err := json.Unmarshal([]byte(n.Payload), &p)
	switch {
	case err == nil && p.Probe != "":
		if p.Probe == s.probe {
			s.probe, s.probeDeadline = "", time.Time{}
			l.hearing()
		}
	case err == nil && p.Last != 0 && p.Last <= l.Position():
		// An earlier read already handed it on.
	case s.unread.IsZero():
		s.unread = noticed
	}
}

// safetyNet reads the log without a notification to prompt it: through
// the pool when the listener probes (see listen), else on its connection.
func (l *Listener) safetyNet(ctx context.Context, s *session) error {
	if l.pool == nil {
		return l.catchUp(ctx, s.conn, bySafetyNet)
	}
	if err := l.catchUp(ctx, l.pool, bySafetyNet); err != nil && ctx.Err() == nil {
		// The pool's trouble, not the listener's: its own reads go on.
		l.log.Debug("listener cannot read the log through the pool", "err", err)
	}
	return nil
}

// sendProbe sends a probe through the pool. A pool that cannot send it is
// not the listener's trouble (the readiness of the database says so); the
// next probe is tried after a deaf interval.
func (l *Listener) sendProbe(ctx context.Context, s *session) {
	l.probes++
	id := fmt.Sprintf("%s.%d", l.id, l.probes)
	body, _ := json.Marshal(payload{Probe: id})
	sendCtx, cancel := context.WithTimeout(ctx, l.probe.Timeout)
	defer cancel()
	now := time.Now()
	if _, err := l.pool.Exec(sendCtx, "SELECT pg_notify($1, $2)", Channel, string(body)); err != nil {
		if ctx.Err() == nil {
			l.log.Debug("listener cannot send its probe", "err", err)
		}
		s.nextProbe = now.Add(l.probe.DeafInterval)
		return
	}
	s.probe, s.probeDeadline = id, now.Add(l.probe.Timeout)
	s.nextProbe = now.Add(l.probe.Interval)
}

// unheard handles a probe that did not come back in time: a connection
// that does not answer either is made anew; one that answers is deaf.
func (l *Listener) unheard(ctx context.Context, s *session) error {
	s.probe, s.probeDeadline = "", time.Time{}
	s.nextProbe = time.Now().Add(l.probe.DeafInterval)
	pingCtx, cancel := context.WithTimeout(ctx, l.probe.Timeout)
	defer cancel()
	if err := s.conn.Ping(pingCtx); err != nil {
		return fmt.Errorf("probe did not come back within %v, and the connection does not answer: %w", l.probe.Timeout, err)
	}
	l.heard.Store(false)
	if !l.deaf.Swap(true) {
		l.log.Warn("listener cannot hear: its own probe notification did not come back on the LISTEN connection "+
			"(as happens through a transaction pooler, or on a connection to another database than the writers'); "+
			"events arrive late, by reading the log",
			"timeout", l.probe.Timeout, "read_every", l.probe.DeafInterval, "fix", l.probe.Fix)
	}
	return nil
}

// hearing records a probe that came back.
func (l *Listener) hearing() {
	l.heard.Store(true)
	if l.deaf.Swap(false) {
		l.log.Info("listener hears its probe notifications again")
	}
}

// safetyNetInterval is how long until the listener reads the log by itself.
func (l *Listener) safetyNetInterval() time.Duration {
	switch {
	case l.pool == nil:
		return time.Minute
	case l.deaf.Load():
		return l.probe.DeafInterval
	}
	return l.probe.SafetyNet
}

// fix is ProbeOptions.Fix as the end of a sentence.
func (l *Listener) fix() string {
	if l.probe.Fix == "" {
		return ""
	}
	return "; " + l.probe.Fix
}

// catchUp hands on every event after the listener's position, each marked
// as noticed when the read that found it returned. That is after the
// notification that prompted the read, but an event can commit between the
// two and be found by the same read: it was not heard of before it existed.
func (l *Listener) catchUp(ctx context.Context, q querier, cause readCause) error {
	for {
		events, err := eventsAfter(ctx, q, l.Position(), catchUpPage)
		if err != nil {
			return err
		}
		noticed := time.Now()
		if len(events) == 0 {
			return nil
		}
		l.position.Store(events[len(events)-1].Position)
		if cause == bySafetyNet {
			l.safetyNetEvents.Add(uint64(len(events)))
		}
		for i := range events {
			events[i].Noticed = noticed
		}
		for _, h := range l.handlers {
			h(events)
		}
		if len(events) < catchUpPage {
			return nil
		}
	}
}

// earliest is the earliest of the times that are set.
func earliest(first time.Time, more ...time.Time) time.Time {
	for _, t := range more {
		if !t.IsZero() && t.Before(first) {
			first = t
		}
	}
	return first
}

// isStandby reports whether err is a server refusing LISTEN because it is
// a hot standby (read_only_sql_transaction: "cannot execute LISTEN during
// recovery").
func isStandby(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "25006"
}

// NotificationQueueUsage is the fraction of the server's notification queue
// in use. Notifications wait there until every listener has read them: a
// listener that stops reading fills it, and a full queue makes every
// notifying commit fail.
func (s *Store) NotificationQueueUsage(ctx context.Context) (float64, error) {
	var usage float64
	if err := s.pool.QueryRow(ctx, `SELECT pg_notification_queue_usage()`).Scan(&usage); err != nil {
		return 0, fmt.Errorf("read the notification queue's usage: %w", err)
	}
	return usage, nil
}
