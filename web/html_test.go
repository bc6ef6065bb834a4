package web

import (
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ordertracker/ordertracker/orders"
)

// vnuJar finds the Nu Html Checker (vnu.jar), the W3C's conformance
// checker for HTML: VNU_JAR, or npm's global vnu-jar package.
func vnuJar(t *testing.T) string {
	t.Helper()
	fix := "install the Nu Html Checker with `npm install -g vnu-jar` (it needs Java 11 or later: " +
		"`apt-get install -y default-jre-headless`), or set VNU_JAR to a vnu.jar"
	if _, err := exec.LookPath("java"); err != nil {
		t.Fatalf("the HTML conformance test needs Java: %s", fix)
	}
	if jar := os.Getenv("VNU_JAR"); jar != "" {
		if _, err := os.Stat(jar); err != nil {
			t.Fatalf("VNU_JAR: %v", err)
		}
		return jar
	}
	if root, err := exec.Command("npm", "root", "-g").Output(); err == nil {
		jar := filepath.Join(strings.TrimSpace(string(root)), "vnu-jar", "build", "dist", "vnu.jar")
		if _, err := os.Stat(jar); err == nil {
			return jar
		}
	}
	t.Fatalf("the HTML conformance test needs vnu.jar: %s", fix)
	return ""
}

// TestPagesAreValidHTML has the Nu Html Checker check every page a person
// sees, in the states that change its markup: the home page empty and with
// errors, the tracking page of an order under way and of a cancelled one,
// the staff board with orders in every column (one moved by a named
// account), an order's staff page, the list of one's devices, and the
// sign-in page plain, with a problem, and with no account yet. It checks everything the HTML standard asks of a
// document: attributes allowed on each element (a stray `else` on an input
// is one it would catch), duplicate attributes and ids, references by id
// (for, aria-describedby, aria-labelledby) to elements that exist, what
// may contain what, unclosed and misnested elements, and attribute values.
// Warnings fail the test as errors do.
func TestPagesAreValidHTML(t *testing.T) {
	t.Parallel()
	jar := vnuJar(t)
	a := newStaffApp(t, staffOptions{demoControls: true})
	cooking := a.create(t, "Ada Lovelace")
	a.moveTo(t, cooking, orders.Cooking)
	cancelled := a.create(t, "Grace Hopper")
	if _, err := a.store.Cancel(t.Context(), cancelled.Token, orders.ByStaff); err != nil {
		t.Fatal(err)
	}
	delivered := a.create(t, "Katherine Johnson")
	a.deliver(t, delivered, orders.Received)
	a.create(t, "Lena Park")
	out := a.create(t, "Mary Jackson")
	a.moveTo(t, out, orders.OutForDelivery)
	session := a.login(t, call{})
	// A move by a signed-in account, which the board and the order's page
	// then name.
	lena := a.create(t, "Lena Park")
	if r := a.send(t, http.MethodPost, "/staff/orders/"+lena.Token+"/advance", call{form: url.Values{"from": {"received"}}, session: session}); r.status != http.StatusSeeOther {
		t.Fatalf("a staff move = %d, want 303", r.status)
	}
	// An app with no account, whose sign-in page says how to make one.
	empty := newStaffApp(t, staffOptions{})
	if err := empty.accounts.Remove(t.Context(), "staff"); err != nil {
		t.Fatal(err)
	}

	pages := []struct {
		name   string
		method string
		path   string
		c      call
		status int
	}{
		{"home", http.MethodGet, "/", call{}, http.StatusOK},
		{"home-errors", http.MethodPost, "/orders", call{form: url.Values{"name": {""}, "qty-margherita": {"many"}, "qty-diavola": {"99"}}}, http.StatusBadRequest},
		{"home-no-items", http.MethodPost, "/orders", call{form: url.Values{"name": {"Ada"}}}, http.StatusBadRequest},
		{"track-cooking", http.MethodGet, "/orders/" + cooking.Token, call{}, http.StatusOK},
		{"track-cancelled", http.MethodGet, "/orders/" + cancelled.Token, call{}, http.StatusOK},
		{"track-delivered", http.MethodGet, "/orders/" + delivered.Token, call{}, http.StatusOK},
		{"not-found", http.MethodGet, "/orders/nothing-here", call{}, http.StatusNotFound},
		{"staff-board", http.MethodGet, "/staff", call{session: session}, http.StatusOK},
		{"staff-login", http.MethodGet, "/staff/login", call{}, http.StatusOK},
		{"staff-login-refused", http.MethodPost, "/staff/login", call{form: url.Values{"password": {"guess"}}, from: "127.0.0.7"}, http.StatusUnauthorized},
		{"demo", http.MethodGet, "/demo?order=" + cooking.Token, call{}, http.StatusOK},
		{"demo-delivered", http.MethodGet, "/demo?order=" + delivered.Token, call{}, http.StatusOK},
		{"demo-pick", http.MethodGet, "/demo", call{}, http.StatusOK},
		{"demo-unknown", http.MethodGet, "/demo?order=nothing-here", call{}, http.StatusNotFound},
		{"staff-order-moved", http.MethodGet, "/staff/orders/" + lena.Token, call{session: session}, http.StatusOK},
		{"staff-devices", http.MethodGet, "/staff/devices", call{session: session}, http.StatusOK},
	}
	dir := t.TempDir()
	var files []string
	for _, p := range pages {
		r := a.send(t, p.method, p.path, p.c)
		if r.status != p.status {
			t.Fatalf("%s: %s %s = %d, want %d", p.name, p.method, p.path, r.status, p.status)
		}
		file := filepath.Join(dir, p.name+".html")
		if err := os.WriteFile(file, []byte(r.body), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, file)
	}
	if r := empty.send(t, http.MethodGet, "/staff/login", call{}); r.status != http.StatusOK || !strings.Contains(r.body, "No staff accounts yet") {
		t.Fatalf("the sign-in page of an app with no account = %d, without the page that says how to make one", r.status)
	} else {
		file := filepath.Join(dir, "staff-no-accounts.html")
		if err := os.WriteFile(file, []byte(r.body), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, file)
	}
	cmd := exec.Command("java", append([]string{"-jar", jar, "--format", "gnu", "--Werror"}, files...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("the Nu Html Checker found problems (%v):\n%s", err, strings.ReplaceAll(string(out), dir+"/", ""))
	}
}
