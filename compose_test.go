package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
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

// loadCompose loads docker-compose.yml as `docker compose` does, with the
// compose specification's schema and consistency checks, and without this
// machine's environment: `docker compose up` must need nothing from it.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	project, err := loader.LoadWithContext(t.Context(), types.ConfigDetails{
		WorkingDir:  dir,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(dir, "docker-compose.yml")}},
		Environment: types.Mapping{},
	}, func(o *loader.Options) { o.SetProjectName("ordertracker", true) })
	if err != nil {
		t.Fatalf("load docker-compose.yml: %v", err)
	}
	for _, name := range append([]string{"db"}, appServices...) {
		if _, ok := project.Services[name]; !ok {
			t.Fatalf("docker-compose.yml has no service %q; its services are %v", name, project.ServiceNames())
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
	err := run(context.Background(), []string{name, "extra"}, getenv, io.Discard, io.Discard)
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

	t.Run("web publishes port 8080, where the program listens", func(t *testing.T) {
		web := project.Services["web"]
		published := false
		for _, p := range web.Ports {
			if p.Target == 8080 && p.Published == "8080" {
				published = true
			}
		}
		if !published {
			t.Errorf("web ports = %+v, want 8080:8080", web.Ports)
		}
		cfg, err := loadConfig(environment(t, web))
		if err != nil {
			t.Fatal(err)
		}
		if _, port, err := net.SplitHostPort(cfg.addr); err != nil || port != "8080" {
			t.Errorf("web listens on ADDR %q, want port 8080 (the one published)", cfg.addr)
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

	t.Run("worker has no fixed name or host port, so it can be scaled", func(t *testing.T) {
		worker := project.Services["worker"]
		if worker.ContainerName != "" {
			t.Errorf("worker container_name = %q; `docker compose up --scale worker=3` needs none", worker.ContainerName)
		}
		for _, p := range worker.Ports {
			if p.Published != "" {
				t.Errorf("worker publishes host port %s; `docker compose up --scale worker=3` needs none", p.Published)
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
			if grace <= cfg.shutdownGrace {
				t.Errorf("service %s: stop_grace_period %v, want more than SHUTDOWN_TIMEOUT %v, or docker kills it mid-shutdown", name, grace, cfg.shutdownGrace)
			}
		}
	})
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
