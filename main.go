// Command ordertracker is an order-tracking web application that shows, live,
// how Server-Sent Events work end to end: customers watch their order move,
// staff move orders from a live board, a worker moves them on a timer, and
// PostgreSQL's LISTEN/NOTIFY carries every change to every web process.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		stop()
		os.Exit(1)
	}
}
