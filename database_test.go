package main

import (
	"io"
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ordertracker/ordertracker/internal/pgbouncer"
	"github.com/ordertracker/ordertracker/internal/pgtest"
)

func TestConnectChoosesTheExecModeForWhatIsInBetween(t *testing.T) {
	t.Parallel()
	direct := pgtest.NewDatabase(t)
	pooled := pgbouncer.Start(t, direct)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tt := range []struct {
		name              string
		url, directURL    string
		wantPool, wantDir pgx.QueryExecMode
	}{
		{"a direct connection prepares its statements", direct, direct,
			pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheStatement},
		{"a pooled URL describes them, and the direct one prepares them", pooled, direct,
			pgx.QueryExecModeCacheDescribe, pgx.QueryExecModeCacheStatement},
		{"a pooled URL alone describes them on both", pooled, pooled,
			pgx.QueryExecModeCacheDescribe, pgx.QueryExecModeCacheDescribe},
		{"a mode the URL names stands", pooled + "&default_query_exec_mode=simple_protocol", direct,
			pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db, err := connect(t.Context(), tt.url, tt.directURL, quiet)
			if err != nil {
				t.Fatal(err)
			}
			defer db.pool.Close()
			if got := db.pool.Config().ConnConfig.DefaultQueryExecMode; got != tt.wantPool {
				t.Errorf("the pool's exec mode = %v, want %v", got, tt.wantPool)
			}
			if got := db.direct.DefaultQueryExecMode; got != tt.wantDir {
				t.Errorf("the direct session's exec mode = %v, want %v", got, tt.wantDir)
			}
		})
	}
}
