package orders

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// A Store keeps orders and their events in PostgreSQL.
type Store struct {
	pool   *pgxpool.Pool
	stages StageDurations
	now    func() time.Time
}

// Options configure a Store.
type Options struct {
	// Stages are the stage durations used to schedule the worker's next move.
	// The zero value means DefaultStageDurations.
	Stages StageDurations
	// Now, when set, replaces the database's clock for every time the store
	// writes or compares, so tests can move time by hand. Nil means the
	// database's now(), one clock for every process.
	Now func() time.Time
}

// NewStore returns a Store over pool.
func NewStore(pool *pgxpool.Pool, opts Options) *Store {
	if opts.Stages == (StageDurations{}) {
		opts.Stages = DefaultStageDurations
	}
	return &Store{pool: pool, stages: opts.Stages, now: opts.Now}
}

// Pool is the store's connection pool.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Stages are the stage durations the store schedules with.
func (s *Store) Stages() StageDurations { return s.stages }

// querier is what the store's reads need: a pool, a connection or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// clock is the time to pass to queries as $now: nil lets the database use now().
func (s *Store) clock() *time.Time {
	if s.now == nil {
		return nil
	}
	t := s.now()
	return &t
}

// micros is d as a number of microseconds for "* interval '1 microsecond'";
// nil (SQL NULL) when there is no next move.
func micros(d time.Duration, ok bool) *int64 {
	if !ok {
		return nil
	}
	us := d.Microseconds()
	return &us
}

const createOrder = `
INSERT INTO orders (token, customer_name, items, total_cents, status, actor, created_at, updated_at, next_move_at)
VALUES ($1, $2, $3, $4, 'received', 'customer',
        coalesce($5::timestamptz, now()), coalesce($5::timestamptz, now()),
        coalesce($5::timestamptz, now()) + $6 * interval '1 microsecond')
RETURNING ` + orderColumns

const orderColumns = `id, token, customer_name, items, total_cents, status, seq, created_at, updated_at, next_move_at, staff_id, staff_name`

// Create validates and stores a new order in status Received. Bad input is
// a *ValidationError.
func (s *Store) Create(ctx context.Context, n NewOrder) (Order, error) {
	n, items, err := n.Validate()
	if err != nil {
		return Order{}, err
	}
	due, _ := s.stages.For(Received)
	for attempt := 0; ; attempt++ {
		rows, _ := s.pool.Query(ctx, createOrder, NewToken(), n.CustomerName, items, Total(items), s.clock(), micros(due, true))
		o, err := pgx.CollectExactlyOneRow(rows, scanOrder)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "orders_token_key" && attempt < 3 {
			continue // a token collision: 130 random bits make this all but impossible
		}
		if err != nil {
			return Order{}, fmt.Errorf("create order: %w", err)
		}
		return o, nil
	}
}

// terminalStatuses are the statuses no move leads out of, for queries.
func terminalStatuses() []string {
	var terminal []string
	for _, s := range Statuses {
		if s.Terminal() {
			terminal = append(terminal, string(s))
		}
	}
	return terminal
}

// Get returns the order with the given token, or ErrNotFound.
func (s *Store) Get(ctx context.Context, token string) (Order, error) {
	if !ValidToken(token) {
		return Order{}, ErrNotFound
	}
	rows, _ := s.pool.Query(ctx, `SELECT `+orderColumns+` FROM orders WHERE token = $1`, token)
	o, err := pgx.CollectExactlyOneRow(rows, scanOrder)
	if errors.Is(err, pgx.ErrNoRows) {
		return Order{}, ErrNotFound
	}
	if err != nil {
		return Order{}, fmt.Errorf("get order: %w", err)
	}
	return o, nil
}

// ListOptions page through orders, newest first.
type ListOptions struct {
	// Limit is the page size; zero means 50, and more than 500 means 500.
	Limit int
	// Before, when not zero, starts the page after the order with this ID.
	Before int64
	// Active keeps only orders that are not finished.
	Active bool
}

// List returns orders newest first.
func (s *Store) List(ctx context.Context, opts ListOptions) ([]Order, error) {
	limit := opts.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 500)
	rows, _ := s.pool.Query(ctx, `
		SELECT `+orderColumns+` FROM orders
		WHERE ($1 = 0 OR id < $1) AND (NOT $2 OR status <> ALL ($4::text[]))
		ORDER BY id DESC
		LIMIT $3`, opts.Before, opts.Active, limit, terminalStatuses())
	list, err := pgx.CollectRows(rows, scanOrder)
	if err != nil {
		return nil, fmt.Errorf("list orders: %w", err)
	}
	return list, nil
}

// Advance moves the order from status from to the next stage, on behalf of
// by. It is a compare-and-set: if the order is no longer in from (someone
// else moved it first) or from has no next stage, nothing changes and the
// error is ErrIllegalTransition.
func (s *Store) Advance(ctx context.Context, token string, from Status, by Actor) (Event, error) {
	to, ok := from.Next()
	if !ok || !from.CanMove(to, by) {
		return Event{}, s.illegal(ctx, token)
	}
	return s.move(ctx, token, from, to, by, StaffMember{})
}

// StaffAdvance is Advance by staff, naming the account that makes the move
// in its event.
func (s *Store) StaffAdvance(ctx context.Context, token string, from Status, who StaffMember) (Event, error) {
	to, ok := from.Next()
	if !ok || !from.CanMove(to, ByStaff) {
		return Event{}, s.illegal(ctx, token)
	}
	return s.move(ctx, token, from, to, ByStaff, who)
}

// StaffCancel is Cancel by staff, naming the account that makes the move
// in its event.
func (s *Store) StaffCancel(ctx context.Context, token string, who StaffMember) (Event, error) {
	o, err := s.Get(ctx, token)
	if err != nil {
		return Event{}, err
	}
	if !o.Status.CanMove(Cancelled, ByStaff) {
		return Event{}, ErrIllegalTransition
	}
	return s.move(ctx, token, o.Status, Cancelled, ByStaff, who)
}

// Cancel cancels the order on behalf of by, if Moves lets by cancel it where
// it is now; otherwise the error is ErrIllegalTransition.
func (s *Store) Cancel(ctx context.Context, token string, by Actor) (Event, error) {
	o, err := s.Get(ctx, token)
	if err != nil {
		return Event{}, err
	}
	if !o.Status.CanMove(Cancelled, by) {
		return Event{}, ErrIllegalTransition
	}
	return s.move(ctx, token, o.Status, Cancelled, by, StaffMember{})
}

const moveOrder = `
UPDATE orders
SET status = $3, actor = $4, updated_at = coalesce($5::timestamptz, now()),
    next_move_at = coalesce($5::timestamptz, now()) + $6 * interval '1 microsecond',
    staff_id = $7, staff_name = $8
WHERE token = $1 AND status = $2
RETURNING id, seq, updated_at`

// move makes one move; who, for a staff move, is the account that makes it
// (zero: none), which the guard clears for any other actor's.
func (s *Store) move(ctx context.Context, token string, from, to Status, by Actor, who StaffMember) (Event, error) {
	if !ValidToken(token) {
		return Event{}, ErrNotFound
	}
	var staffID *int64
	var staffName *string
	if who != (StaffMember{}) {
		staffID, staffName = &who.ID, &who.Name
	}
	var ev Event
	err := s.pool.QueryRow(ctx, moveOrder, token, from, to, by, s.clock(), micros(s.stages.For(to)), staffID, staffName).
		Scan(&ev.OrderID, &ev.Seq, &ev.At)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return Event{}, s.illegal(ctx, token)
	case isIllegalTransition(err):
		return Event{}, ErrIllegalTransition
	case err != nil:
		return Event{}, fmt.Errorf("move order to %s: %w", to, err)
	}
	events, err := s.Events(ctx, ev.OrderID, ev.Seq-1)
	if err != nil || len(events) == 0 {
		return Event{}, fmt.Errorf("read the event of a move to %s: %w", to, err)
	}
	return events[0], nil
}

// illegal tells a move of an order that does not exist from one that is not
// allowed.
func (s *Store) illegal(ctx context.Context, token string) error {
	if _, err := s.Get(ctx, token); err != nil {
		return err
	}
	return ErrIllegalTransition
}

// isIllegalTransition reports whether err is the database's state machine
// guard refusing a move.
func isIllegalTransition(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.ConstraintName == "order_transition"
}

const eventColumns = `e.position, e.order_id, o.token, e.seq, e.status, e.actor, e.at, e.logged_at, o.customer_name, o.items, o.total_cents, e.staff_id, e.staff_name`

// Events returns the order's events after sequence number afterSeq, oldest
// first; afterSeq 0 is the whole history.
func (s *Store) Events(ctx context.Context, orderID int64, afterSeq int) ([]Event, error) {
	rows, _ := s.pool.Query(ctx, `
		SELECT `+eventColumns+`
		FROM order_events e JOIN orders o ON o.id = e.order_id
		WHERE e.order_id = $1 AND e.seq > $2
		ORDER BY e.seq`, orderID, afterSeq)
	events, err := pgx.CollectRows(rows, scanEvent)
	if err != nil {
		return nil, fmt.Errorf("read order events: %w", err)
	}
	return events, nil
}

// EventsAfter returns up to limit events of all orders after position,
// in position order.
func (s *Store) EventsAfter(ctx context.Context, position int64, limit int) ([]Event, error) {
	return eventsAfter(ctx, s.pool, position, limit)
}

func eventsAfter(ctx context.Context, q querier, position int64, limit int) ([]Event, error) {
	rows, _ := q.Query(ctx, `
		SELECT `+eventColumns+`
		FROM order_events e JOIN orders o ON o.id = e.order_id
		WHERE e.position > $1
		ORDER BY e.position
		LIMIT $2`, position, limit)
	events, err := pgx.CollectRows(rows, scanEvent)
	if err != nil {
		return nil, fmt.Errorf("read events after %d: %w", position, err)
	}
	return events, nil
}

// Head is the position of the newest event, 0 when there is none.
func (s *Store) Head(ctx context.Context) (int64, error) {
	return head(ctx, s.pool)
}

func head(ctx context.Context, q querier) (int64, error) {
	rows, _ := q.Query(ctx, `SELECT coalesce(max(position), 0) FROM order_events`)
	p, err := pgx.CollectExactlyOneRow(rows, pgx.RowTo[int64])
	if err != nil {
		return 0, fmt.Errorf("read the newest event position: %w", err)
	}
	return p, nil
}

func scanOrder(row pgx.CollectableRow) (Order, error) {
	var o Order
	var next *time.Time
	var staffID *int64
	var staffName *string
	err := row.Scan(&o.ID, &o.Token, &o.CustomerName, &o.Items, &o.TotalCents, &o.Status, &o.Seq,
		&o.CreatedAt, &o.UpdatedAt, &next, &staffID, &staffName)
	if next != nil {
		o.NextMoveAt = *next
	}
	if staffID != nil && staffName != nil {
		o.Staff = StaffMember{ID: *staffID, Name: *staffName}
	}
	return o, err
}

func scanEvent(row pgx.CollectableRow) (Event, error) {
	var e Event
	var logged *time.Time
	var staffID *int64
	var staffName *string
	err := row.Scan(&e.Position, &e.OrderID, &e.Token, &e.Seq, &e.Status, &e.Actor, &e.At, &logged,
		&e.CustomerName, &e.Items, &e.TotalCents, &staffID, &staffName)
	if logged != nil {
		e.Logged = *logged
	}
	if staffID != nil && staffName != nil {
		e.Staff = StaffMember{ID: *staffID, Name: *staffName}
	}
	return e, err
}

// Recent returns the last events of the log up to position head, at most
// limit of them and none logged longer than age ago (zero: any age), in
// position order: what a web process that starts puts in its replay
// window, so that the clients of the process it replaces resume from
// memory.
func (s *Store) Recent(ctx context.Context, head int64, limit int, age time.Duration) ([]Event, error) {
	rows, _ := s.pool.Query(ctx, `
		SELECT * FROM (
			SELECT `+eventColumns+`
			FROM order_events e JOIN orders o ON o.id = e.order_id
			WHERE e.position <= $1
			  AND ($3::bigint = 0 OR e.logged_at > now() - $3 * interval '1 microsecond')
			ORDER BY e.position DESC
			LIMIT $2
		) recent
		ORDER BY position`, head, limit, age.Microseconds())
	events, err := pgx.CollectRows(rows, scanEvent)
	if err != nil {
		return nil, fmt.Errorf("read the recent events: %w", err)
	}
	return events, nil
}

// Latest returns the latest event of each of the newest limit orders, in
// position order: the current state of the board, as events. Any event
// committed later has a higher position than all of them.
func (s *Store) Latest(ctx context.Context, limit int) ([]Event, error) {
	rows, _ := s.pool.Query(ctx, `
		SELECT `+eventColumns+`
		FROM (SELECT id FROM orders ORDER BY id DESC LIMIT $1) newest
		JOIN orders o ON o.id = newest.id
		JOIN order_events e ON e.order_id = o.id AND e.seq = o.seq
		ORDER BY e.position`, limit)
	events, err := pgx.CollectRows(rows, scanEvent)
	if err != nil {
		return nil, fmt.Errorf("read the latest events: %w", err)
	}
	return events, nil
}

// A StatusKey is an order's place among the orders in its status: when it
// entered the status, then its token, which breaks ties (a worker moves a
// whole batch at one instant). Tokens compare byte by byte. The zero value
// is the place before every order.
type StatusKey struct {
	At    time.Time
	Token string
}

// StatusKey is o's place among the orders in its status: its UpdatedAt is
// when it entered it, since every move sets it.
func (o Order) StatusKey() StatusKey { return StatusKey{At: o.UpdatedAt, Token: o.Token} }

// A StatusPage asks for a page of the orders in one status.
type StatusPage struct {
	Status Status
	// Limit is the page size; zero means 50, and more than 500 means 500.
	Limit int
	// After, when not zero, starts the page after the order at this place.
	After StatusKey
}

// ListStatus returns a page of the orders in one status. An unfinished
// status is a queue and comes oldest first, so that the order that has
// waited longest in it is never the one left off a page; a finished one
// comes newest first, the latest of a long history being what matters.
func (s *Store) ListStatus(ctx context.Context, p StatusPage) ([]Order, error) {
	return listStatus(ctx, s.pool, p)
}

// The two directions of listStatus. A zero After is the start of the queue:
// the comparison is then with -infinity (or infinity) and an empty token, so
// that one statement serves both and the index scan starts at the right
// place either way.
const (
	oldestInStatus = `
		SELECT ` + orderColumns + ` FROM orders
		WHERE status = $1 AND (updated_at, token COLLATE "C") > (coalesce($2::timestamptz, '-infinity'), $3::text COLLATE "C")
		ORDER BY updated_at, token COLLATE "C"
		LIMIT $4`
	newestInStatus = `
		SELECT ` + orderColumns + ` FROM orders
		WHERE status = $1 AND (updated_at, token COLLATE "C") < (coalesce($2::timestamptz, 'infinity'), $3::text COLLATE "C")
		ORDER BY updated_at DESC, token COLLATE "C" DESC
		LIMIT $4`
)

// statusPageQuery is the statement and arguments of the page p.
func statusPageQuery(p StatusPage) (string, []any) {
	limit := p.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 500)
	var after *time.Time // NULL: from the start
	if !p.After.At.IsZero() {
		after = &p.After.At
	}
	if p.Status.Terminal() {
		return newestInStatus, []any{p.Status, after, p.After.Token, limit}
	}
	return oldestInStatus, []any{p.Status, after, p.After.Token, limit}
}

func listStatus(ctx context.Context, q querier, p StatusPage) ([]Order, error) {
	sql, args := statusPageQuery(p)
	rows, _ := q.Query(ctx, sql, args...)
	list, err := pgx.CollectRows(rows, scanOrder)
	if err != nil {
		return nil, fmt.Errorf("list %s orders: %w", p.Status, err)
	}
	return list, nil
}

// countByStatus counts the orders of every status in one pass over the
// table: 2.5 ms at 10,000 orders. Counting each status from the
// orders_board index instead was no faster at 10,000 (the planner scans
// the table for each third) nor at 100,000 with 70,000 delivered (the count
// of the delivered ones dominates either way); see BENCHMARKS.md, "Staff
// board".
const countByStatus = `SELECT status, count(*) FROM orders GROUP BY status`

// Counts returns how many orders there are in each status, with every
// status present (zero when it has none).
func (s *Store) Counts(ctx context.Context) (map[Status]int, error) {
	rows, _ := s.pool.Query(ctx, countByStatus)
	return collectCounts(rows)
}

func collectCounts(rows pgx.Rows) (map[Status]int, error) {
	counts := make(map[Status]int, len(Statuses))
	for _, s := range Statuses {
		counts[s] = 0
	}
	var s Status
	var n int
	_, err := pgx.ForEachRow(rows, []any{&s, &n}, func() error {
		counts[s] = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("count orders by status: %w", err)
	}
	return counts, nil
}

// A Board is every status at one instant: how many orders each holds, the
// first page of each, and the position of the newest event, so that a
// reader who follows the log from Head sees every change after this
// instant exactly once.
type Board struct {
	Head   int64
	Counts map[Status]int
	// Orders holds the first page of each status asked for, in the order
	// ListStatus gives.
	Orders map[Status][]Order
}

// Board reads the board in one snapshot: the head of the log, the count of
// every status, and for each status in limits the first page of that many
// orders. A snapshot (REPEATABLE READ) holds exactly the events up to Head,
// because positions are handed out in commit order; so the counts are
// those after event Head, and adding the events after it keeps them
// exact.
func (s *Store) Board(ctx context.Context, limits map[Status]int) (Board, error) {
	b := Board{Counts: map[Status]int{}, Orders: map[Status][]Order{}}
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		// One round trip for all of it.
		batch := &pgx.Batch{}
		batch.Queue(`SELECT coalesce(max(position), 0) FROM order_events`).QueryRow(func(row pgx.Row) error {
			return row.Scan(&b.Head)
		})
		batch.Queue(countByStatus).Query(func(rows pgx.Rows) error {
			counts, err := collectCounts(rows)
			b.Counts = counts
			return err
		})
		for status, limit := range limits {
			sql, args := statusPageQuery(StatusPage{Status: status, Limit: limit})
			batch.Queue(sql, args...).Query(func(rows pgx.Rows) error {
				list, err := pgx.CollectRows(rows, scanOrder)
				b.Orders[status] = list
				return err
			})
		}
		return tx.SendBatch(ctx, batch).Close()
	})
	if err != nil {
		return Board{}, fmt.Errorf("read the board: %w", err)
	}
	return b, nil
}

// EventsOf returns, in one query, the events of the orders with the given
// tokens after the sequence number after[i] for tokens[i] (nil: none), and
// with them each order's latest event even when it is not after its
// cursor, in position order: a stream of several orders connects with it,
// and learns from it which tokens name an order and which orders have
// ended. Tokens that name no order have no events.
func (s *Store) EventsOf(ctx context.Context, tokens []string, after []*int) ([]Event, error) {
	rows, _ := s.pool.Query(ctx, `
		SELECT `+eventColumns+`
		FROM unnest($1::text[], $2::int[]) AS c(token, after)
		JOIN orders o ON o.token = c.token
		JOIN order_events e ON e.order_id = o.id AND (e.seq > c.after OR e.seq = o.seq)
		ORDER BY e.position`, tokens, after)
	events, err := pgx.CollectRows(rows, scanEvent)
	if err != nil {
		return nil, fmt.Errorf("read the events of %d orders: %w", len(tokens), err)
	}
	return events, nil
}

// FindMax is the most orders Find returns.
const FindMax = 50

// findOrders reads the orders that match a search: the order whose token
// it is, by the unique index on token, whatever its status; and the
// unfinished orders whose customer's name contains it or whose token starts
// with it, read through the orders_board index by status, so that the
// delivered and cancelled orders of a long history are never scanned for a
// name. The second part comes oldest in its status first, as on the board.
const findOrders = `
	(SELECT ` + orderColumns + ` FROM orders WHERE token IN ($1, upper($1)))
	UNION ALL
	(SELECT ` + orderColumns + ` FROM orders
	 WHERE status IN ('received', 'cooking', 'out_for_delivery')
	   AND token NOT IN ($1, upper($1))
	   AND (customer_name ILIKE '%' || $2 || '%' ESCAPE '\' OR token ILIKE $2 || '%' ESCAPE '\')
	 ORDER BY updated_at, token COLLATE "C"
	 LIMIT $3)
	LIMIT $3`

// Find returns up to limit orders (at most FindMax; zero means FindMax)
// that match q, for staff looking for one: the order whose token q is,
// first, then the unfinished orders whose customer's name contains q, in
// any case, or whose token starts with it. An empty q finds nothing.
func (s *Store) Find(ctx context.Context, q string, limit int) ([]Order, error) {
	q = strings.TrimSpace(q)
	if q == "" {
		return nil, nil
	}
	if limit <= 0 || limit > FindMax {
		limit = FindMax
	}
	rows, _ := s.pool.Query(ctx, findOrders, q, escapeLike(q), limit)
	list, err := pgx.CollectRows(rows, scanOrder)
	if err != nil {
		return nil, fmt.Errorf("find orders: %w", err)
	}
	return list, nil
}

// likeEscaper escapes the characters that mean something in a LIKE
// pattern, with the ESCAPE character findOrders names.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// escapeLike is s as a LIKE pattern that matches s and nothing else.
func escapeLike(s string) string { return likeEscaper.Replace(s) }
