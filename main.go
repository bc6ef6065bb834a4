// Command ordertracker is an order-tracking web application that shows, live,
// how Server-Sent Events work end to end: customers watch their order move,
// staff move orders from a live board, a worker moves them on a timer, and
// PostgreSQL's LISTEN/NOTIFY carries every change to every web process.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	if code := exitCode(ctx, err); code != 0 {
		fmt.Fprintln(os.Stderr, err)
		stop()
		os.Exit(code)
	}
}

// exitCode is the process's exit status once run has returned err, with
// ctx done when a signal asked the process to stop. A stop asked for is a
// clean exit even when it comes before the process is up, and cuts short
// what it was doing to start.
func exitCode(ctx context.Context, err error) int {
	if err == nil || ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return 0
	}
	return 1
}
