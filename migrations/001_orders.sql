-- Orders, their event log, and the state machine that guards both.
--
-- The database, not the application, is the last word on what may happen to
-- an order: legal_transition lists every legal move, a trigger refuses any
-- other, and the event log is written by triggers in the same statement as
-- the change, so no status can change without exactly one event row.

-- legal_transition is the state machine: every move an order may make, and
-- who may make it. It is an expression rather than a table so that the guard
-- below, which runs for every row moved, costs no query.
CREATE FUNCTION legal_transition(from_status text, to_status text, actor text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (from_status, to_status, actor) IN (
        ('received',         'cooking',          'worker'),
        ('received',         'cooking',          'staff'),
        ('cooking',          'out_for_delivery', 'worker'),
        ('cooking',          'out_for_delivery', 'staff'),
        ('out_for_delivery', 'delivered',        'worker'),
        ('out_for_delivery', 'delivered',        'staff'),
        ('received',         'cancelled',        'staff'),
        ('cooking',          'cancelled',        'staff'))
$$;

CREATE TABLE orders (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token         text NOT NULL UNIQUE CHECK (token ~ '^[A-Za-z0-9_-]{22,}$'),
    customer_name text NOT NULL CHECK (char_length(customer_name) BETWEEN 1 AND 80),
    items         jsonb NOT NULL CHECK (jsonb_typeof(items) = 'array' AND jsonb_array_length(items) > 0),
    total_cents   integer NOT NULL CHECK (total_cents >= 0),
    status        text NOT NULL CHECK (status IN ('received', 'cooking', 'out_for_delivery', 'delivered', 'cancelled')),
    -- seq is the per-order sequence number of the latest event (1 at creation).
    seq           integer NOT NULL DEFAULT 1,
    -- actor is who made the latest change: customer (creation), worker or staff.
    actor         text NOT NULL CHECK (actor IN ('customer', 'worker', 'staff')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    -- next_move_at is when the worker should move the order on; NULL once finished.
    next_move_at  timestamptz,
    CHECK (status NOT IN ('delivered', 'cancelled') OR next_move_at IS NULL)
);

CREATE INDEX orders_due ON orders (next_move_at) WHERE next_move_at IS NOT NULL;

-- order_events is the durable log of every status change. position is the
-- cursor over all orders: the guard below hands positions out in commit
-- order, so a reader that has seen position p has seen every position below p.
CREATE TABLE order_events (
    position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    seq      integer NOT NULL CHECK (seq > 0),
    status   text NOT NULL,
    actor    text NOT NULL,
    at       timestamptz NOT NULL,
    UNIQUE (order_id, seq)
);

-- orders_guard refuses every change of status that legal_transition does
-- not allow, and keeps seq and the finishing columns consistent whatever the
-- UPDATE statement said.
CREATE FUNCTION orders_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.status <> 'received' OR NEW.actor <> 'customer' THEN
            RAISE EXCEPTION 'a new order must be received from a customer, not % by %', NEW.status, NEW.actor
                USING ERRCODE = 'check_violation', CONSTRAINT = 'order_transition';
        END IF;
        NEW.seq := 1;
        RETURN NEW;
    END IF;

    IF NEW.status IS NOT DISTINCT FROM OLD.status THEN
        NEW.seq := OLD.seq;
        NEW.actor := OLD.actor;
        RETURN NEW;
    END IF;
    IF NOT legal_transition(OLD.status, NEW.status, NEW.actor) THEN
        RAISE EXCEPTION 'illegal transition of order %: % -> % by %', OLD.id, OLD.status, NEW.status, NEW.actor
            USING ERRCODE = 'check_violation', CONSTRAINT = 'order_transition';
    END IF;
    NEW.seq := OLD.seq + 1;
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := now();
    END IF;
    IF NEW.status IN ('delivered', 'cancelled') THEN
        NEW.next_move_at := NULL;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER orders_guard BEFORE INSERT OR UPDATE ON orders
    FOR EACH ROW EXECUTE FUNCTION orders_guard();

-- orders_no_repeat refuses an UPDATE that names the status but leaves it as
-- it was: two callers making the same move must not both succeed, even if one
-- of them forgot to compare and set.
CREATE FUNCTION orders_no_repeat() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = OLD.status THEN
        RAISE EXCEPTION 'order % is already %', OLD.id, OLD.status
            USING ERRCODE = 'check_violation', CONSTRAINT = 'order_transition';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER orders_no_repeat BEFORE UPDATE OF status ON orders
    FOR EACH ROW EXECUTE FUNCTION orders_no_repeat();

-- The event triggers below write one event row per changed order and send
-- one notification per statement, however many orders the statement moved:
-- Postgres lets only one notifying commit through at a time, so batching is
-- what throughput depends on. The payload carries positions only; listeners
-- read the events themselves from the log.
--
-- Before taking positions they take a transaction-scoped advisory lock, held
-- until commit. Identity values are otherwise handed out in call order, not
-- commit order: a transaction could take position 10, stall, and commit after
-- 11 was already read, and a reader resuming after 11 would never see 10. With
-- the lock, the transaction holding position p has committed before any other
-- can take p+1. The lock is taken at the very end of the statement and the
-- writers commit right after it, so it serialises little more than the NOTIFY
-- lock at commit serialises anyway.
CREATE FUNCTION log_order_inserts() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    notified record;
BEGIN
    PERFORM pg_advisory_xact_lock(7470002);
    WITH logged AS (
        INSERT INTO order_events (order_id, seq, status, actor, at)
        SELECT n.id, n.seq, n.status, n.actor, n.updated_at
        FROM new_rows n
        ORDER BY n.id
        RETURNING position
    )
    SELECT notify_order_events(min(position), max(position), count(*)::integer) INTO STRICT notified FROM logged;
    RETURN NULL;
END
$$;

CREATE FUNCTION log_order_updates() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    notified record;
BEGIN
    IF NOT EXISTS (
        SELECT FROM new_rows n JOIN old_rows o ON o.id = n.id WHERE n.status IS DISTINCT FROM o.status
    ) THEN
        RETURN NULL;
    END IF;
    PERFORM pg_advisory_xact_lock(7470002);
    WITH logged AS (
        INSERT INTO order_events (order_id, seq, status, actor, at)
        SELECT n.id, n.seq, n.status, n.actor, n.updated_at
        FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE n.status IS DISTINCT FROM o.status
        ORDER BY n.id
        RETURNING position
    )
    SELECT notify_order_events(min(position), max(position), count(*)::integer) INTO STRICT notified FROM logged;
    RETURN NULL;
END
$$;

CREATE FUNCTION notify_order_events(first_position bigint, last_position bigint, moved integer)
RETURNS void LANGUAGE sql AS $$
    SELECT pg_notify('order_update', json_build_object(
        'first', first_position, 'last', last_position, 'count', moved)::text)
    WHERE moved > 0
$$;

CREATE TRIGGER orders_log_insert AFTER INSERT ON orders
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION log_order_inserts();

CREATE TRIGGER orders_log_update AFTER UPDATE ON orders
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION log_order_updates();
