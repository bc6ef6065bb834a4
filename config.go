package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ordertracker/ordertracker/orders"
)

// config is everything the program reads from its environment. Each field
// names its variable; README.md lists them all with their defaults.
type config struct {
	addr          string                // ADDR
	databaseURL   string                // DATABASE_URL
	dataDir       string                // DATA_DIR
	stages        orders.StageDurations // STAGE_DURATIONS
	heartbeat     time.Duration         // HEARTBEAT_INTERVAL
	retry         time.Duration         // SSE_RETRY
	workerBatch   int                   // WORKER_BATCH
	maxStreams    int                   // MAX_STREAMS
	logFormat     string                // LOG_FORMAT
	logLevel      slog.Level            // LOG_LEVEL
	shutdownGrace time.Duration         // SHUTDOWN_TIMEOUT

	staffPassword   string        // STAFF_PASSWORD
	sessionLifetime time.Duration // STAFF_SESSION_LIFETIME
	secureCookie    bool          // STAFF_COOKIE_SECURE

	databaseDirectURL string        // DATABASE_DIRECT_URL
	probeInterval     time.Duration // LISTENER_PROBE_INTERVAL
	probeTimeout      time.Duration // LISTENER_PROBE_TIMEOUT
	metricsAddr       string        // METRICS_ADDR
}

// envVars lists every variable the program reads.
var envVars = []string{
	"ADDR", "DATABASE_URL", "DATA_DIR", "STAGE_DURATIONS", "HEARTBEAT_INTERVAL", "SSE_RETRY",
	"WORKER_BATCH", "MAX_STREAMS", "LOG_FORMAT", "LOG_LEVEL", "SHUTDOWN_TIMEOUT",
	"STAFF_PASSWORD", "STAFF_SESSION_LIFETIME", "STAFF_COOKIE_SECURE",
	"DATABASE_DIRECT_URL", "LISTENER_PROBE_INTERVAL", "LISTENER_PROBE_TIMEOUT", "METRICS_ADDR",
}

// loadConfig reads the environment through getenv. Every bad value is
// reported, each with its variable's name and what is wrong.
func loadConfig(getenv func(string) string) (config, error) {
	c := config{
		addr:          or(getenv("ADDR"), ":8080"),
		databaseURL:   getenv("DATABASE_URL"),
		dataDir:       or(getenv("DATA_DIR"), ".data"),
		logFormat:     or(getenv("LOG_FORMAT"), "text"),
		heartbeat:     15 * time.Second,
		retry:         2 * time.Second,
		shutdownGrace: 10 * time.Second,
		workerBatch:   500,

		staffPassword:   getenv("STAFF_PASSWORD"),
		sessionLifetime: 12 * time.Hour,

		databaseDirectURL: getenv("DATABASE_DIRECT_URL"),
		probeInterval:     30 * time.Second,
		probeTimeout:      5 * time.Second,
		metricsAddr:       getenv("METRICS_ADDR"),
	}
	var errs []error
	bad := func(name, value, why string) {
		errs = append(errs, fmt.Errorf("%s=%q: %s", name, value, why))
	}
	var err error
	if c.stages, err = orders.ParseStageDurations(getenv("STAGE_DURATIONS")); err != nil {
		bad("STAGE_DURATIONS", getenv("STAGE_DURATIONS"), err.Error())
	}
	for _, d := range []struct {
		name string
		dst  *time.Duration
	}{
		{"HEARTBEAT_INTERVAL", &c.heartbeat},
		{"SSE_RETRY", &c.retry},
		{"SHUTDOWN_TIMEOUT", &c.shutdownGrace},
		{"STAFF_SESSION_LIFETIME", &c.sessionLifetime},
		{"LISTENER_PROBE_INTERVAL", &c.probeInterval},
		{"LISTENER_PROBE_TIMEOUT", &c.probeTimeout},
	} {
		v := getenv(d.name)
		if v == "" {
			continue
		}
		dur, err := time.ParseDuration(v)
		if err != nil || dur <= 0 {
			bad(d.name, v, "want a positive duration such as 15s or 1m")
			continue
		}
		*d.dst = dur
	}
	if v := getenv("WORKER_BATCH"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			bad("WORKER_BATCH", v, "want a whole number from 1 to 10000")
		}
		c.workerBatch = n
	}
	c.maxStreams = defaultMaxStreams()
	if v := getenv("MAX_STREAMS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			bad("MAX_STREAMS", v, "want a whole number of streams, at least 1")
		}
		c.maxStreams = n
	}
	if v := getenv("STAFF_COOKIE_SECURE"); v != "" {
		if c.secureCookie, err = strconv.ParseBool(v); err != nil {
			bad("STAFF_COOKIE_SECURE", v, "want true or false")
		}
	}
	errs = append(errs, checkDatabaseURLs(c)...)
	if c.probeTimeout >= c.probeInterval {
		bad("LISTENER_PROBE_TIMEOUT", c.probeTimeout.String(), "want less than LISTENER_PROBE_INTERVAL ("+c.probeInterval.String()+")")
	}
	if c.metricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.metricsAddr); err != nil {
			bad("METRICS_ADDR", c.metricsAddr, "want host:port, such as 127.0.0.1:9090 or :9090")
		}
	}
	if c.logFormat != "text" && c.logFormat != "json" {
		bad("LOG_FORMAT", c.logFormat, "want text or json")
	}
	if v := getenv("LOG_LEVEL"); v != "" {
		if err := c.logLevel.UnmarshalText([]byte(v)); err != nil {
			bad("LOG_LEVEL", v, "want debug, info, warn or error")
		}
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("configuration: %w", errors.Join(errs...))
	}
	return c, nil
}

// checkDatabaseURLs reports database URLs that cannot be parsed, without
// their values (pgx's message leaves out the password), and a direct URL
// with nothing to be the direct way to.
func checkDatabaseURLs(c config) []error {
	var errs []error
	for _, u := range []struct{ name, value string }{
		{"DATABASE_URL", c.databaseURL},
		{"DATABASE_DIRECT_URL", c.databaseDirectURL},
	} {
		if u.value == "" {
			continue
		}
		if _, err := pgconn.ParseConfig(u.value); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", u.name, err))
		}
	}
	if c.databaseDirectURL != "" && c.databaseURL == "" {
		errs = append(errs, errors.New("DATABASE_DIRECT_URL is set and DATABASE_URL is not: the direct URL is a second way to DATABASE_URL's database"))
	}
	return errs
}

// defaultMaxStreams leaves room under the process's open-file limit (which
// Go raises to the hard limit at start) for everything that is not a
// stream: listeners, database connections, files.
func defaultMaxStreams() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur > 1<<30 {
		return 100_000
	}
	return max(int(lim.Cur)-200, 100)
}

func or(v, fallback string) string {
	if strings.TrimSpace(v) == "" {
		return fallback
	}
	return v
}
