package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestDepsHoldNoLoadGenerator fails if the product's program is built with
// any package of the load generator. Test tools stay out of the binary that
// ships: the load generator is a command of its own, cmd/loadgen, which
// starts the product as a separate process.
func TestDepsHoldNoLoadGenerator(t *testing.T) {
	t.Parallel()
	module := goList(t, "-m")[0]
	load := goList(t, "./cmd/loadgen/...", "./internal/loadgen/...")
	// Should the load generator move, this fails, instead of the check
	// below passing over packages that no longer exist.
	for _, pkg := range []string{module + "/cmd/loadgen", module + "/internal/loadgen"} {
		if !slices.Contains(load, pkg) {
			t.Fatalf("go list names no %s among the load generator's packages %q: update this test to where it went", pkg, load)
		}
	}
	product := goList(t, "-deps", ".")
	if !slices.Contains(product, module+"/orders") {
		t.Fatalf("the product's dependencies %q lack %s/orders: go list did not list the product", product, module)
	}
	for _, pkg := range product {
		if slices.Contains(load, pkg) {
			t.Errorf("the product's program depends on %s, a package of the load generator; only tests and cmd/loadgen may import it", pkg)
		}
	}
}

// goList runs "go list" with args in the module's root and returns the
// lines it prints: import paths, or the module path with -m.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.Fields(string(out))
}
