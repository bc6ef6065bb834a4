package accounts

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// A Session is one signed-in device of an account.
type Session struct {
	ID         string
	UserAgent  string
	SignedInAt time.Time
	LastSeen   time.Time
	ExpiresAt  time.Time
}

// ErrNoSession: the session has ended (signed out, everywhere or here, by a
// new password, by the account's removal, or by expiry) or never was.
var ErrNoSession = errors.New("the staff session has ended")

// maxUserAgent is how much of a browser's User-Agent a session keeps: enough
// to tell a phone from a till.
const maxUserAgent = 256

// StartSession records a new signed-in session of the account, until
// expires, and returns its id, which the sign-in's session keeps.
func (s *Store) StartSession(ctx context.Context, accountID int64, userAgent string, expires time.Time) (string, error) {
	id := rand.Text()
	userAgent = strings.ToValidUTF8(userAgent, "\uFFFD")
	if len(userAgent) > maxUserAgent {
		userAgent = strings.ToValidUTF8(userAgent[:maxUserAgent], "")
	}
	_, err := s.pool.Exec(ctx, `
		INSERT INTO staff_sessions (id, account_id, user_agent, expires_at) VALUES ($1, $2, $3, $4)`,
		id, accountID, userAgent, expires)
	if err != nil {
		return "", fmt.Errorf("start staff session: %w", err)
	}
	return id, nil
}

// SessionAccount returns the account of the session with this id, or
// ErrNoSession when it has ended. With seen, it notes that the session was
// used now (at most once a minute, to keep writes few): a person's request,
// not a check of an open stream.
func (s *Store) SessionAccount(ctx context.Context, id string, seen bool) (Account, error) {
	const read = `
		SELECT a.id, a.name, a.created_at
		FROM staff_sessions x JOIN staff_accounts a ON a.id = x.account_id
		WHERE x.id = $1 AND x.expires_at > now()`
	const readAndTouch = `
		WITH touched AS (
			UPDATE staff_sessions SET last_seen = now()
			WHERE id = $1 AND last_seen < now() - interval '1 minute'
		)` + read
	q := read
	if seen {
		q = readAndTouch
	}
	rows, _ := s.pool.Query(ctx, q, id)
	a, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByPos[Account])
	if errors.Is(err, pgx.ErrNoRows) {
		return Account{}, ErrNoSession
	}
	if err != nil {
		return Account{}, fmt.Errorf("read staff session: %w", err)
	}
	return a, nil
}

// Sessions returns the account's signed-in sessions, the latest used first.
func (s *Store) Sessions(ctx context.Context, accountID int64) ([]Session, error) {
	rows, _ := s.pool.Query(ctx, `
		SELECT id, user_agent, signed_in_at, last_seen, expires_at
		FROM staff_sessions
		WHERE account_id = $1 AND expires_at > now()
		ORDER BY last_seen DESC, signed_in_at DESC`, accountID)
	list, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Session])
	if err != nil {
		return nil, fmt.Errorf("list staff sessions: %w", err)
	}
	return list, nil
}

// EndSession ends one session (sign-out).
func (s *Store) EndSession(ctx context.Context, id string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM staff_sessions WHERE id = $1`, id); err != nil {
		return fmt.Errorf("end staff session: %w", err)
	}
	return nil
}

// EndSessions ends every session of the account (sign out everywhere) and
// returns their ids.
func (s *Store) EndSessions(ctx context.Context, accountID int64) ([]string, error) {
	rows, _ := s.pool.Query(ctx, `DELETE FROM staff_sessions WHERE account_id = $1 RETURNING id`, accountID)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("end staff sessions: %w", err)
	}
	return ids, nil
}

// DeleteExpired deletes the sessions that have run out.
func (s *Store) DeleteExpired(ctx context.Context) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM staff_sessions WHERE expires_at < now()`); err != nil {
		return fmt.Errorf("delete expired staff sessions: %w", err)
	}
	return nil
}

// DeviceKey is the key that signs device cookies, made once per database
// by its migration and read once per process.
func (s *Store) DeviceKey(ctx context.Context) ([]byte, error) {
	s.deviceKey.Lock()
	defer s.deviceKey.Unlock()
	if s.deviceKey.key != nil {
		return s.deviceKey.key, nil
	}
	var key []byte
	if err := s.pool.QueryRow(ctx, `SELECT device_key FROM staff_secrets`).Scan(&key); err != nil {
		return nil, fmt.Errorf("read the device cookie key: %w", err)
	}
	s.deviceKey.key = key
	return key, nil
}
