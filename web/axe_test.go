package web

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
)

// axeScript is axe-core, the accessibility engine of Deque's audits and of
// Chromium's Lighthouse: AXE_CORE_JS, or npm's global axe-core package.
var axeScript = sync.OnceValues(func() (string, error) {
	path := os.Getenv("AXE_CORE_JS")
	if path == "" {
		root, err := exec.Command("npm", "root", "-g").Output()
		if err != nil {
			return "", err
		}
		path = filepath.Join(strings.TrimSpace(string(root)), "axe-core", "axe.min.js")
	}
	b, err := os.ReadFile(path)
	return string(b), err
})

// An axeViolation is one rule a page breaks, as axe-core reports it.
type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// audit runs axe-core on the page in tb as it is now, and fails the test for
// every violation of serious or critical impact. (DevTools evaluation is
// not bound by the page's Content-Security-Policy, so the page itself stays
// as strict as it is.)
func audit(t *testing.T, tb *tab, what string) {
	t.Helper()
	script, err := axeScript()
	if err != nil {
		t.Fatalf("the accessibility audit needs axe-core: install it with `npm install -g axe-core`, or set AXE_CORE_JS to axe.min.js (%v)", err)
	}
	ctx, cancel := tb.bounded()
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](script+";true")); err != nil {
		t.Fatalf("load axe-core into %s: %v", what, err)
	}
	report, err := chromedp.Run(ctx, chromedp.Evaluate[string](`axe.run(document, {resultTypes: ['violations']}).then((r) => JSON.stringify(
		r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => ({
			id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ')),
		}))))`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("audit %s: %v", what, err)
	}
	var violations []axeViolation
	if err := json.Unmarshal([]byte(report), &violations); err != nil {
		t.Fatalf("audit %s: %v", what, err)
	}
	for _, v := range violations {
		t.Errorf("%s: %s (%s): %s, at %s", what, v.ID, v.Impact, v.Help, strings.Join(v.Nodes, "; "))
	}
}

// TestBrowserPagesPassAnAccessibilityAudit audits every page a person
// sees, live: the order form, a tracking page, the sign-in form, the
// staff board and the list of one's devices.
func TestBrowserPagesPassAnAccessibilityAudit(t *testing.T) {
	t.Parallel()
	a := newStaffApp(t, staffOptions{})
	o := a.create(t, "Ada")
	tb := newTab(t, newBrowser(t), true)
	for _, page := range []struct{ what, path, ready string }{
		{"the order form", "/", `!!document.getElementById('name')`},
		{"a tracking page", "/orders/" + o.Token, jsConnection + ` === 'live'`},
		{"the sign-in form", "/staff/login", `!!document.getElementById('password')`},
	} {
		tb.do(t, chromedp.Navigate(a.server.URL+page.path))
		tb.waitFor(t, page.what+" is ready", page.ready)
		audit(t, tb, page.what)
	}
	a.signIn(t, tb)
	tb.waitFor(t, "the board is live", jsBoardConnection+` === 'live'`)
	audit(t, tb, "the staff board")
	tb.do(t, chromedp.Navigate(a.server.URL+"/staff/devices"))
	tb.waitFor(t, "the devices page is ready", `!!document.getElementById('devices')`)
	audit(t, tb, "the staff's devices")
}
