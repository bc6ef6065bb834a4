// Command loadgen is the order tracker's load generator: it starts the
// product's program (or uses one already running), opens thousands of event
// streams on it, drives status changes through PostgreSQL, and reports
// delivery latency, exactly-once delivery, and the server's memory and CPU.
// BENCHMARKS.md has the commands and the numbers; "loadgen -h" lists the
// flags. Its code is in internal/loadgen.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/ordertracker/ordertracker/internal/loadgen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := loadgen.Run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		stop()
		os.Exit(1)
	}
}
