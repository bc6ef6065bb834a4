package loadgen

import (
	"strings"
	"testing"
	"time"
)

// The database's transactions are the server's less the load generator's
// statements; statements the two readings share count their difference,
// and one first seen in the second counts whole.
func TestDiffStatsTellsTheServerFromTheLoadGenerator(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a := pgStats{at: at, xacts: 1000, calls: map[stmtKey]stmtCalls{
		{"postgres", 1}:  {"SELECT data FROM sessions WHERE token = $1", 10},
		{"postgres", 2}:  {"SELECT coalesce(max(position), $1) FROM order_events", 5},
		{loadgenRole, 3}: {"UPDATE orders SET status = $1", 50},
	}}
	b := pgStats{at: at.Add(12 * time.Second), xacts: 1500, calls: map[stmtKey]stmtCalls{
		{"postgres", 1}:  {"SELECT data FROM sessions WHERE token = $1", 210},
		{"postgres", 2}:  {"SELECT coalesce(max(position), $1) FROM order_events", 5},
		{"postgres", 4}:  {"SELECT id FROM orders WHERE token = $1", 100},
		{loadgenRole, 3}: {"UPDATE orders SET status = $1", 70},
		{loadgenRole, 5}: {"SELECT token, seq FROM orders WHERE token = ANY($1)", 1},
	}}
	d := diffStats(a, b, loadgenRole)
	if d.elapsed != 12*time.Second || d.xacts != 500 || d.own != 21 {
		t.Errorf("got %s, %d transactions, %d own; want 12s, 500, 21", d.elapsed, d.xacts, d.own)
	}
	if got, want := d.serverXacts(), int64(479); got != want {
		t.Errorf("server transactions: got %d, want %d", got, want)
	}
	if got, want := d.serverCalls(), int64(300); got != want {
		t.Errorf("server statements: got %d, want %d", got, want)
	}
	if len(d.server) != 2 || d.server[0].calls != 200 || d.server[1].calls != 100 {
		t.Errorf("server statements, most first: got %+v", d.server)
	}
	if got := topStatements(d, 1); !strings.Contains(got, "200×") || !strings.Contains(got, "1 others") {
		t.Errorf("topStatements: got %q", got)
	}
}

func TestOneLineKeepsWhatTellsStatementsApart(t *testing.T) {
	t.Parallel()
	cols := "e.position, e.order_id, o.token, e.seq, e.status, e.actor, e.at, o.customer_name, o.items, o.total_cents"
	events := oneLine("\n\t\tSELECT " + cols + "\n\t\tFROM order_events e JOIN orders o ON o.id = e.order_id\n\t\tWHERE e.order_id = $1 AND e.seq > $2\n\t\tORDER BY e.seq")
	after := oneLine("SELECT " + cols + " FROM order_events e JOIN orders o ON o.id = e.order_id WHERE e.position > $1 ORDER BY e.position LIMIT $2")
	if events == after {
		t.Errorf("two statements read the same: %q", events)
	}
	for _, s := range []string{events, after} {
		if len(s) > 110 || strings.ContainsAny(s, "\n\t") {
			t.Errorf("not one short line: %q", s)
		}
	}
	if got := oneLine("SELECT  1"); got != "SELECT 1" {
		t.Errorf("got %q, want %q", got, "SELECT 1")
	}
}

func TestWALLine(t *testing.T) {
	t.Parallel()
	a := walStats{syncs: 100, syncTime: time.Second, bytes: 1 << 20}
	b := walStats{syncs: 300, syncTime: 3 * time.Second, bytes: 3 << 20}
	got := walLine(a, b, nil, 400)
	for _, want := range []string{"200 syncs", "0.50 per transaction", "10ms each", "2.0 MiB"} {
		if !strings.Contains(got, want) {
			t.Errorf("walLine: got %q, want it to hold %q", got, want)
		}
	}
}
