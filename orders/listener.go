package orders

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// Channel is the NOTIFY channel on which the database announces new events.
const Channel = "order_update"

// catchUpPage is how many events one catch-up query reads at most.
const catchUpPage = 1000

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
// skipped without a query.
type Listener struct {
	config   *pgx.ConnConfig
	log      *slog.Logger
	handlers []func([]Event)

	position   int64 // owned by Run once it runs
	started    bool  // position is set; owned by Run once it runs
	connects   int   // owned by Run
	connected  atomic.Bool
	reconnects atomic.Uint64
}

// NewListener returns a Listener that connects with config (a copy is
// taken). Add handlers with Handle before calling Run.
func NewListener(config *pgx.ConnConfig, log *slog.Logger) *Listener {
	if log == nil {
		log = slog.Default()
	}
	return &Listener{config: config.Copy(), log: log}
}

// From makes the listener hand on every event after position, the first
// time it connects as after any reconnect. Without it, the listener starts at
// the head of the log when it first connects. A web process calls it with the
// head read before it serves any stream: otherwise an event that committed
// after a stream's replay but before the listener's first connection would
// reach neither. Call it before Run.
func (l *Listener) From(position int64) {
	l.position = position
	l.started = true
}

// Handle adds a handler. Handlers are called from Run's goroutine, one batch
// at a time, in position order; they must not block.
func (l *Listener) Handle(h func([]Event)) { l.handlers = append(l.handlers, h) }

// Connected reports whether the LISTEN connection is up.
func (l *Listener) Connected() bool { return l.connected.Load() }

// Reconnects counts the times the connection was lost and made again.
func (l *Listener) Reconnects() uint64 { return l.reconnects.Load() }

// Run listens until ctx is done, reconnecting with backoff whenever the
// connection is lost. It returns nil when ctx ends.
func (l *Listener) Run(ctx context.Context) error {
	var backoff time.Duration
	for {
		began := time.Now()
		err := l.listen(ctx)
		l.connected.Store(false)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(began) > time.Minute {
			backoff = 0 // it was a good connection; try again at once
		}
		backoff = min(max(2*backoff, 50*time.Millisecond), 5*time.Second)
		l.log.Warn("listener lost its connection; reconnecting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
	}
}

// listen runs one connection: LISTEN, catch up, then follow notifications.
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
	if !l.started {
		// Nothing needs the past: start at the head.
		if l.position, err = head(ctx, conn); err != nil {
			return err
		}
		l.started = true
	}
	if l.connects++; l.connects == 1 {
		l.log.Info("listener connected", "channel", Channel, "position", l.position)
	} else {
		l.reconnects.Add(1)
		l.log.Info("listener reconnected; catching up", "channel", Channel, "position", l.position)
	}
	l.connected.Store(true)
	if err := l.catchUp(ctx, conn, time.Now()); err != nil {
		return err
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("wait for notification: %w", err)
		}
		noticed := time.Now()
		var p struct{ Last int64 }
		if json.Unmarshal([]byte(n.Payload), &p) == nil && p.Last != 0 && p.Last <= l.position {
			continue // an earlier catch-up already read it
		}
		if err := l.catchUp(ctx, conn, noticed); err != nil {
			return err
		}
	}
}

// catchUp hands on every event after the listener's position, marked as
// noticed at the given time.
func (l *Listener) catchUp(ctx context.Context, conn *pgx.Conn, noticed time.Time) error {
	for {
		events, err := eventsAfter(ctx, conn, l.position, catchUpPage)
		if err != nil {
			return err
		}
		if len(events) == 0 {
			return nil
		}
		l.position = events[len(events)-1].Position
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
