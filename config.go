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
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ordertracker/ordertracker/internal/accounts"
	"github.com/ordertracker/ordertracker/internal/clientaddr"
	"github.com/ordertracker/ordertracker/internal/ratelimit"
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
	perClient     int                   // MAX_STREAMS_PER_CLIENT
	logFormat     string                // LOG_FORMAT
	logLevel      slog.Level            // LOG_LEVEL
	shutdownGrace time.Duration         // SHUTDOWN_TIMEOUT
	drain         time.Duration         // DRAIN_TIMEOUT
	tlsCert       string                // TLS_CERT_FILE
	tlsKey        string                // TLS_KEY_FILE

	staffPassword   string        // STAFF_PASSWORD: the password of the account "staff"
	sessionLifetime time.Duration // STAFF_SESSION_LIFETIME
	secureCookie    bool          // STAFF_COOKIE_SECURE

	trustedProxies    clientaddr.Proxies // TRUSTED_PROXIES
	orderLimit        ratelimit.Rate     // ORDER_LIMIT
	maxConns          int                // MAX_CONNS
	maxConnsPerClient int                // MAX_CONNS_PER_CLIENT
	databaseDirectURL string             // DATABASE_DIRECT_URL
	probeInterval     time.Duration      // LISTENER_PROBE_INTERVAL
	probeTimeout      time.Duration      // LISTENER_PROBE_TIMEOUT
	metricsAddr       string             // METRICS_ADDR
	window            int                // REPLAY_WINDOW
	windowAge         time.Duration      // REPLAY_WINDOW_AGE
	demoControls      bool               // DEMO_CONTROLS
}

// envVars lists every variable the program reads.
var envVars = []string{
	"ADDR", "DATABASE_URL", "DATA_DIR", "STAGE_DURATIONS", "HEARTBEAT_INTERVAL", "SSE_RETRY",
	"WORKER_BATCH", "MAX_STREAMS", "LOG_FORMAT", "LOG_LEVEL", "SHUTDOWN_TIMEOUT",
	"STAFF_PASSWORD", "STAFF_SESSION_LIFETIME", "STAFF_COOKIE_SECURE",
	"TRUSTED_PROXIES", "ORDER_LIMIT", "MAX_CONNS", "MAX_CONNS_PER_CLIENT",
	"DRAIN_TIMEOUT", "TLS_CERT_FILE", "TLS_KEY_FILE", "MAX_STREAMS_PER_CLIENT",
	"DATABASE_DIRECT_URL", "LISTENER_PROBE_INTERVAL", "LISTENER_PROBE_TIMEOUT", "METRICS_ADDR",
	"REPLAY_WINDOW", "REPLAY_WINDOW_AGE", "DEMO_CONTROLS",
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
		drain:         5 * time.Second,
		perClient:     100,
		workerBatch:   500,
		tlsCert:       getenv("TLS_CERT_FILE"),
		tlsKey:        getenv("TLS_KEY_FILE"),

		staffPassword:   getenv("STAFF_PASSWORD"),
		sessionLifetime: 12 * time.Hour,

		databaseDirectURL: getenv("DATABASE_DIRECT_URL"),
		probeInterval:     30 * time.Second,
		probeTimeout:      5 * time.Second,
		metricsAddr:       getenv("METRICS_ADDR"),
		window:            20000,
		windowAge:         10 * time.Minute,
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
	if v := getenv("DRAIN_TIMEOUT"); v != "" {
		dur, err := time.ParseDuration(v)
		if err != nil || dur < 0 {
			bad("DRAIN_TIMEOUT", v, "want a duration such as 5s, or 0 to end every stream at once")
		}
		c.drain = dur
	}
	if v := getenv("REPLAY_WINDOW"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			bad("REPLAY_WINDOW", v, "want a whole number of events, or 0 to replay every resume from the database")
		}
		c.window = n
	}
	// The password itself is never repeated in an error.
	if n := utf8.RuneCountInString(c.staffPassword); c.staffPassword != "" && (n < accounts.MinPassword || n > accounts.MaxPassword) {
		errs = append(errs, fmt.Errorf("STAFF_PASSWORD: %d characters; %w", n, accounts.ErrWeakPassword))
	}
	if v := getenv("REPLAY_WINDOW_AGE"); v != "" {
		dur, err := time.ParseDuration(v)
		if err != nil || dur < 0 {
			bad("REPLAY_WINDOW_AGE", v, "want a duration such as 10m, or 0 to keep events for as long as REPLAY_WINDOW has room")
		}
		c.windowAge = dur
	}
	if v := getenv("MAX_STREAMS_PER_CLIENT"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			bad("MAX_STREAMS_PER_CLIENT", v, "want a whole number of streams, at least 1")
		}
		c.perClient = n
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		bad("TLS_CERT_FILE", c.tlsCert, "TLS_CERT_FILE and TLS_KEY_FILE go together: set both to serve HTTPS, or neither")
	}
	if v := getenv("WORKER_BATCH"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			bad("WORKER_BATCH", v, "want a whole number from 1 to 10000")
		}
		c.workerBatch = n
	}
	if err := c.connectionLimits(getenv, openFileLimit()); err != nil {
		errs = append(errs, err)
	}
	if v := getenv("STAFF_COOKIE_SECURE"); v != "" {
		if c.secureCookie, err = strconv.ParseBool(v); err != nil {
			bad("STAFF_COOKIE_SECURE", v, "want true or false")
		}
	}
	if v := getenv("DEMO_CONTROLS"); v != "" {
		if c.demoControls, err = strconv.ParseBool(v); err != nil {
			bad("DEMO_CONTROLS", v, "want true or false; never true in production: anyone may then end every stream")
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
	if c.trustedProxies, err = clientaddr.ParseProxies(getenv("TRUSTED_PROXIES")); err != nil {
		bad("TRUSTED_PROXIES", getenv("TRUSTED_PROXIES"), err.Error()+"; want a comma-separated list of CIDR prefixes")
	}
	c.orderLimit = defaultOrderLimit
	if v := getenv("ORDER_LIMIT"); v != "" {
		if c.orderLimit, err = ratelimit.Parse(v); err != nil {
			bad("ORDER_LIMIT", v, err.Error())
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

// defaultOrderLimit is ORDER_LIMIT's default: twenty orders at once from
// one address, then ten a minute. A person, or an office behind one
// address, never meets it; a script making a thousand orders a second does.
var defaultOrderLimit = ratelimit.Rate{Burst: 20, Every: 6 * time.Second}

// Files kept free of connections under the open-file limit, for the
// database pool, the LISTEN connection, the listener and files.
const reservedFiles = 200

// openFileLimit is the process's open-file limit, which Go raises to the
// hard limit at start; 0 when there is none to speak of.
func openFileLimit() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur > 1<<30 {
		return 0
	}
	return int(lim.Cur)
}

// connectionLimits reads MAX_STREAMS, MAX_CONNS and MAX_CONNS_PER_CLIENT.
//
// Every connection takes a file. Streams (MAX_STREAMS) and the other
// connections (MAX_CONNS: page loads, API calls, idle keep-alives, clients
// still sending their headers) have budgets of their own, so that neither
// can starve the other, and together they leave reservedFiles of the
// open-file limit for the database and the rest. By default MAX_CONNS is a
// twentieth of the limit (1,000 of 20,000) and MAX_STREAMS the remainder;
// a value set for one leaves the remainder to the other, and two that do
// not fit together are refused.
func (c *config) connectionLimits(getenv func(string) string, fileLimit int) error {
	var errs []error
	read := func(name string, min int) (int, bool) {
		v := getenv(name)
		if v == "" {
			return 0, false
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < min {
			errs = append(errs, fmt.Errorf("%s=%q: want a whole number, at least %d", name, v, min))
			return 0, false
		}
		return n, true
	}
	streams, setStreams := read("MAX_STREAMS", 1)
	conns, setConns := read("MAX_CONNS", 2)
	perClient, setPerClient := read("MAX_CONNS_PER_CLIENT", 1)
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	budget, defaultConns := 100_000, 4096 // no limit to speak of
	if fileLimit > 0 {
		budget = max(fileLimit-reservedFiles, 200)
		defaultConns = min(max(fileLimit/20, 64), 4096)
	}
	switch {
	case !setConns && !setStreams:
		conns = defaultConns
		streams = budget - conns
	case !setConns:
		conns = min(defaultConns, max(budget-streams, 64))
	case !setStreams:
		streams = max(budget-conns, 100)
	}
	if fileLimit > 0 && streams+conns > budget {
		return fmt.Errorf("MAX_STREAMS=%d and MAX_CONNS=%d: together they may hold %d connections, but the open-file limit of %d leaves room for %d beside the %d files the database and the rest need; lower one or raise the limit",
			streams, conns, streams+conns, fileLimit, budget, reservedFiles)
	}
	if !setPerClient {
		perClient = 64
	}
	c.maxStreams, c.maxConns, c.maxConnsPerClient = streams, conns, min(perClient, conns)
	return nil
}

func or(v, fallback string) string {
	if strings.TrimSpace(v) == "" {
		return fallback
	}
	return v
}
