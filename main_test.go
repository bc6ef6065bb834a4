package main

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/ordertracker/ordertracker/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// A process asked to stop while it starts exits cleanly: its start-up is
// cut short by the signal, not failed. Any other error is a failure.
func TestAStopAskedForIsACleanExitEvenDuringStartUp(t *testing.T) {
	stopped, stop := context.WithCancel(context.Background())
	stop()
	running := context.Background()
	cut := fmt.Errorf("read the newest event position: %w", context.Canceled)
	for _, c := range []struct {
		name string
		ctx  context.Context
		err  error
		want int
	}{
		{"a clean end", running, nil, 0},
		{"stopped by a signal", stopped, nil, 0},
		{"start-up cut short by a signal", stopped, cut, 0},
		{"a failure", running, errors.New("connect to the database: refused"), 1},
		{"a failure while stopping", stopped, errors.New("connect to the database: refused"), 1},
		{"cancelled without a signal", running, cut, 1},
	} {
		if got := exitCode(c.ctx, c.err); got != c.want {
			t.Errorf("%s: exit code %d, want %d", c.name, got, c.want)
		}
	}
}
