-- logged_at is the database's clock when the statement that made an event
-- wrote it to the log: the end of the statement, just before its commit
-- (the stores commit each change in a statement of its own). It is the
-- first hop of an event's journey to a browser; the listener adds when it
-- heard of it, the hub when it wrote it to each stream. Events logged before
-- this migration have none.
ALTER TABLE order_events ADD COLUMN logged_at timestamptz;

CREATE OR REPLACE FUNCTION log_order_inserts() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    notified record;
BEGIN
    PERFORM pg_advisory_xact_lock(7470002);
    WITH logged AS (
        INSERT INTO order_events (order_id, seq, status, actor, at, logged_at)
        SELECT n.id, n.seq, n.status, n.actor, n.updated_at, clock_timestamp()
        FROM new_rows n
        ORDER BY n.id
        RETURNING position
    )
    SELECT notify_order_events(min(position), max(position), count(*)::integer) INTO STRICT notified FROM logged;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION log_order_updates() RETURNS trigger LANGUAGE plpgsql AS $$
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
        INSERT INTO order_events (order_id, seq, status, actor, at, logged_at)
        SELECT n.id, n.seq, n.status, n.actor, n.updated_at, clock_timestamp()
        FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE n.status IS DISTINCT FROM o.status
        ORDER BY n.id
        RETURNING position
    )
    SELECT notify_order_events(min(position), max(position), count(*)::integer) INTO STRICT notified FROM logged;
    RETURN NULL;
END
$$;
