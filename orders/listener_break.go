package orders

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// noteBackend remembers the server process of a new connection, for
// Terminate. It asks the server rather than the connection: behind a pooler
// in session mode the process ID the client was told is the pooler's own.
func (l *Listener) noteBackend(ctx context.Context, conn *pgx.Conn) error {
	var pid int32
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		return fmt.Errorf("read the listener's backend: %w", err)
	}
	l.backend.Store(pid)
	return nil
}

// Terminate ends the listener's database connection from the server's side
// (pg_terminate_backend, through pool), as a restart of the server or a
// network failure would: the demo page's control, to watch the listener
// reconnect, LISTEN again and catch up from the log, so that nothing
// committed meanwhile is lost or sent twice. The role of pool must be the
// listener's, or hold pg_signal_backend. Without a connection it returns
// ErrNotListening.
func (l *Listener) Terminate(ctx context.Context, pool *pgxpool.Pool) error {
	pid := l.backend.Load()
	if pid == 0 {
		return ErrNotListening
	}
	var ended bool
	if err := pool.QueryRow(ctx, "SELECT pg_terminate_backend($1)", pid).Scan(&ended); err != nil {
		return fmt.Errorf("terminate the listener's connection: %w", err)
	}
	if !ended {
		return ErrNotListening // it ended by itself meanwhile
	}
	return nil
}
