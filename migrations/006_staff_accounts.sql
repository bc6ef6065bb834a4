-- Staff accounts: each member of staff signs in with a name and a password
-- of their own, so that the log can say who made a move, a person who leaves
-- can be removed without changing anyone else's password, and one person's
-- sign-outs touch nobody else.
--
-- password_hash is an argon2id hash in the PHC string format
-- ($argon2id$v=19$m=...,t=...,p=...$salt$hash), with a random salt of its
-- own; its parameters travel with it, so that stronger ones can come later
-- without a migration.
CREATE TABLE staff_accounts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,31}$'),
    password_hash text NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- staff_sessions are the signed-in devices of each account: one row per
-- staff sign-in, named by a random id that the sign-in's session keeps.
-- A session is signed in only while its row exists, so deleting the rows
-- of an account (sign out everywhere, a new password, the account's
-- removal, by the cascade) ends its sessions in every process, open event
-- streams included (the session watch reads the row). The row is apart
-- from the sessions table, which the session library owns and whose data
-- is opaque to SQL.
CREATE TABLE staff_sessions (
    id           text PRIMARY KEY,
    account_id   bigint NOT NULL REFERENCES staff_accounts (id) ON DELETE CASCADE,
    user_agent   text NOT NULL,
    signed_in_at timestamptz NOT NULL DEFAULT now(),
    last_seen    timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);

CREATE INDEX staff_sessions_account ON staff_sessions (account_id);
CREATE INDEX staff_sessions_expiry ON staff_sessions (expires_at);

-- staff_secrets holds the one key the staff side needs that no password
-- gives: the key that signs device cookies (see web/device.go). It is made
-- here, from gen_random_uuid's strong random bytes (244 of its bits are
-- random), once per database.
CREATE TABLE staff_secrets (
    one        boolean PRIMARY KEY DEFAULT true CHECK (one),
    device_key bytea NOT NULL
);
INSERT INTO staff_secrets (device_key)
SELECT decode(replace(gen_random_uuid()::text, '-', '') || replace(gen_random_uuid()::text, '-', ''), 'hex');

-- Every staff move names the account that made it. The order keeps who made
-- its latest change, as it keeps actor, and the log copies it into each
-- event. The account's id and its name as it was then are both kept, with
-- no foreign key: the audit trail must still name who cancelled an order
-- after that account is removed, and ids are never handed out twice.
-- Staff events logged before this migration name no account.
ALTER TABLE orders ADD COLUMN staff_id bigint, ADD COLUMN staff_name text;
ALTER TABLE order_events ADD COLUMN staff_id bigint, ADD COLUMN staff_name text;
ALTER TABLE order_events ADD CONSTRAINT order_events_staff_only_for_staff
    CHECK (actor = 'staff' OR (staff_id IS NULL AND staff_name IS NULL));

-- orders_guard gains one rule: only a staff move names an account, so a
-- move by the worker or the customer clears the account of the staff move
-- before it, whatever the UPDATE said.
CREATE OR REPLACE FUNCTION orders_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.status <> 'received' OR NEW.actor <> 'customer' THEN
            RAISE EXCEPTION 'a new order must be received from a customer, not % by %', NEW.status, NEW.actor
                USING ERRCODE = 'check_violation', CONSTRAINT = 'order_transition';
        END IF;
        NEW.seq := 1;
        NEW.staff_id := NULL;
        NEW.staff_name := NULL;
        RETURN NEW;
    END IF;

    IF NEW.status IS NOT DISTINCT FROM OLD.status THEN
        NEW.seq := OLD.seq;
        NEW.actor := OLD.actor;
        NEW.staff_id := OLD.staff_id;
        NEW.staff_name := OLD.staff_name;
        RETURN NEW;
    END IF;
    IF NOT legal_transition(OLD.status, NEW.status, NEW.actor) THEN
        RAISE EXCEPTION 'illegal transition of order %: % -> % by %', OLD.id, OLD.status, NEW.status, NEW.actor
            USING ERRCODE = 'check_violation', CONSTRAINT = 'order_transition';
    END IF;
    IF NEW.actor <> 'staff' THEN
        NEW.staff_id := NULL;
        NEW.staff_name := NULL;
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

-- The log's triggers copy the account with the rest of the change.
CREATE OR REPLACE FUNCTION log_order_inserts() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    notified record;
BEGIN
    PERFORM pg_advisory_xact_lock(7470002);
    WITH logged AS (
        INSERT INTO order_events (order_id, seq, status, actor, at, logged_at, staff_id, staff_name)
        SELECT n.id, n.seq, n.status, n.actor, n.updated_at, clock_timestamp(), n.staff_id, n.staff_name
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
        INSERT INTO order_events (order_id, seq, status, actor, at, logged_at, staff_id, staff_name)
        SELECT n.id, n.seq, n.status, n.actor, n.updated_at, clock_timestamp(), n.staff_id, n.staff_name
        FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE n.status IS DISTINCT FROM o.status
        ORDER BY n.id
        RETURNING position
    )
    SELECT notify_order_events(min(position), max(position), count(*)::integer) INTO STRICT notified FROM logged;
    RETURN NULL;
END
$$;
