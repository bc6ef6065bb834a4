// Package accounts keeps the staff's accounts: a name and an argon2id
// password hash each, in PostgreSQL, and the signed-in sessions of each
// (see migrations/006_staff_accounts.sql). The command line manages
// accounts (ordertracker staff ...); the web side signs people in with
// them.
package accounts

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// An Account is one member of staff.
type Account struct {
	ID        int64
	Name      string
	CreatedAt time.Time
}

// Errors. ErrBadCredentials is the only error a sign-in with a wrong name
// or a wrong password gets, so that no answer tells which names exist.
var (
	ErrBadCredentials = errors.New("that name and password do not match an account")
	ErrNotFound       = errors.New("no account has that name")
	ErrExists         = errors.New("an account with that name already exists")
	ErrInvalidName    = errors.New("a name is 1 to 32 characters: lowercase letters, digits, dot, dash and underscore, starting with a letter or digit")
	ErrWeakPassword   = fmt.Errorf("a password is %d to %d characters", MinPassword, MaxPassword)
)

// MinPassword and MaxPassword bound a password's length, in characters:
// NIST SP 800-63B's minimum for a password a person chooses, and a maximum
// no person reaches that keeps an attempt's body small.
const (
	MinPassword = 8
	MaxPassword = 256
)

// nameRule is what a name may be; the database holds the same rule
// (staff_accounts.name's CHECK).
var nameRule = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,31}$`)

// NormalizeName returns name as accounts keep it: trimmed and in lower
// case, so that "Ada " signs in as "ada". A name that breaks the rule is
// ErrInvalidName.
func NormalizeName(name string) (string, error) {
	name = strings.ToLower(strings.TrimSpace(name))
	if !nameRule.MatchString(name) {
		return "", ErrInvalidName
	}
	return name, nil
}

// checkPassword refuses a password too short or too long to keep.
func checkPassword(password string) error {
	if n := utf8.RuneCountInString(password); n < MinPassword || n > MaxPassword {
		return ErrWeakPassword
	}
	return nil
}

// A Store keeps accounts in PostgreSQL.
type Store struct {
	pool   *pgxpool.Pool
	params Params
	// dummy is the hash that a sign-in with an unknown name is checked
	// against, so that it costs what a known name's does.
	dummy func() decodedHash
	// derivations counts argon2id runs, made by sign-ins or new passwords.
	derivations atomic.Uint64
	// deviceKey is the device cookie key once read (see DeviceKey).
	deviceKey struct {
		sync.Mutex
		key []byte
	}
}

// NewStore returns a Store over pool that hashes new passwords with
// DefaultParams.
func NewStore(pool *pgxpool.Pool) *Store {
	s := &Store{pool: pool, params: DefaultParams}
	s.dummy = sync.OnceValue(func() decodedHash {
		d, err := decodeHash(hashPassword("no account has this password", s.params))
		if err != nil {
			panic("decode the dummy hash: " + err.Error()) // hashPassword's own output
		}
		return d
	})
	return s
}

// Derivations is how many times the store has run argon2id: once for every
// sign-in attempt, whether or not its name exists, and once for every new
// password.
func (s *Store) Derivations() uint64 { return s.derivations.Load() }

func (s *Store) hash(password string) string {
	s.derivations.Add(1)
	return hashPassword(password, s.params)
}

func (s *Store) verify(d decodedHash, password string) bool {
	s.derivations.Add(1)
	return d.verify(password)
}

// Add creates an account.
func (s *Store) Add(ctx context.Context, name, password string) (Account, error) {
	name, err := NormalizeName(name)
	if err != nil {
		return Account{}, err
	}
	if err := checkPassword(password); err != nil {
		return Account{}, err
	}
	rows, _ := s.pool.Query(ctx, `
		INSERT INTO staff_accounts (name, password_hash) VALUES ($1, $2)
		RETURNING id, name, created_at`, name, s.hash(password))
	a, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByPos[Account])
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return Account{}, ErrExists
	}
	if err != nil {
		return Account{}, fmt.Errorf("add staff account: %w", err)
	}
	return a, nil
}

// SetPassword gives the account a new password and ends all its sessions,
// in every process: whoever knew the old one is signed out.
func (s *Store) SetPassword(ctx context.Context, name, password string) error {
	name, err := NormalizeName(name)
	if err != nil {
		return ErrNotFound
	}
	if err := checkPassword(password); err != nil {
		return err
	}
	hash := s.hash(password)
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var id int64
		err := tx.QueryRow(ctx, `UPDATE staff_accounts SET password_hash = $2 WHERE name = $1 RETURNING id`, name, hash).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("set staff password: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM staff_sessions WHERE account_id = $1`, id); err != nil {
			return fmt.Errorf("end the sessions of a new password: %w", err)
		}
		return nil
	})
}

// Remove deletes the account, and with it (by the cascade) its sessions.
// The event log keeps its name on the moves it made.
func (s *Store) Remove(ctx context.Context, name string) error {
	name, err := NormalizeName(name)
	if err != nil {
		return ErrNotFound
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM staff_accounts WHERE name = $1`, name)
	if err != nil {
		return fmt.Errorf("remove staff account: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// A Listing is an account as staff list shows it.
type Listing struct {
	Account
	// Sessions is how many sessions are signed in; LastSeen when the
	// latest of them was last used (zero: none).
	Sessions int
	LastSeen time.Time
}

// List returns every account, by name.
func (s *Store) List(ctx context.Context) ([]Listing, error) {
	rows, _ := s.pool.Query(ctx, `
		SELECT a.id, a.name, a.created_at, count(x.id), max(x.last_seen)
		FROM staff_accounts a
		LEFT JOIN staff_sessions x ON x.account_id = a.id AND x.expires_at > now()
		GROUP BY a.id
		ORDER BY a.name`)
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Listing, error) {
		var l Listing
		var seen *time.Time
		err := row.Scan(&l.ID, &l.Name, &l.CreatedAt, &l.Sessions, &seen)
		if seen != nil {
			l.LastSeen = *seen
		}
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("list staff accounts: %w", err)
	}
	return list, nil
}

// Any reports whether there is at least one account.
func (s *Store) Any(ctx context.Context) (bool, error) {
	var some bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM staff_accounts)`).Scan(&some); err != nil {
		return false, fmt.Errorf("look for staff accounts: %w", err)
	}
	return some, nil
}

// Authenticate returns the account with this name if password is its
// password, and ErrBadCredentials if not. A name that no account has, or
// that no account could have, costs the same argon2id run as a wrong
// password (against a dummy hash), so that neither the answer nor its time
// tells which names exist.
func (s *Store) Authenticate(ctx context.Context, name, password string) (Account, error) {
	var a Account
	var encoded string
	normal, nameErr := NormalizeName(name)
	err := nameErr
	if err == nil {
		err = s.pool.QueryRow(ctx, `SELECT id, name, created_at, password_hash FROM staff_accounts WHERE name = $1`, normal).
			Scan(&a.ID, &a.Name, &a.CreatedAt, &encoded)
	}
	switch {
	case err == nil:
	case nameErr != nil, errors.Is(err, pgx.ErrNoRows):
		s.verify(s.dummy(), password)
		return Account{}, ErrBadCredentials
	default:
		return Account{}, fmt.Errorf("read staff account: %w", err)
	}
	d, err := decodeHash(encoded)
	if err != nil {
		return Account{}, fmt.Errorf("staff account %d: %w", a.ID, err)
	}
	if !s.verify(d, password) {
		return Account{}, ErrBadCredentials
	}
	return a, nil
}

// A Bootstrap is what Bootstrap did.
type Bootstrap string

const (
	BootstrapCreated   Bootstrap = "created"
	BootstrapUpdated   Bootstrap = "updated"
	BootstrapUnchanged Bootstrap = "unchanged"
)

// Bootstrap makes sure the account name exists with password, for a demo
// that signs in with one known password (STAFF_PASSWORD): it creates the
// account, gives it the password if it has another (which ends its
// sessions), or leaves it alone, so that a restart with the same password
// signs nobody out. Several processes starting at once agree.
func (s *Store) Bootstrap(ctx context.Context, name, password string) (Bootstrap, error) {
	_, err := s.Add(ctx, name, password)
	if !errors.Is(err, ErrExists) {
		if err != nil {
			return "", err
		}
		return BootstrapCreated, nil
	}
	if _, err := s.Authenticate(ctx, name, password); err == nil {
		return BootstrapUnchanged, nil
	} else if !errors.Is(err, ErrBadCredentials) {
		return "", err
	}
	if err := s.SetPassword(ctx, name, password); err != nil {
		return "", err
	}
	return BootstrapUpdated, nil
}

// BootstrapName is the name of the account that STAFF_PASSWORD makes, and
// the one a sign-in with no name stands for.
const BootstrapName = "staff"
