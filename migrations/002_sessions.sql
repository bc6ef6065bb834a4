-- Staff sign-in sessions, kept by github.com/alexedwards/scs through its pgx
-- store, in the shape that store reads and writes. Every web process sees
-- every session, and signing out deletes the row, so a copied cookie is
-- worthless afterwards on all of them.
CREATE TABLE sessions (
    token  text PRIMARY KEY,
    data   bytea NOT NULL,
    expiry timestamptz NOT NULL
);

-- The store deletes expired sessions every few minutes.
CREATE INDEX sessions_expiry_idx ON sessions (expiry);
