package accounts

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ordertracker/ordertracker/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func newStore(t *testing.T) *Store {
	t.Helper()
	return NewStore(pgtest.NewPool(t))
}

func TestPasswordHashesUseTheStatedParameters(t *testing.T) {
	t.Parallel()
	if DefaultParams != (Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}) {
		t.Errorf("DefaultParams = %+v, want OWASP's argon2id: 19 MiB, t=2, p=1, a 16-byte salt and a 32-byte hash", DefaultParams)
	}
	s := newStore(t)
	ctx := context.Background()
	if _, err := s.Add(ctx, "ada", "a password of ada's"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Add(ctx, "bob", "a password of ada's"); err != nil {
		t.Fatal(err)
	}
	var ada, bob string
	if err := s.pool.QueryRow(ctx, `SELECT password_hash FROM staff_accounts WHERE name = 'ada'`).Scan(&ada); err != nil {
		t.Fatal(err)
	}
	if err := s.pool.QueryRow(ctx, `SELECT password_hash FROM staff_accounts WHERE name = 'bob'`).Scan(&bob); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ada, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("stored hash %q does not name argon2id with m=19456,t=2,p=1", ada)
	}
	d, err := decodeHash(ada)
	if err != nil {
		t.Fatal(err)
	}
	if d.params != DefaultParams {
		t.Errorf("decoded parameters %+v, want %+v", d.params, DefaultParams)
	}
	if ada == bob {
		t.Error("two accounts with one password have one hash: the salt is not random")
	}
	if strings.Contains(ada, "a password of ada's") {
		t.Error("the hash holds the password")
	}
	t.Run("a hash with other parameters still verifies", func(t *testing.T) {
		old := hashPassword("an older password", Params{Memory: 8 * 1024, Time: 1, Threads: 1, SaltLen: 8, KeyLen: 16})
		d, err := decodeHash(old)
		if err != nil || !d.verify("an older password") || d.verify("another password") {
			t.Errorf("decode %q = %v; it must verify its own password and no other", old, err)
		}
	})
	t.Run("a hash that names absurd parameters is refused, not run", func(t *testing.T) {
		for _, bad := range []string{
			"", "$argon2id$v=19$m=4294967295,t=2,p=1$c2FsdA$a2V5", "$argon2id$v=19$m=19456,t=1000,p=1$c2FsdA$a2V5",
			"$argon2i$v=19$m=19456,t=2,p=1$c2FsdA$a2V5", "$argon2id$v=18$m=19456,t=2,p=1$c2FsdA$a2V5",
			"$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$", "$argon2id$v=19$m=19456,t=2,p=0$c2FsdA$a2V5",
		} {
			if _, err := decodeHash(bad); err == nil {
				t.Errorf("decodeHash(%q) accepted it", bad)
			}
		}
	})
}

// TestUnknownNamesCostWhatWrongPasswordsCost: a name that no account has, a
// name no account could have, and a known name with the wrong password all
// get one error, ErrBadCredentials, and each runs argon2id exactly once, as
// the right password does: the answer and the work are the same, so neither
// the message nor the time tells which names exist.
func TestUnknownNamesCostWhatWrongPasswordsCost(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	if _, err := s.Add(ctx, "ada", "ada's own password"); err != nil {
		t.Fatal(err)
	}
	s.dummy() // made once per store, before the first unknown name; not a sign-in's work
	for _, tt := range []struct {
		name, user, password string
		want                 error
	}{
		{"the right password", "ada", "ada's own password", nil},
		{"the right password, the name in capitals", " ADA", "ada's own password", nil},
		{"a wrong password", "ada", "not ada's password", ErrBadCredentials},
		{"an unknown name", "bob", "ada's own password", ErrBadCredentials},
		{"a name no account can have", "Robert'); DROP TABLE staff_accounts;--", "ada's own password", ErrBadCredentials},
		{"an empty name", "", "ada's own password", ErrBadCredentials},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := s.Derivations()
			a, err := s.Authenticate(ctx, tt.user, tt.password)
			if !errors.Is(err, tt.want) || err != nil && err != ErrBadCredentials {
				t.Errorf("Authenticate = %v, want %v", err, tt.want)
			}
			if tt.want == nil && a.Name != "ada" {
				t.Errorf("signed in as %q, want ada", a.Name)
			}
			if got := s.Derivations() - before; got != 1 {
				t.Errorf("argon2id ran %d times, want once", got)
			}
		})
	}
}

func TestAccountsLifecycle(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	ada, err := s.Add(ctx, "Ada", "ada's own password")
	if err != nil || ada.Name != "ada" {
		t.Fatalf("Add = %+v, %v; want ada", ada, err)
	}
	for _, tt := range []struct {
		name, user, password string
		want                 error
	}{
		{"a taken name", "ada", "another password", ErrExists},
		{"a taken name in capitals", "ADA", "another password", ErrExists},
		{"a name with a space", "ada lovelace", "another password", ErrInvalidName},
		{"a name too long", strings.Repeat("a", 33), "another password", ErrInvalidName},
		{"a short password", "bob", "short", ErrWeakPassword},
	} {
		t.Run("Add refuses "+tt.name, func(t *testing.T) {
			if _, err := s.Add(ctx, tt.user, tt.password); !errors.Is(err, tt.want) {
				t.Errorf("Add(%q) = %v, want %v", tt.user, err, tt.want)
			}
		})
	}
	if _, err := s.Add(ctx, "bob", "bob's own password"); err != nil {
		t.Fatal(err)
	}
	first, err := s.StartSession(ctx, ada.ID, "Phone", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	second, _ := s.StartSession(ctx, ada.ID, "Till", time.Now().Add(time.Hour))
	expired, _ := s.StartSession(ctx, ada.ID, "Old", time.Now().Add(-time.Second))
	if got, err := s.SessionAccount(ctx, first, true); err != nil || got.ID != ada.ID {
		t.Errorf("SessionAccount = %+v, %v; want ada", got, err)
	}
	if _, err := s.SessionAccount(ctx, expired, false); !errors.Is(err, ErrNoSession) {
		t.Errorf("an expired session: %v, want ErrNoSession", err)
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "ada" || list[0].Sessions != 2 || list[1].Sessions != 0 {
		t.Errorf("List = %+v, %v; want ada with 2 sessions, bob with none", list, err)
	}

	t.Run("a new password ends the account's sessions", func(t *testing.T) {
		if err := s.SetPassword(ctx, "ada", "ada's new password"); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{first, second} {
			if _, err := s.SessionAccount(ctx, id, false); !errors.Is(err, ErrNoSession) {
				t.Errorf("a session from before: %v, want ErrNoSession", err)
			}
		}
		if _, err := s.Authenticate(ctx, "ada", "ada's own password"); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("the old password: %v, want ErrBadCredentials", err)
		}
		if _, err := s.Authenticate(ctx, "ada", "ada's new password"); err != nil {
			t.Errorf("the new password: %v", err)
		}
		if err := s.SetPassword(ctx, "nobody", "a password for nobody"); !errors.Is(err, ErrNotFound) {
			t.Errorf("SetPassword of nobody = %v, want ErrNotFound", err)
		}
	})
	t.Run("removal ends the sessions and keeps others'", func(t *testing.T) {
		bob, err := s.Authenticate(ctx, "bob", "bob's own password")
		if err != nil {
			t.Fatal(err)
		}
		kept, _ := s.StartSession(ctx, bob.ID, "Tablet", time.Now().Add(time.Hour))
		ended, _ := s.StartSession(ctx, ada.ID, "Phone", time.Now().Add(time.Hour))
		if err := s.Remove(ctx, "ada"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SessionAccount(ctx, ended, false); !errors.Is(err, ErrNoSession) {
			t.Errorf("a removed account's session: %v, want ErrNoSession", err)
		}
		if _, err := s.SessionAccount(ctx, kept, false); err != nil {
			t.Errorf("another account's session: %v", err)
		}
		if _, err := s.Authenticate(ctx, "ada", "ada's new password"); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("a removed account signs in: %v", err)
		}
		if err := s.Remove(ctx, "ada"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Remove twice = %v, want ErrNotFound", err)
		}
	})
}

func TestBootstrapChangesOnlyWhatDiffers(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	steps := []struct {
		password string
		want     Bootstrap
	}{
		{"the demo password", BootstrapCreated},
		{"the demo password", BootstrapUnchanged},
		{"a new demo password", BootstrapUpdated},
	}
	var session string
	for i, step := range steps {
		got, err := s.Bootstrap(ctx, "staff", step.password)
		if err != nil || got != step.want {
			t.Fatalf("step %d: Bootstrap = %q, %v; want %q", i, got, err, step.want)
		}
		a, err := s.Authenticate(ctx, "staff", step.password)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		switch step.want {
		case BootstrapCreated:
			session, _ = s.StartSession(ctx, a.ID, "Till", time.Now().Add(time.Hour))
		case BootstrapUnchanged:
			if _, err := s.SessionAccount(ctx, session, false); err != nil {
				t.Errorf("a restart with the same password signed the account out: %v", err)
			}
		case BootstrapUpdated:
			if _, err := s.SessionAccount(ctx, session, false); !errors.Is(err, ErrNoSession) {
				t.Errorf("a new password left the old sessions signed in: %v", err)
			}
		}
	}
}

func TestDeviceKeyIsTheDatabasesOwn(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	key, err := s.DeviceKey(context.Background())
	if err != nil || len(key) != 32 {
		t.Fatalf("DeviceKey = %x, %v; want 32 bytes", key, err)
	}
	again, _ := NewStore(s.pool).DeviceKey(context.Background())
	if string(again) != string(key) {
		t.Error("two stores on one database read different keys")
	}
}
