package static

import (
	"io/fs"
	"path"
	"regexp"
	"strings"
	"testing"

	"github.com/ordertracker/ordertracker/orders"
)

func TestEveryFileHasAFingerprintedURL(t *testing.T) {
	t.Parallel()
	names, err := fs.Glob(files, "*")
	if err != nil || len(names) == 0 {
		t.Fatalf("no embedded files (%v)", err)
	}
	for _, name := range names {
		u := URL(name)
		if !regexp.MustCompile(`^/static/[\w-]+\.[0-9a-f]{10}\.\w+$`).MatchString(u) {
			t.Errorf("%s: URL %q carries no fingerprint", name, u)
		}
		a, current, ok := Lookup(path.Base(u))
		if !ok || !current || a.Name != name {
			t.Errorf("%s: Lookup of its own URL found %v, current %v, ok %v", name, a, current, ok)
		}
		if a.ContentType == "" || len(a.Body) == 0 || !strings.HasPrefix(a.ETag, `"`) {
			t.Errorf("%s: content type %q, %d bytes, ETag %s", name, a.ContentType, len(a.Body), a.ETag)
		}
	}
}

func TestLookup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		ok, current   bool
		wantAssetName string
	}{
		{"app.css", true, false, "app.css"},
		{"app.0123456789.css", true, false, "app.css"}, // an older version's name
		{"tracker-worker.js", true, false, "tracker-worker.js"},
		{"nope.css", false, false, ""},
		{"nope.0123456789.css", false, false, ""},
		{"", false, false, ""},
		{"app", false, false, ""},
	}
	for _, tt := range tests {
		a, current, ok := Lookup(tt.name)
		if ok != tt.ok || current != tt.current || (ok && a.Name != tt.wantAssetName) {
			t.Errorf("Lookup(%q) = %v, %v, %v; want %s, %v, %v", tt.name, a, current, ok, tt.wantAssetName, tt.current, tt.ok)
		}
	}
}

func TestURLPanicsForAMissingFile(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Error("URL of a missing file did not panic")
		}
	}()
	URL("missing.css")
}

// TestScriptsNeverTurnDataIntoHTML guards the rule of every script here:
// text goes into the page with textContent, never through an HTML parser.
func TestScriptsNeverTurnDataIntoHTML(t *testing.T) {
	t.Parallel()
	sinks := regexp.MustCompile(`\.(innerHTML|outerHTML)\s*[+]?=|insertAdjacentHTML\s*\(|document\.write|\beval\s*\(|new\s+Function\s*\(|createContextualFragment`)
	names, _ := fs.Glob(files, "*.js")
	for _, name := range names {
		body, _ := files.ReadFile(name)
		for i, line := range strings.Split(string(body), "\n") {
			if sinks.MatchString(line) {
				t.Errorf("%s:%d: %s", name, i+1, strings.TrimSpace(line))
			}
		}
	}
}

// TestTrackScriptKnowsNoStatus keeps the tracking page's rules on the
// server: the page renders what to show after every move, and track.js only
// applies it. A status named in the script would be a rule written twice.
func TestTrackScriptKnowsNoStatus(t *testing.T) {
	t.Parallel()
	body, err := files.ReadFile("track.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range orders.Statuses {
		for i, line := range strings.Split(string(body), "\n") {
			if strings.Contains(line, "'"+string(s)+"'") || strings.Contains(line, `"`+string(s)+`"`) {
				t.Errorf("track.js:%d names the status %s: %s", i+1, s, strings.TrimSpace(line))
			}
		}
	}
}

// TestEveryStreamIsAReconnectingStream keeps one mechanism for every event
// stream the pages and workers open: reconnecting-stream.js alone makes an
// EventSource, and every script that follows a stream goes through it.
func TestEveryStreamIsAReconnectingStream(t *testing.T) {
	t.Parallel()
	names, _ := fs.Glob(files, "*.js")
	for _, name := range names {
		body, _ := files.ReadFile(name)
		opens := strings.Contains(string(body), "new EventSource(")
		switch {
		case name == "reconnecting-stream.js" && !opens:
			t.Errorf("%s makes no EventSource", name)
		case name != "reconnecting-stream.js" && opens:
			t.Errorf("%s makes an EventSource of its own, which reconnects only after a network error", name)
		}
	}
	for _, name := range []string{"track.js", "tracker-worker.js", "staff.js", "staff-worker.js"} {
		body, err := files.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(body), "new ReconnectingStream(") {
			t.Errorf("%s follows its stream without a ReconnectingStream", name)
		}
	}
}
