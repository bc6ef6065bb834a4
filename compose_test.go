package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/mod/modfile"
)

// These tests hold docker-compose.yml and the Dockerfile to the program they
// ship. There is no Docker engine to run them on in CI, so what can drift
// apart unnoticed (a renamed command, a variable the program does not read, a
// Go version the builder image does not have) is checked here instead.

// appServices are the compose services that run the program's image.
var appServices = []string{"web", "worker"}

// loadCompose loads docker-compose.yml as `docker compose up` does, with
// the compose specification's schema and consistency checks, and without
// this machine's environment: `docker compose up` must need nothing from it.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	return loadComposeFiles(t, nil, "docker-compose.yml")
}

// loadComposeFiles loads compose files as `docker compose -f FILE... up`
// does with the given profiles (`--profile`).
func loadComposeFiles(t *testing.T, profiles []string, files ...string) *types.Project {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	var configs []types.ConfigFile
	for _, f := range files {
		configs = append(configs, types.ConfigFile{Filename: filepath.Join(dir, f)})
	}
	project, err := loader.LoadWithContext(t.Context(), types.ConfigDetails{
		WorkingDir:  dir,
		ConfigFiles: configs,
		Environment: types.Mapping{},
	}, func(o *loader.Options) {
		o.SetProjectName("ordertracker", true)
		o.Profiles = profiles
	})
	if err != nil {
		t.Fatalf("load %s: %v", strings.Join(files, " and "), err)
	}
	for _, name := range append([]string{"db", "proxy"}, appServices...) {
		if _, ok := project.Services[name]; !ok {
			t.Fatalf("%s has no service %q; its services are %v", strings.Join(files, " and "), name, project.ServiceNames())
		}
	}
	return project
}

// isCommand reports whether the program takes name as its command. It asks
// run itself: a command given an extra argument is refused as "unexpected
// arguments", anything else as an "unknown command". LOG_FORMAT is set to a
// bad value so that, whatever run checks first, it can never go on to open a
// database.
func isCommand(name string) bool {
	getenv := func(k string) string {
		if k == "LOG_FORMAT" {
			return "not-a-format"
		}
		return ""
	}
	err := run(context.Background(), []string{name, "extra"}, getenv, nil, io.Discard, io.Discard)
	return err != nil && strings.Contains(err.Error(), "unexpected arguments")
}

// environment returns a service's variables as a getenv, and fails the test
// for a variable without a value, which compose would take from the
// environment of whoever runs `docker compose up`.
func environment(t *testing.T, s types.ServiceConfig) func(string) string {
	t.Helper()
	vars := map[string]string{}
	for k, v := range s.Environment {
		if v == nil {
			t.Errorf("service %s: %s has no value, so it would come from the host's environment", s.Name, k)
			continue
		}
		vars[k] = *v
	}
	return func(k string) string { return vars[k] }
}

func TestComposeFile(t *testing.T) {
	t.Parallel()
	project := loadCompose(t)
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}

	t.Run("web and worker are built from this module and run one of its commands", func(t *testing.T) {
		for _, want := range []struct{ service, command string }{{"web", "web"}, {"worker", "worker"}} {
			s := project.Services[want.service]
			if s.Build == nil || s.Build.Context != dir {
				t.Errorf("service %s: build = %+v, want the context %s (this module)", s.Name, s.Build, dir)
			}
			if got := []string(s.Command); !slices.Equal(got, []string{want.command}) {
				t.Errorf("service %s: command = %q, want [%q]", s.Name, got, want.command)
			}
		}
		// Whatever else runs the image must run a command the program has.
		for _, s := range project.Services {
			if s.Build == nil {
				continue
			}
			if len(s.Command) > 1 || (len(s.Command) == 1 && !isCommand(s.Command[0])) {
				t.Errorf("service %s: command %q is not one of the program's commands (see `ordertracker help`)", s.Name, []string(s.Command))
			}
		}
	})

	t.Run("web and worker set only variables the program reads, to values it accepts", func(t *testing.T) {
		for _, name := range appServices {
			s := project.Services[name]
			for k := range s.Environment {
				if !slices.Contains(envVars, k) {
					t.Errorf("service %s sets %s, which the program does not read (envVars in config.go lists what it reads)", name, k)
				}
			}
			if _, err := loadConfig(environment(t, s)); err != nil {
				t.Errorf("service %s: the program refuses its environment: %v", name, err)
			}
		}
		if pw := project.Services["web"].Environment["STAFF_PASSWORD"]; pw == nil || *pw == "" {
			t.Error("service web has no STAFF_PASSWORD, so nobody could sign in to the staff board")
		}
	})

	t.Run("web and worker reach db with its credentials", func(t *testing.T) {
		db := project.Services["db"]
		dbEnv := environment(t, db)
		user := or(dbEnv("POSTGRES_USER"), "postgres")
		database := or(dbEnv("POSTGRES_DB"), user)
		for _, name := range appServices {
			cfg, err := loadConfig(environment(t, project.Services[name]))
			if err != nil {
				t.Fatalf("service %s: %v", name, err)
			}
			if cfg.databaseURL == "" {
				t.Errorf("service %s has no DATABASE_URL; the program would try to start a PostgreSQL of its own", name)
				continue
			}
			pc, err := pgconn.ParseConfig(cfg.databaseURL)
			if err != nil {
				t.Errorf("service %s: DATABASE_URL: %v", name, err)
				continue
			}
			if pc.Host != "db" || pc.Port != 5432 || pc.User != user || pc.Password != dbEnv("POSTGRES_PASSWORD") || pc.Database != database {
				t.Errorf("service %s: DATABASE_URL reaches %s@%s:%d/%s, want %s@db:5432/%s with db's POSTGRES_PASSWORD",
					name, pc.User, pc.Host, pc.Port, pc.Database, user, database)
			}
		}
	})

	t.Run("db is the official PostgreSQL image with a password, a healthcheck and a named volume", func(t *testing.T) {
		db := project.Services["db"]
		if !strings.HasPrefix(db.Image, "postgres:15") && !strings.HasPrefix(db.Image, "postgres:16") {
			t.Errorf("db image = %q, want postgres:15 or postgres:16", db.Image)
		}
		if pw := db.Environment["POSTGRES_PASSWORD"]; pw == nil || *pw == "" {
			t.Error("db has no POSTGRES_PASSWORD; the official image refuses to start without one")
		}
		switch hc := db.HealthCheck; {
		case hc == nil || hc.Disable:
			t.Error("db has no healthcheck, so web and worker cannot wait for it to be healthy")
		case !strings.Contains(strings.Join(hc.Test, " "), "pg_isready"):
			t.Errorf("db healthcheck runs %q, want pg_isready", []string(hc.Test))
		}
		found := false
		for _, v := range db.Volumes {
			if v.Target != "/var/lib/postgresql/data" {
				continue
			}
			found = true
			if _, declared := project.Volumes[v.Source]; v.Type != types.VolumeTypeVolume || !declared {
				t.Errorf("db keeps its data in a %s %q, want a named volume declared under volumes:", v.Type, v.Source)
			}
		}
		if !found {
			t.Error("db has no volume at /var/lib/postgresql/data, so its data goes with the container")
		}
	})

	t.Run("web and worker start only once db is healthy", func(t *testing.T) {
		for _, name := range appServices {
			dep, ok := project.Services[name].DependsOn["db"]
			if !ok || dep.Condition != types.ServiceConditionHealthy {
				t.Errorf("service %s depends on db with condition %q, want %q", name, dep.Condition, types.ServiceConditionHealthy)
			}
		}
	})

	t.Run("the proxy is the one way in, on port 8080", func(t *testing.T) {
		published := false
		for _, p := range project.Services["proxy"].Ports {
			if p.Target == 8080 && p.Published == "8080" {
				published = true
			}
		}
		if !published {
			t.Errorf("proxy ports = %+v, want 8080:8080", project.Services["proxy"].Ports)
		}
		for _, name := range appServices {
			for _, p := range project.Services[name].Ports {
				if p.Published != "" {
					t.Errorf("service %s publishes host port %s; only the proxy may be reached from outside", name, p.Published)
				}
			}
		}
	})

	t.Run("web has a healthcheck that runs the program's own healthcheck command", func(t *testing.T) {
		hc := project.Services["web"].HealthCheck
		if hc == nil || hc.Disable || len(hc.Test) < 3 || hc.Test[0] != "CMD" {
			t.Fatalf("web healthcheck = %+v, want [CMD /ordertracker healthcheck]", hc)
		}
		if entry := dockerfileEntrypoint(t); hc.Test[1] != entry {
			t.Errorf("web healthcheck runs %q, want the image's entrypoint %q", hc.Test[1], entry)
		}
		if !isCommand(hc.Test[2]) || len(hc.Test) != 3 {
			t.Errorf("web healthcheck runs %q, which is not one of the program's commands", []string(hc.Test[1:]))
		}
	})

	t.Run("web runs two replicas, and neither it nor worker has a fixed name", func(t *testing.T) {
		if d := project.Services["web"].Deploy; d == nil || d.Replicas == nil || *d.Replicas < 2 {
			t.Errorf("web deploy = %+v, want replicas: 2, so that the proxy has two to spread over", d)
		}
		for _, name := range appServices {
			if s := project.Services[name]; s.ContainerName != "" {
				t.Errorf("service %s container_name = %q; replicas and `--scale` need none", name, s.ContainerName)
			}
		}
	})

	t.Run("web believes X-Forwarded-For from the compose network, where the proxy is, and from nowhere else", func(t *testing.T) {
		cfg, err := loadConfig(environment(t, project.Services["web"]))
		if err != nil {
			t.Fatal(err)
		}
		subnet := composeSubnet(t, project)
		first, last := subnet.Addr(), lastAddr(subnet)
		if !cfg.trustedProxies.Trusts(first) || !cfg.trustedProxies.Trusts(last) {
			t.Errorf("web's TRUSTED_PROXIES does not take in the compose network %s, where the proxy gets its address", subnet)
		}
		for _, outside := range []netip.Addr{first.Prev(), last.Next(), netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("2001:db8::1")} {
			if outside.IsValid() && cfg.trustedProxies.Trusts(outside) {
				t.Errorf("web's TRUSTED_PROXIES trusts %s, outside the compose network %s: a client there could name any client", outside, subnet)
			}
		}
	})

	t.Run("docker waits longer than the program's graceful shutdown", func(t *testing.T) {
		for _, name := range appServices {
			s := project.Services[name]
			cfg, err := loadConfig(environment(t, s))
			if err != nil {
				t.Fatal(err)
			}
			grace := 10 * time.Second // docker's default
			if s.StopGracePeriod != nil {
				grace = time.Duration(*s.StopGracePeriod)
			}
			// Streams are ended over DRAIN_TIMEOUT, then the rest has
			// SHUTDOWN_TIMEOUT.
			if shutdown := cfg.drain + cfg.shutdownGrace; grace <= shutdown {
				t.Errorf("service %s: stop_grace_period %v, want more than DRAIN_TIMEOUT + SHUTDOWN_TIMEOUT, %v, or docker kills it mid-shutdown",
					name, grace, shutdown)
			}
		}
	})
}

// composeSubnet is the subnet declared for the compose project's default
// network.
func composeSubnet(t *testing.T, project *types.Project) netip.Prefix {
	t.Helper()
	network, ok := project.Networks["default"]
	if !ok || network.Ipam.Config == nil || len(network.Ipam.Config) != 1 {
		t.Fatalf("docker-compose.yml declares no subnet for the default network (networks: default: ipam: config: - subnet:), so TRUSTED_PROXIES cannot name it")
	}
	subnet, err := netip.ParsePrefix(network.Ipam.Config[0].Subnet)
	if err != nil {
		t.Fatalf("the default network's subnet: %v", err)
	}
	return subnet.Masked()
}

// lastAddr is the last address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := range b {
		if bits := p.Bits() - 8*i; bits < 8 {
			b[i] |= byte(0xff >> max(bits, 0))
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// TestComposeProxy holds the proxy service and its nginx configuration to
// the program and to what TestTopology runs: the location block is the very
// file that test runs, and the upstream here must give the replicas the
// parameters that test gives its web processes.
func TestComposeProxy(t *testing.T) {
	t.Parallel()
	project := loadCompose(t)
	proxy := project.Services["proxy"]
	web := project.Services["web"]
	webCfg, err := loadConfig(environment(t, web))
	if err != nil {
		t.Fatal(err)
	}
	_, webPort, err := net.SplitHostPort(webCfg.addr)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	mounts := map[string]string{} // file in the repository -> path in the container
	for _, v := range proxy.Volumes {
		if rel, err := filepath.Rel(dir, v.Source); err == nil && v.Type == types.VolumeTypeBind {
			mounts[filepath.ToSlash(rel)] = v.Target
			if !v.ReadOnly {
				t.Errorf("the proxy mounts %s read-write, want :ro", rel)
			}
		}
	}
	upstreams := parseNginx(t, "deploy/nginx.conf")
	location := parseNginx(t, proxyInclude)

	t.Run("the proxy is the official nginx image, pinned to a version, started once web is healthy", func(t *testing.T) {
		m := regexp.MustCompile(`^nginx:(\d+)\.(\d+)\.(\d+)(-[a-z0-9.]+)?$`).FindStringSubmatch(proxy.Image)
		if m == nil {
			t.Fatalf("proxy image = %q, want the official nginx image at a version, such as nginx:1.28.0-alpine", proxy.Image)
		}
		// The upstream's servers follow Docker's DNS (resolve), which
		// open-source nginx has had since 1.27.3.
		version := [3]int{}
		for i := range version {
			version[i], _ = strconv.Atoi(m[i+1])
		}
		if slices.Compare(version[:], []int{1, 27, 3}) < 0 {
			t.Errorf("proxy image = %q, want nginx 1.27.3 or later, for the upstream's resolve parameter", proxy.Image)
		}
		if dep, ok := proxy.DependsOn["web"]; !ok || dep.Condition != types.ServiceConditionHealthy {
			t.Errorf("proxy depends on web with condition %q, want %q", dep.Condition, types.ServiceConditionHealthy)
		}
	})

	t.Run("the proxy runs deploy/nginx.conf, which passes to every web replica on the port web listens on", func(t *testing.T) {
		if got := mounts["deploy/nginx.conf"]; got != "/etc/nginx/conf.d/default.conf" {
			t.Errorf("deploy/nginx.conf is mounted at %q, want /etc/nginx/conf.d/default.conf, which the image's nginx.conf includes", got)
		}
		upstream := nginxBlock(t, upstreams, "upstream", proxyUpstream)
		servers := nginxFind(upstream, "server")
		if len(servers) == 0 {
			t.Fatalf("upstream %s has no server", proxyUpstream)
		}
		for _, s := range servers {
			if len(s.args) == 0 || s.args[0] != "web:"+webPort {
				t.Errorf("upstream server %q, want web:%s (the service, on the port of its ADDR)", s.args, webPort)
				continue
			}
			params := slices.DeleteFunc(slices.Clone(s.args[1:]), func(p string) bool { return p == "resolve" })
			if want := strings.Fields(proxyServerParams); !slices.Equal(params, want) {
				t.Errorf("upstream server %q has parameters %q, want %q, as TestTopology runs it", s.args, params, want)
			}
			if slices.Contains(s.args, "resolve") && (len(nginxFind(upstreams, "resolver")) == 0 || len(nginxFind(upstream, "zone")) == 0) {
				t.Errorf("upstream server %q resolves the name again and again, which needs a resolver and a zone", s.args)
			}
		}
		if got := nginxFind(upstream, "keepalive"); len(got) != 1 || !slices.Equal(got[0].args, []string{strconv.Itoa(proxyKeepalive)}) {
			t.Errorf("upstream keepalive = %v, want %d, as TestTopology runs it", got, proxyKeepalive)
		}
		server := nginxBlock(t, upstreams, "server")
		if got := nginxFind(server, "listen"); len(got) != 1 || !slices.Equal(got[0].args, []string{"8080"}) {
			t.Errorf("the server listens on %v, want 8080, the port the proxy publishes", got)
		}
		include := nginxFind(server, "include")
		if len(include) != 1 || len(include[0].args) != 1 || include[0].args[0] != mounts[proxyInclude] {
			t.Errorf("the server includes %v, want %s, where the proxy mounts %s", include, mounts[proxyInclude], proxyInclude)
		}
	})

	t.Run("deploy/nginx-proxy.conf holds the settings event streams need", func(t *testing.T) {
		loc := nginxBlock(t, location, "location", "/")
		has := func(name string, args ...string) bool {
			for _, d := range nginxFind(loc, name) {
				if slices.Equal(d.args, args) {
					return true
				}
			}
			return false
		}
		for _, want := range []struct {
			name string
			args []string
			why  string
		}{
			{"proxy_pass", []string{"http://" + proxyUpstream}, "the upstream of web replicas"},
			{"proxy_http_version", []string{"1.1"}, "keep-alive connections to web"},
			{"proxy_set_header", []string{"Connection", ""}, "no Connection: close of nginx's own to web"},
			{"proxy_buffering", []string{"off"}, "every event passed on at once"},
			{"proxy_set_header", []string{"X-Forwarded-For", "$proxy_add_x_forwarded_for"}, "the client's address for limits and logs"},
			{"proxy_set_header", []string{"Host", "$http_host"}, "the Host, port included, that a form's Origin is compared with"},
		} {
			if !has(want.name, want.args...) {
				t.Errorf("location / lacks %s %q (%s)", want.name, want.args, want.why)
			}
		}
		next := nginxFind(loc, "proxy_next_upstream")
		if len(next) != 1 || !slices.Contains(next[0].args, "error") || !slices.Contains(next[0].args, "timeout") || slices.Contains(next[0].args, "non_idempotent") {
			t.Errorf("proxy_next_upstream = %v, want error and timeout, so that a web process going away is skipped (and never non_idempotent: an order must not be placed twice)", next)
		}
		read := nginxFind(loc, "proxy_read_timeout")
		if len(read) != 1 || len(read[0].args) != 1 {
			t.Fatalf("proxy_read_timeout = %v, want one, longer than the heartbeat (nginx's default, 60s, ends streams quiet for longer)", read)
		}
		timeout, err := nginxDuration(read[0].args[0])
		if err != nil || timeout <= webCfg.heartbeat {
			t.Errorf("proxy_read_timeout %s (%v), want longer than web's HEARTBEAT_INTERVAL, %v, or nginx ends quiet streams", read[0].args[0], err, webCfg.heartbeat)
		}
	})
}

// TestComposePooler holds the PgBouncer profile and deploy/compose.pooler.yml
// to the program: without them the program reaches PostgreSQL directly,
// with them every query goes through PgBouncer in transaction mode and
// LISTEN and the migration lock go to PostgreSQL directly.
func TestComposePooler(t *testing.T) {
	t.Parallel()
	plain := loadCompose(t)
	if _, ok := plain.Services["pgbouncer"]; ok {
		t.Error("`docker compose up` starts pgbouncer, want it only with --profile pooler")
	}
	if s, ok := plain.DisabledServices["pgbouncer"]; !ok || !slices.Equal(s.Profiles, []string{"pooler"}) {
		t.Errorf("pgbouncer has profiles %v, want [pooler]", s.Profiles)
	}

	project := loadComposeFiles(t, []string{"pooler"}, "docker-compose.yml", "deploy/compose.pooler.yml")
	db := environment(t, project.Services["db"])
	user := or(db("POSTGRES_USER"), "postgres")
	database := or(db("POSTGRES_DB"), user)
	bouncer, ok := project.Services["pgbouncer"]
	if !ok {
		t.Fatal("with --profile pooler there is no pgbouncer service")
	}
	env := environment(t, bouncer)
	if !regexp.MustCompile(`^edoburu/pgbouncer:v?\d+\.\d+\.\d+`).MatchString(bouncer.Image) {
		t.Errorf("pgbouncer image = %q, want edoburu/pgbouncer at a version", bouncer.Image)
	}
	if env("POOL_MODE") != "transaction" {
		t.Errorf("pgbouncer POOL_MODE = %q, want transaction, the mode of managed databases' pooled URLs", env("POOL_MODE"))
	}
	if pc, err := pgconn.ParseConfig(env("DATABASE_URL")); err != nil || pc.Host != "db" || pc.Port != 5432 || pc.User != user || pc.Password != db("POSTGRES_PASSWORD") || pc.Database != database {
		t.Errorf("pgbouncer's DATABASE_URL does not reach db with its credentials (%v)", err)
	}
	if hc := bouncer.HealthCheck; hc == nil || hc.Disable || !strings.Contains(strings.Join(hc.Test, " "), "pg_isready") {
		t.Error("pgbouncer has no pg_isready healthcheck, so web and worker cannot wait for it")
	}
	port, err := strconv.Atoi(env("LISTEN_PORT"))
	if err != nil {
		t.Fatalf("pgbouncer LISTEN_PORT = %q: %v", env("LISTEN_PORT"), err)
	}

	for _, name := range appServices {
		s := project.Services[name]
		for k := range s.Environment {
			if !slices.Contains(envVars, k) {
				t.Errorf("with the pooler, service %s sets %s, which the program does not read", name, k)
			}
		}
		cfg, err := loadConfig(environment(t, s))
		if err != nil {
			t.Fatalf("with the pooler, service %s: the program refuses its environment: %v", name, err)
		}
		for _, u := range []struct {
			variable, url, host string
			port                uint16
		}{
			{"DATABASE_URL", cfg.databaseURL, "pgbouncer", uint16(port)},
			{"DATABASE_DIRECT_URL", cfg.databaseDirectURL, "db", 5432},
		} {
			pc, err := pgconn.ParseConfig(u.url)
			if err != nil {
				t.Errorf("with the pooler, service %s: %s: %v", name, u.variable, err)
				continue
			}
			if pc.Host != u.host || pc.Port != u.port || pc.User != user || pc.Password != db("POSTGRES_PASSWORD") || pc.Database != database {
				t.Errorf("with the pooler, service %s: %s reaches %s@%s:%d/%s, want %s@%s:%d/%s with db's password",
					name, u.variable, pc.User, pc.Host, pc.Port, pc.Database, user, u.host, u.port, database)
			}
		}
		if dep, ok := s.DependsOn["pgbouncer"]; !ok || dep.Condition != types.ServiceConditionHealthy {
			t.Errorf("with the pooler, service %s depends on pgbouncer with condition %q, want %q", name, dep.Condition, types.ServiceConditionHealthy)
		}
	}
}

// An nginxDirective is one directive of an nginx configuration file, with
// the directives of its block, if it has one.
type nginxDirective struct {
	name  string
	args  []string
	block []nginxDirective
}

// parseNginx reads an nginx configuration file: words, quoted or not, make
// directives that end with ";" or with a block in braces; "#" begins a
// comment.
func parseNginx(t *testing.T, path string) []nginxDirective {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	type token struct {
		text   string
		quoted bool
	}
	var tokens []token
	text := string(data)
	for i := 0; i < len(text); {
		switch c := text[i]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '#':
			for i < len(text) && text[i] != '\n' {
				i++
			}
		case c == '{' || c == '}' || c == ';':
			tokens = append(tokens, token{text: string(c)})
			i++
		case c == '"' || c == '\'':
			end := strings.IndexByte(text[i+1:], c)
			if end < 0 {
				t.Fatalf("%s: a quote that does not end", path)
			}
			tokens = append(tokens, token{text: text[i+1 : i+1+end], quoted: true})
			i += end + 2
		default:
			end := strings.IndexAny(text[i:], " \t\r\n{};")
			if end < 0 {
				end = len(text) - i
			}
			tokens = append(tokens, token{text: text[i : i+end]})
			i += end
		}
	}
	var parse func(depth int) []nginxDirective
	parse = func(depth int) []nginxDirective {
		var out []nginxDirective
		var d *nginxDirective
		for len(tokens) > 0 {
			tok := tokens[0]
			tokens = tokens[1:]
			switch {
			case !tok.quoted && tok.text == ";" && d != nil:
				out, d = append(out, *d), nil
			case !tok.quoted && tok.text == "{" && d != nil:
				d.block = parse(depth + 1)
				out, d = append(out, *d), nil
			case !tok.quoted && tok.text == "}" && d == nil && depth > 0:
				return out
			case !tok.quoted && (tok.text == ";" || tok.text == "{" || tok.text == "}"):
				t.Fatalf("%s: %q out of place", path, tok.text)
			case d == nil:
				d = &nginxDirective{name: tok.text}
			default:
				d.args = append(d.args, tok.text)
			}
		}
		if d != nil || depth > 0 {
			t.Fatalf("%s ends inside a directive or a block", path)
		}
		return out
	}
	return parse(0)
}

// nginxFind returns the directives called name among ds.
func nginxFind(ds []nginxDirective, name string) []nginxDirective {
	var found []nginxDirective
	for _, d := range ds {
		if d.name == name {
			found = append(found, d)
		}
	}
	return found
}

// nginxBlock returns the block of the one directive called name with the
// given arguments, and fails the test if there is not exactly one.
func nginxBlock(t *testing.T, ds []nginxDirective, name string, args ...string) []nginxDirective {
	t.Helper()
	var found []nginxDirective
	for _, d := range nginxFind(ds, name) {
		if slices.Equal(d.args, args) && d.block != nil {
			found = append(found, d)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d blocks %s %q, want one", len(found), name, args)
	}
	return found[0].block
}

// nginxDuration reads an nginx time such as 90, 90s, 15m, 1h or 1d.
func nginxDuration(v string) (time.Duration, error) {
	if strings.Trim(v, "0123456789") == "" {
		v += "s" // bare numbers are seconds
	}
	if d, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(d)
		return time.Duration(n) * 24 * time.Hour, err
	}
	return time.ParseDuration(v)
}

// An instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, ...
	args string
}

// readDockerfile returns the Dockerfile's instructions split into build
// stages, each starting with its FROM.
func readDockerfile(t *testing.T) [][]instruction {
	t.Helper()
	f, err := os.Open("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stages [][]instruction
	var line strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		text := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(text, "#") || text == "" && line.Len() > 0 {
			continue // comments and blank lines may sit inside a continued instruction
		}
		if more, ok := strings.CutSuffix(text, `\`); ok {
			line.WriteString(more + " ")
			continue
		}
		line.WriteString(text)
		cmd, args, _ := strings.Cut(strings.TrimSpace(line.String()), " ")
		line.Reset()
		if cmd == "" {
			continue
		}
		in := instruction{strings.ToUpper(cmd), strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			t.Fatalf("Dockerfile: %s before the first FROM", in.cmd)
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], in)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(stages) == 0 {
		t.Fatal("Dockerfile has no FROM")
	}
	return stages
}

func TestDockerfileGoVersionMatchesGoMod(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	mod, err := modfile.ParseLax("go.mod", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if mod.Go == nil {
		t.Fatal("go.mod has no go line")
	}
	builders := 0
	for _, stage := range readDockerfile(t) {
		image, _, _ := strings.Cut(stage[0].args, " ")
		for _, prefix := range []string{"golang:", "docker.io/library/golang:"} {
			tag, ok := strings.CutPrefix(image, prefix)
			if !ok {
				continue
			}
			builders++
			version, _, _ := strings.Cut(tag, "-") // 1.26.8-bookworm, 1.26.8-alpine3.22
			if version != mod.Go.Version {
				t.Errorf("Dockerfile builds with %s, want golang:%s (go.mod's go line) with any variant", image, mod.Go.Version)
			}
		}
	}
	if builders == 0 {
		t.Error("Dockerfile has no golang build stage")
	}
}

func TestDockerfileBuildsAStaticBinaryThatRunsAsNonRoot(t *testing.T) {
	t.Parallel()
	stages := readDockerfile(t)
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stage, want a build stage and a runtime stage", len(stages))
	}

	t.Run("the build downloads modules in a layer of their own, then builds a static, trimmed binary", func(t *testing.T) {
		build := stages[0]
		step := func(match func(instruction) bool) int {
			return slices.IndexFunc(build, match)
		}
		copyMod := step(func(in instruction) bool {
			return in.cmd == "COPY" && strings.Contains(in.args, "go.mod") && strings.Contains(in.args, "go.sum")
		})
		download := step(func(in instruction) bool { return in.cmd == "RUN" && strings.Contains(in.args, "go mod download") })
		copyAll := step(func(in instruction) bool { return in.cmd == "COPY" && strings.HasPrefix(in.args, ". ") })
		goBuild := step(func(in instruction) bool { return in.cmd == "RUN" && strings.Contains(in.args, "go build") })
		if copyMod < 0 || download < copyMod || copyAll < download || goBuild < copyAll {
			t.Errorf("build steps at %d (COPY go.mod go.sum), %d (go mod download), %d (COPY . .), %d (go build); want them all, in that order",
				copyMod, download, copyAll, goBuild)
		}
		if goBuild >= 0 {
			args := build[goBuild].args
			for _, want := range []string{"CGO_ENABLED=0", "-trimpath", `-ldflags="-s -w"`} {
				if !strings.Contains(args, want) {
					t.Errorf("go build step %q lacks %s", args, want)
				}
			}
		}
	})

	t.Run("the runtime image runs the binary as a user other than root, on port 8080", func(t *testing.T) {
		final := stages[len(stages)-1]
		from := final[0].args
		user := ""
		if strings.HasSuffix(from, ":nonroot") {
			user = "nonroot" // distroless's :nonroot images default to uid 65532
		}
		var exposed, entrypoint []string
		for _, in := range final {
			switch in.cmd {
			case "USER":
				user = in.args
			case "EXPOSE":
				exposed = append(exposed, strings.Fields(in.args)...)
			case "ENTRYPOINT":
				entrypoint = append(entrypoint, in.args)
			}
		}
		if name, _, _ := strings.Cut(user, ":"); name == "" || name == "root" || name == "0" {
			t.Errorf("the runtime image (FROM %s) runs as %q, want a user other than root", from, user)
		}
		if !slices.Contains(exposed, "8080") && !slices.Contains(exposed, "8080/tcp") {
			t.Errorf("the runtime image exposes %q, want 8080", exposed)
		}
		if len(entrypoint) != 1 || !strings.HasPrefix(entrypoint[0], "[") {
			t.Errorf("the runtime image's ENTRYPOINT = %q, want one, in exec form, so that the program gets SIGTERM", entrypoint)
		}
	})
}

// dockerfileEntrypoint is the program's path in the runtime image: the first
// word of its exec-form ENTRYPOINT.
func dockerfileEntrypoint(t *testing.T) string {
	t.Helper()
	stages := readDockerfile(t)
	for _, in := range stages[len(stages)-1] {
		if in.cmd == "ENTRYPOINT" {
			var words []string
			if err := json.Unmarshal([]byte(in.args), &words); err == nil && len(words) > 0 {
				return words[0]
			}
		}
	}
	t.Fatal("the runtime image has no exec-form ENTRYPOINT")
	return ""
}
