package main

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordertracker/ordertracker/internal/accounts"
	"github.com/ordertracker/ordertracker/internal/pgtest"
)

// TestStaffCommands runs "ordertracker staff ..." as a person would, on an
// empty database (the command applies the migrations first), with the
// password on standard input.
func TestStaffCommands(t *testing.T) {
	t.Parallel()
	url := pgtest.NewEmptyDatabase(t)
	staff := func(stdin string, args ...string) (string, error) {
		t.Helper()
		var out strings.Builder
		err := run(context.Background(), append([]string{"staff"}, args...), env(map[string]string{"DATABASE_URL": url}), strings.NewReader(stdin), &out, io.Discard)
		return out.String(), err
	}
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	accts := accounts.NewStore(pool)
	signsIn := func(name, password string) bool {
		_, err := accts.Authenticate(context.Background(), name, password)
		return err == nil
	}

	if out, err := staff("", "list"); err != nil || !strings.Contains(out, "No staff accounts") {
		t.Fatalf("staff list on a new database: %v, said %q", err, out)
	}
	if out, err := staff("ada's first password\n", "add", "Ada"); err != nil || !strings.Contains(out, "Added ada") {
		t.Fatalf("staff add: %v, said %q", err, out)
	}
	if !signsIn("ada", "ada's first password") {
		t.Error("the account added does not sign in with the password given on standard input")
	}
	if _, err := staff("bob's password\r\n", "add", "bob"); err != nil || !signsIn("bob", "bob's password") {
		t.Errorf("staff add with a CRLF line: %v", err)
	}
	out, err := staff("", "list")
	if err != nil || !strings.Contains(out, "ada") || !strings.Contains(out, "bob") || strings.Contains(out, "password") {
		t.Errorf("staff list: %v, said %q", err, out)
	}

	// A sign-in of ada's, which a new password ends.
	a, _ := accts.Authenticate(context.Background(), "ada", "ada's first password")
	session, err := accts.StartSession(context.Background(), a.ID, "Till", a.CreatedAt.AddDate(1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := staff("ada's second password\n", "password", "ada"); err != nil || !strings.Contains(out, "New password set for ada") {
		t.Fatalf("staff password: %v, said %q", err, out)
	}
	if signsIn("ada", "ada's first password") || !signsIn("ada", "ada's second password") {
		t.Error("staff password did not replace the password")
	}
	if _, err := accts.SessionAccount(context.Background(), session, false); err == nil {
		t.Error("the new password left ada's session signed in")
	}
	if out, err := staff("", "remove", "ada"); err != nil || !strings.Contains(out, "Removed ada") {
		t.Fatalf("staff remove: %v, said %q", err, out)
	}
	if signsIn("ada", "ada's second password") {
		t.Error("a removed account signs in")
	}

	for _, tt := range []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"no command", "", nil, "which command"},
		{"an unknown command", "", []string{"rename", "bob"}, `unknown command "rename"`},
		{"add without a name", "", []string{"add"}, "takes 1 argument"},
		{"a password as an argument", "", []string{"add", "carl", "hunter22"}, "takes 1 argument"},
		{"a name no account can have", "a fine password\n", []string{"add", "carl smith"}, "a name is"},
		{"a name taken", "another password\n", []string{"add", "bob"}, "already exists"},
		{"a short password", "short\n", []string{"add", "carl"}, "a password is"},
		{"no password at all", "", []string{"add", "carl"}, "no password"},
		{"removing nobody", "", []string{"remove", "nobody"}, "no account has that name"},
		{"a new password for nobody", "a fine password\n", []string{"password", "nobody"}, "no account has that name"},
	} {
		t.Run(tt.name+" is refused", func(t *testing.T) {
			_, err := staff(tt.stdin, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "hunter22") {
				t.Errorf("the error repeats the password: %v", err)
			}
		})
	}
	if signsIn("carl", "a fine password") {
		t.Error("a refused command made an account")
	}
}
