package loadgen

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The load generator builds nothing: it starts the program it was given or
// found, and otherwise says in one line what to build.
func TestFindServer(t *testing.T) {
	// Not parallel: each case sets PATH.
	onPath := t.TempDir()
	program := filepath.Join(onPath, serverProgram)
	if err := os.WriteFile(program, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	given := filepath.Join(t.TempDir(), "ordertracker-before")
	if err := os.WriteFile(given, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		flag    string
		path    string
		want    string
		wantErr string
	}{
		{"-server-bin is started as given", given, onPath, given, ""},
		{"a -server-bin that is not there is an error naming the flag", filepath.Join(onPath, "missing"), onPath, "", "-server-bin"},
		{"without -server-bin, ordertracker on PATH is started", "", onPath, program, ""},
		{"with no ordertracker anywhere, the error says what to build and pass", "", t.TempDir(), "", `run "go build -o /tmp/ordertracker ." in the module's root and pass -server-bin /tmp/ordertracker`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("PATH", c.path)
			got, err := findServer(c.flag)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("got %q, %v; want one line of error holding %q", got, err, c.wantErr)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %q, %v; want %q", got, err, c.want)
			}
		})
	}
}
