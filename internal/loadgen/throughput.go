package loadgen

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// This file is the throughput scenario: how many changes a second
// PostgreSQL commits, notifies and the server delivers, beside what the
// same machine commits without the order tracker's triggers, so that the
// ceiling's cause shows: the sync of every commit, or what the triggers,
// the NOTIFY and the position lock add to it.

// The plain baselines move the rows of plainTable, a copy of the orders
// with the same columns, constraints and indexes but none of the triggers:
// no state machine, no event log, no NOTIFY, no position lock. Two
// statement triggers, each enabled only in its own phase, add back one of
// the last two at a time: a NOTIFY on a channel of its own, or a
// transaction-scoped advisory lock on a key of its own, taken at the end
// of the statement and held until commit as the orders' event trigger
// takes it.
const (
	plainTable   = "loadgen_plain"
	plainNotify  = "loadgen_plain_notify"
	plainLock    = "loadgen_plain_lock"
	plainLockKey = "7470099" // not the orders' key, which it would hold up
)

const createPlain = `
CREATE TABLE ` + plainTable + ` (LIKE orders INCLUDING ALL);
INSERT INTO ` + plainTable + ` OVERRIDING SYSTEM VALUE SELECT * FROM orders;
ANALYZE ` + plainTable + `;
CREATE FUNCTION ` + plainNotify + `() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('` + plainNotify + `', '{"first":1,"last":1,"count":1}');
    RETURN NULL;
END $$;
CREATE FUNCTION ` + plainLock + `() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(` + plainLockKey + `);
    RETURN NULL;
END $$;
CREATE TRIGGER ` + plainNotify + ` AFTER UPDATE ON ` + plainTable + ` FOR EACH STATEMENT EXECUTE FUNCTION ` + plainNotify + `();
CREATE TRIGGER ` + plainLock + ` AFTER UPDATE ON ` + plainTable + ` FOR EACH STATEMENT EXECUTE FUNCTION ` + plainLock + `();
ALTER TABLE ` + plainTable + ` DISABLE TRIGGER ` + plainNotify + `, DISABLE TRIGGER ` + plainLock + `;`

// movePlain makes the same change as moveOrders, and what the orders'
// guard trigger adds to it (the sequence number, the time), without any
// trigger; it goes round the statuses, so its orders never run out.
const movePlain = `
UPDATE ` + plainTable + `
SET status = CASE status WHEN 'received' THEN 'cooking' WHEN 'cooking' THEN 'out_for_delivery'
                         WHEN 'out_for_delivery' THEN 'delivered' ELSE 'received' END,
    actor = 'worker', seq = seq + 1, updated_at = now()
WHERE id = ANY($1)`

// A throughputPhase is one of the scenario's measurements.
type throughputPhase struct {
	name    string
	plain   bool   // on plainTable, not the orders
	trigger string // plainTable's trigger enabled for it; "" for none
	batch   int
}

func (g *gen) throughput(ctx context.Context) error {
	orders := g.cfg.Orders
	if orders == 0 {
		orders = 150_000
	}
	ids, tokens, err := createOrders(ctx, g.pool, orders)
	if err != nil {
		return err
	}
	if _, err := g.pool.Exec(ctx, createPlain); err != nil {
		return fmt.Errorf("create the plain baseline's table: %w", err)
	}
	start, err := head(ctx, g.pool)
	if err != nil {
		return err
	}
	watched := tokens[:min(g.cfg.OrderStreams, len(tokens))]
	cs, err := g.streams(ctx, append(staffSpecs(g.cfg.StaffStreams, start), orderSpecs(watched)...))
	if err != nil {
		return err
	}
	defer cs.kill()
	phases := []throughputPhase{
		{name: "plain UPDATE, one row per transaction (no triggers, no NOTIFY, no lock)", plain: true, batch: 1},
		{name: "plain UPDATE + NOTIFY, one row per transaction", plain: true, trigger: plainNotify, batch: 1},
		{name: "plain UPDATE + position lock, one row per transaction", plain: true, trigger: plainLock, batch: 1},
		{name: "orders, one change per transaction (naive baseline)", batch: 1},
		{name: fmt.Sprintf("orders, %d changes per transaction", g.cfg.Batch), batch: g.cfg.Batch},
	}
	m := &mover{ids: ids}
	plainMover := &mover{ids: ids, rounds: -1}
	committed := make([][]float64, len(phases))
	for round := range max(g.cfg.Rounds, 1) {
		g.printf("round %d of %d:", round+1, max(g.cfg.Rounds, 1))
		for i, p := range phases {
			rate, err := g.throughputPhase(ctx, cs, p, m, plainMover, start)
			if err != nil {
				return err
			}
			committed[i] = append(committed[i], rate)
		}
	}
	g.printf("committed/s, each round in turn:")
	for i, p := range phases {
		var each []string
		for _, r := range committed[i] {
			each = append(each, fmt.Sprintf("%.0f", r))
		}
		g.printf("  %-80s %s", p.name+":", strings.Join(each, ", "))
	}
	// Finish every watched order, so that its stream can check it got all
	// four events and ended.
	for range 3 {
		if _, err := g.pool.Exec(ctx, moveOrders, ids[:len(watched)]); err != nil {
			return err
		}
	}
	cmd, err := g.expect(ctx, start, 4, 60*time.Second)
	if err != nil {
		return err
	}
	reps, err := cs.finish(cmd)
	if err != nil {
		return err
	}
	b := g.sample()
	g.printf("  dropped slow streams: %.0f", b.metrics["ordertracker_streams_dropped_slow_total"])
	g.printf("  %s", g.checkLine(total(reps)))
	return nil
}

// throughputPhase runs one phase and prints what it did; it returns the
// changes committed per second.
func (g *gen) throughputPhase(ctx context.Context, cs *clients, p throughputPhase, m, plainMover *mover, start int64) (float64, error) {
	if p.trigger != "" {
		if err := setTrigger(ctx, g.pool, p.trigger, true); err != nil {
			return 0, err
		}
		defer setTrigger(ctx, g.pool, p.trigger, false)
	}
	from, err := head(ctx, g.pool)
	if err != nil {
		return 0, err
	}
	walA, walErr := readWAL(ctx, g.pool)
	a := g.sample()
	dr := drive{stmt: moveOrders, batch: p.batch, conns: g.cfg.Conns, d: g.cfg.Duration}
	mv := m
	if p.plain {
		dr.stmt, mv = movePlain, plainMover
	}
	res, err := dr.run(ctx, g.pool, mv)
	if err != nil {
		return 0, err
	}
	walB, walErrB := readWAL(ctx, g.pool)
	rate := float64(res.moves) / res.elapsed.Seconds()
	if p.plain {
		b := g.sample()
		g.printf("  %s, %d connections: %d changes in %d transactions in %s: %.0f committed/s",
			p.name, g.cfg.Conns, res.moves, res.txs, res.elapsed.Round(time.Millisecond), rate)
		g.printf("    transaction time %s", res.txTime.String())
		g.printf("    %s", walLine(walA, walB, errors.Join(walErr, walErrB), res.txs))
		g.printf("    %s", cpuLine(a, b, res.moves, "change"))
		return rate, nil
	}
	cmd, err := g.expect(ctx, start, 0, 60*time.Second)
	if err != nil {
		return 0, err
	}
	reps, err := cs.each(&cmd)
	if err != nil {
		return 0, err
	}
	b := g.sample()
	t := total(reps)
	endToEnd := 0.0
	if t.Reached > 0 {
		endToEnd = float64(cmd.StaffLast-from) / time.Unix(0, t.Reached).Sub(a.at).Seconds()
	}
	g.printf("  %s, %d connections: %d changes in %d transactions in %s: %.0f committed/s; delivered to every stream at %.0f/s end to end",
		p.name, g.cfg.Conns, res.moves, res.txs, res.elapsed.Round(time.Millisecond), rate, endToEnd)
	g.printf("    transaction time %s", res.txTime.String())
	g.printf("    %s", walLine(walA, walB, errors.Join(walErr, walErrB), res.txs))
	g.printf("    delivery latency %s", t.Latency.String())
	g.printf("    %s", cpuLine(a, b, res.moves, "change"))
	return rate, nil
}

// setTrigger enables or disables one of plainTable's triggers.
func setTrigger(ctx context.Context, pool *pgxpool.Pool, trigger string, on bool) error {
	verb := "DISABLE"
	if on {
		verb = "ENABLE"
	}
	if _, err := pool.Exec(ctx, "ALTER TABLE "+plainTable+" "+verb+" TRIGGER "+trigger); err != nil {
		return fmt.Errorf("%s trigger %s: %w", strings.ToLower(verb), trigger, err)
	}
	return nil
}

// walLine describes the WAL's syncs between two readings, per transaction.
func walLine(a, b walStats, err error, txs int64) string {
	if err != nil {
		return "WAL: " + err.Error()
	}
	syncs := b.syncs - a.syncs
	per := 0.0
	if txs > 0 {
		per = float64(syncs) / float64(txs)
	}
	avg := time.Duration(0)
	if syncs > 0 {
		avg = (b.syncTime - a.syncTime) / time.Duration(syncs)
	}
	return fmt.Sprintf("WAL: %d syncs (%.2f per transaction, %s each on average), %s written",
		syncs, per, round(avg), mib(b.bytes-a.bytes))
}
