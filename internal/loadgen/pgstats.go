package loadgen

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// This file reads what PostgreSQL itself counted: transactions in the
// database (pg_stat_database), calls of each statement by role
// (pg_stat_statements), and WAL syncs (pg_stat_wal). The load generator
// works as its own role on a throwaway PostgreSQL, so its statements are
// told from the server's; each of them is one transaction (it uses no
// explicit transactions and its pool sends no pings), which is how the
// database's count of transactions is corrected for them.
//
// pg_stat_statements counts a statement when it ends. The other views are
// cumulative statistics, which a busy backend reports at most once a
// second and an idle one within ten: readings meant to count every
// transaction of a phase are taken statsDelay after it.

// statsDelay is how long after a phase every backend has reported its
// transactions to pg_stat_database.
const statsDelay = 11 * time.Second

// pgStats is what PostgreSQL had counted at one moment.
type pgStats struct {
	at    time.Time
	xacts int64 // commits and rollbacks in the database
	// calls of each statement, by role and query id; nil without
	// pg_stat_statements.
	calls map[stmtKey]stmtCalls
}

type stmtKey struct {
	role    string
	queryID int64
}

type stmtCalls struct {
	query string
	calls int64
}

// readStats reads the counters in one statement, so that the reading is
// counted in the next one whole and in none of its own.
func readStats(ctx context.Context, pool *pgxpool.Pool, withStatements bool) (pgStats, error) {
	st := pgStats{at: time.Now()}
	if !withStatements {
		err := pool.QueryRow(ctx, `SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()`).Scan(&st.xacts)
		if err != nil {
			return st, fmt.Errorf("read pg_stat_database: %w", err)
		}
		return st, nil
	}
	rows, err := pool.Query(ctx, `
SELECT d.xact_commit + d.xact_rollback, coalesce(r.rolname, ''), coalesce(s.queryid, 0), coalesce(s.query, ''), coalesce(s.calls, 0)
FROM pg_stat_database d
LEFT JOIN pg_stat_statements s ON s.dbid = d.datid AND s.toplevel
LEFT JOIN pg_roles r ON r.oid = s.userid
WHERE d.datname = current_database()`)
	if err != nil {
		return st, fmt.Errorf("read pg_stat_statements: %w", err)
	}
	defer rows.Close()
	st.calls = make(map[stmtKey]stmtCalls)
	for rows.Next() {
		var k stmtKey
		var c stmtCalls
		if err := rows.Scan(&st.xacts, &k.role, &k.queryID, &c.query, &c.calls); err != nil {
			return st, fmt.Errorf("read pg_stat_statements: %w", err)
		}
		if k.role != "" {
			st.calls[k] = c
		}
	}
	return st, rows.Err()
}

// A statsDelta is what PostgreSQL counted between two readings.
type statsDelta struct {
	elapsed time.Duration
	xacts   int64
	// own is how many statements (and so transactions) the load
	// generator ran; server is the statements of the other roles.
	own    int64
	server []stmtDelta // by calls, most first
}

type stmtDelta struct {
	query string
	calls int64
}

// serverCalls is how many statements the server ran.
func (d statsDelta) serverCalls() int64 {
	var n int64
	for _, s := range d.server {
		n += s.calls
	}
	return n
}

// serverXacts is how many transactions the server ran: all of the
// database's, less the load generator's.
func (d statsDelta) serverXacts() int64 { return d.xacts - d.own }

// diffStats returns what was counted between a and b; ownRole's statements
// are the load generator's. A statement that pg_stat_statements evicted in
// between counts from zero.
func diffStats(a, b pgStats, ownRole string) statsDelta {
	d := statsDelta{elapsed: b.at.Sub(a.at), xacts: b.xacts - a.xacts}
	server := map[string]int64{}
	for k, c := range b.calls {
		n := c.calls - a.calls[k].calls
		if n <= 0 {
			continue
		}
		if k.role == ownRole {
			d.own += n
			continue
		}
		server[oneLine(c.query)] += n
	}
	for q, n := range server {
		d.server = append(d.server, stmtDelta{q, n})
	}
	sort.Slice(d.server, func(i, j int) bool {
		if d.server[i].calls != d.server[j].calls {
			return d.server[i].calls > d.server[j].calls
		}
		return d.server[i].query < d.server[j].query
	})
	return d
}

// oneLine squeezes a statement's white space and, if it is long, keeps
// its start and its WHERE clause (or what follows FROM), which tell apart
// statements that read the same columns.
func oneLine(q string) string {
	q = strings.Join(strings.Fields(q), " ")
	const most = 100
	if len(q) <= most {
		return q
	}
	i := strings.Index(q, " WHERE ")
	if i < 0 {
		i = strings.Index(q, " FROM ")
	}
	if i < 0 || i < 30 {
		return q[:most-3] + "..."
	}
	tail := q[i:]
	if len(tail) > most-34 {
		tail = tail[:most-37] + "..."
	}
	return q[:30] + " …" + tail
}

// walStats is the WAL's counters at one moment (pg_stat_wal).
type walStats struct {
	syncs    int64
	syncTime time.Duration // with track_wal_io_timing
	bytes    int64
}

func readWAL(ctx context.Context, pool *pgxpool.Pool) (walStats, error) {
	var w walStats
	var ms float64
	err := pool.QueryRow(ctx, `SELECT wal_sync, wal_sync_time, wal_bytes::bigint FROM pg_stat_wal`).Scan(&w.syncs, &ms, &w.bytes)
	w.syncTime = time.Duration(ms * float64(time.Millisecond))
	if err != nil {
		return w, fmt.Errorf("read pg_stat_wal: %w", err)
	}
	return w, nil
}
