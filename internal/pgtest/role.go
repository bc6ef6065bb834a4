package pgtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

// A Role is a login role of its own for one test, so that the test can cut
// a connection off and keep it out for a while: deny its login, terminate
// its sessions, and let it back in. Tests use it to stage a database outage
// for one connection while the rest of the test goes on.
type Role struct {
	Name, Password string
	admin          *pgx.ConnConfig
}

// NewRole creates a role that may log in to admin's database and read
// every table in it. admin must be a superuser's configuration. The role is
// dropped when the test ends.
func NewRole(t testing.TB, admin *pgx.ConnConfig) *Role {
	t.Helper()
	r := &Role{Name: "r_" + randomHex(6), Password: randomHex(16), admin: admin.Copy()}
	r.exec(t,
		`CREATE ROLE `+ident(r.Name)+` LOGIN PASSWORD '`+r.Password+`'`,
		`GRANT SELECT ON ALL TABLES IN SCHEMA public TO `+ident(r.Name),
	)
	t.Cleanup(func() {
		r.Terminate(t)
		r.exec(t, `DROP OWNED BY `+ident(r.Name), `DROP ROLE `+ident(r.Name))
	})
	return r
}

// DenyLogin keeps new sessions of the role out.
func (r *Role) DenyLogin(t testing.TB) { t.Helper(); r.exec(t, `ALTER ROLE `+ident(r.Name)+` NOLOGIN`) }

// AllowLogin lets new sessions of the role in again.
func (r *Role) AllowLogin(t testing.TB) { t.Helper(); r.exec(t, `ALTER ROLE `+ident(r.Name)+` LOGIN`) }

// Terminate ends every session of the role, as a server restart or
// pg_terminate_backend would.
func (r *Role) Terminate(t testing.TB) {
	t.Helper()
	r.exec(t, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '`+r.Name+`'`)
}

func (r *Role) exec(t testing.TB, statements ...string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.ConnectConfig(ctx, r.admin)
	if err != nil {
		t.Fatalf("pgtest: connect as admin: %v", err)
	}
	defer conn.Close(ctx)
	for _, sql := range statements {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("pgtest: %s: %v", sql, err)
		}
	}
}
