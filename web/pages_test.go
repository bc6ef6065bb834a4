package web

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/ordertracker/ordertracker/internal/pgtest"
	"github.com/ordertracker/ordertracker/internal/stream"
	"github.com/ordertracker/ordertracker/orders"
	"github.com/ordertracker/ordertracker/static"
)

// pagesApp is the whole handler over a store, without a listener: enough
// for pages, which read the database when they are asked for.
type pagesApp struct {
	fixtures
	server *httptest.Server
	client *http.Client // follows no redirects
}

func newPagesApp(t *testing.T) *pagesApp {
	t.Helper()
	store := orders.NewStore(pgtest.NewPool(t), orders.Options{})
	server := httptest.NewServer(NewHandler(store, stream.NewHub(stream.Options{Logger: quiet}), nil, Config{}, quiet))
	t.Cleanup(server.Close)
	client := server.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &pagesApp{fixtures: fixtures{store}, server: server, client: client}
}

// htmlPage is a response with its body parsed as HTML.
type htmlPage struct {
	resp *http.Response
	body string
	doc  *html.Node
}

func (a *pagesApp) get(t *testing.T, path string) htmlPage {
	t.Helper()
	resp, err := a.client.Get(a.server.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	return readPage(t, resp)
}

// postForm posts a form as a browser on this site would.
func (a *pagesApp) postForm(t *testing.T, path string, form url.Values) htmlPage {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, a.server.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", a.server.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := a.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return readPage(t, resp)
}

func readPage(t *testing.T, resp *http.Response) htmlPage {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	p := htmlPage{resp: resp, body: string(b)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		if p.doc, err = html.Parse(strings.NewReader(p.body)); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// find returns the elements for which match is true, in document order.
func (p htmlPage) find(match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	if p.doc == nil {
		return nil
	}
	for n := range p.doc.Descendants() {
		if n.Type == html.ElementNode && match(n) {
			out = append(out, n)
		}
	}
	return out
}

func (p htmlPage) byID(id string) *html.Node {
	found := p.find(func(n *html.Node) bool { return attr(n, "id") == id })
	if len(found) == 0 {
		return nil
	}
	return found[0]
}

// textOf is the text of the element with the given id, with white space
// collapsed, or "(missing)".
func (p htmlPage) textOf(id string) string {
	n := p.byID(id)
	if n == nil {
		return "(missing)"
	}
	return text(n)
}

func attr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

func hasAttr(n *html.Node, name string) bool {
	return slices.ContainsFunc(n.Attr, func(a html.Attribute) bool { return a.Key == name })
}

func text(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

func TestHomePageShowsTheMenuAndAnEmptyForm(t *testing.T) {
	t.Parallel()
	a := newPagesApp(t)
	p := a.get(t, "/")
	if p.resp.StatusCode != http.StatusOK || p.resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("%d %s, want 200 text/html", p.resp.StatusCode, p.resp.Header.Get("Content-Type"))
	}
	form := p.byID("order-form")
	if form == nil || attr(form, "method") != "post" || attr(form, "action") != "/orders" {
		t.Fatalf("no form that posts to /orders")
	}
	for _, m := range orders.Menu {
		field := "qty-" + m.ID
		input := p.byID(field)
		if input == nil || attr(input, "name") != field || attr(input, "value") != "0" {
			t.Errorf("%s: no quantity field %s starting at 0", m.Name, field)
			continue
		}
		labels := p.find(func(n *html.Node) bool { return n.Data == "label" && attr(n, "for") == field })
		if len(labels) != 1 || text(labels[0]) != m.Name {
			t.Errorf("the quantity field of %s has no label naming it", m.Name)
		}
	}
	if got := text(p.byID("order-form")); !strings.Contains(got, "Margherita") || !strings.Contains(got, "€9.50") {
		t.Errorf("the menu does not show Margherita at €9.50: %q", got)
	}
	if p.byID("name") == nil || len(p.find(func(n *html.Node) bool { return n.Data == "label" && attr(n, "for") == "name" })) != 1 {
		t.Error("no labelled name field")
	}
	if p.find(func(n *html.Node) bool { return attr(n, "class") == "field-error" }) != nil {
		t.Error("a fresh form shows errors")
	}
}

func TestPlacingAnOrderRedirectsToItsTrackingPage(t *testing.T) {
	t.Parallel()
	a := newPagesApp(t)
	p := a.postForm(t, "/orders", url.Values{
		"name": {"  Mia Rossi "}, "qty-margherita": {"2"}, "qty-lemonade": {"1"}, "qty-funghi": {"0"}, "qty-diavola": {""},
	})
	if p.resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("status %d, want 303 See Other: %s", p.resp.StatusCode, p.body)
	}
	location := p.resp.Header.Get("Location")
	token, ok := strings.CutPrefix(location, "/orders/")
	if !ok || !orders.ValidToken(token) {
		t.Fatalf("Location %q, want /orders/{token}", location)
	}
	o, err := a.store.Get(context.Background(), token)
	if err != nil {
		t.Fatal(err)
	}
	if o.CustomerName != "Mia Rossi" || o.TotalCents != 2*950+350 || len(o.Items) != 2 {
		t.Errorf("placed %+v, want Ada's two margheritas and a lemonade", o)
	}

	track := a.get(t, location)
	if track.resp.StatusCode != http.StatusOK {
		t.Fatalf("the tracking page answers %d", track.resp.StatusCode)
	}
	for id, want := range map[string]string{
		"status-label":   "Received",
		"status-message": "We have your order and the kitchen will start on it shortly.",
	} {
		if got := track.textOf(id); got != want {
			t.Errorf("#%s = %q, want %q", id, got, want)
		}
	}
	if got := text(track.find(func(n *html.Node) bool { return attr(n, "class") == "summary-total" })[0]); got != "Total €22.50" {
		t.Errorf("the summary's total reads %q", got)
	}
}

func TestABadFormComesBackWithItsValuesAndAMessagePerField(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", orders.MaxNameLength+1)
	tests := []struct {
		name   string
		form   url.Values
		errors map[string]string // field id -> message
	}{
		{
			name:   "no name and nothing chosen",
			form:   url.Values{"name": {""}, "qty-margherita": {"0"}},
			errors: map[string]string{"name": "Please tell us your name.", "items": "Choose at least one item."},
		},
		{
			name:   "a quantity that is not a number",
			form:   url.Values{"name": {"Ada"}, "qty-funghi": {"two"}},
			errors: map[string]string{"qty-funghi": "Enter a whole number, such as 1 or 2."},
		},
		{
			name:   "a quantity over the limit, beside a good one",
			form:   url.Values{"name": {"Ada"}, "qty-funghi": {"1"}, "qty-diavola": {"25"}},
			errors: map[string]string{"qty-diavola": "Choose between 1 and 20."},
		},
		{
			name:   "a negative quantity",
			form:   url.Values{"name": {"Ada"}, "qty-tiramisu": {"-1"}},
			errors: map[string]string{"qty-tiramisu": "Choose between 1 and 20."},
		},
		{
			name:   "a name too long and a bad quantity at once",
			form:   url.Values{"name": {long}, "qty-lemonade": {"1.5"}},
			errors: map[string]string{"name": "Please keep the name to 80 characters.", "qty-lemonade": "Enter a whole number, such as 1 or 2."},
		},
	}
	a := newPagesApp(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := a.postForm(t, "/orders", tt.form)
			if p.resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", p.resp.StatusCode)
			}
			if got := text(p.find(func(n *html.Node) bool { return attr(n, "role") == "alert" })[0]); got != "Some of the order needs fixing." {
				t.Errorf("the form's alert reads %q", got)
			}
			errs := p.find(func(n *html.Node) bool { return attr(n, "class") == "field-error" })
			if len(errs) != len(tt.errors) {
				t.Errorf("%d messages, want %d: %q", len(errs), len(tt.errors), text(p.byID("order-form")))
			}
			for field, want := range tt.errors {
				if got := p.textOf(field + "-error"); got != want {
					t.Errorf("beside %s: %q, want %q", field, got, want)
				}
				if field == "items" {
					continue
				}
				input := p.byID(field)
				if attr(input, "aria-invalid") != "true" || !strings.Contains(attr(input, "aria-describedby"), field+"-error") {
					t.Errorf("%s is not marked invalid and described by its message", field)
				}
			}
			// Everything typed is kept, as typed, but for what a number
			// input cannot hold: a word in a quantity field.
			for key, values := range tt.form {
				if key == "name" {
					if got := attr(p.byID("name"), "value"); got != values[0] {
						t.Errorf("the name field holds %q, want %q", got, values[0])
					}
					continue
				}
				want := values[0]
				switch want {
				case "":
					want = "0"
				case "two":
					want = ""
				}
				if got := attr(p.byID(key), "value"); got != want {
					t.Errorf("%s holds %q, want %q", key, got, want)
				}
			}
			// The first field to fix gets the focus.
			if focused := p.find(func(n *html.Node) bool { return hasAttr(n, "autofocus") }); len(focused) != 1 {
				t.Errorf("%d fields have autofocus, want 1", len(focused))
			}
		})
	}
	if list, _ := a.store.List(context.Background(), orders.ListOptions{}); len(list) != 0 {
		t.Errorf("bad forms placed %d orders", len(list))
	}
}

// TestTheJSONAPIValidatesAsTheFormDoes sends the same bad order to the form
// and to the JSON API: the same fields are wrong, with the same words.
func TestTheJSONAPIValidatesAsTheFormDoes(t *testing.T) {
	t.Parallel()
	a := newPagesApp(t)
	form := a.postForm(t, "/orders", url.Values{"name": {" "}, "qty-diavola": {"21"}})
	resp, err := a.client.Post(a.server.URL+"/api/orders", "application/json",
		strings.NewReader(`{"name": " ", "items": [{"id": "diavola", "quantity": 21}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error  string            `json:"error"`
		Fields map[string]string `json:"fields"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusBadRequest || body.Error == "" {
		t.Fatalf("API: %d %+v, want 400 with an error", resp.StatusCode, body)
	}
	want := map[string]string{"name": form.textOf("name-error"), "items.diavola": form.textOf("qty-diavola-error")}
	if len(body.Fields) != len(want) || body.Fields["name"] != want["name"] || body.Fields["items.diavola"] != want["items.diavola"] {
		t.Errorf("API fields %v, want the form's %v", body.Fields, want)
	}

	for _, token := range []string{orders.NewToken(), "not-a-token"} {
		resp, err := a.client.Get(a.server.URL + "/api/orders/" + token)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Type") != "application/json" || !json.Valid(b) {
			t.Errorf("API GET of %s: %d %s %s, want a JSON 404", token, resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
	}
}

func TestTrackingPageShowsTheOrderAsItStands(t *testing.T) {
	t.Parallel()
	a := newPagesApp(t)
	t.Run("on its way", func(t *testing.T) {
		o := a.create(t, "Ada")
		a.moveTo(t, o, orders.Cooking)
		p := a.get(t, "/orders/"+o.Token)
		if p.resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", p.resp.StatusCode)
		}
		if got := text(p.find(func(n *html.Node) bool { return n.Data == "title" })[0]); !strings.HasPrefix(got, "Cooking") {
			t.Errorf("title = %q, want the status first", got)
		}
		root := p.byID("tracking")
		if attr(root, "data-seq") != "2" || attr(root, "data-token") != o.Token || attr(root, "data-final") != "false" {
			t.Errorf("the page's live state is %v, want seq 2, its token, not final", root.Attr)
		}
		if got := p.textOf("status-label"); got != "Cooking" {
			t.Errorf("status = %q", got)
		}
		steps := p.find(func(n *html.Node) bool { return n.Parent != nil && attr(n.Parent, "id") == "stepper" })
		var states []string
		for _, s := range steps {
			states = append(states, attr(s, "class"))
		}
		if want := []string{"step step-done", "step step-current", "step step-todo", "step step-todo"}; !slices.Equal(states, want) {
			t.Errorf("stepper = %q, want %q", states, want)
		}
		if current := p.find(func(n *html.Node) bool { return attr(n, "aria-current") == "step" }); len(current) != 1 || attr(current[0], "data-status") != "cooking" {
			t.Error("the current step is not marked for screen readers")
		}
		entries := p.find(func(n *html.Node) bool { return n.Parent != nil && attr(n.Parent, "id") == "timeline" })
		if len(entries) != 2 || !strings.Contains(text(entries[1]), "Cooking") || !regexp.MustCompile(`\d\d:\d\d:\d\d UTC`).MatchString(text(entries[1])) {
			t.Errorf("timeline = %d entries, want received and cooking with their times", len(entries))
		}
		if got := p.textOf("when"); !strings.HasPrefix(got, "Estimated delivery") {
			t.Errorf("the estimate reads %q", got)
		}
		refresh := p.find(func(n *html.Node) bool {
			return n.Data == "a" && n.Parent != nil && attr(n.Parent, "id") == "refresh-note"
		})
		if len(refresh) != 1 || attr(refresh[0], "href") != "/orders/"+o.Token {
			t.Error("no refresh link for a reader without JavaScript")
		}
		if got := p.textOf("hood-url"); got != "/orders/"+o.Token+"/events?since=2" {
			t.Errorf("the panel names the stream %q", got)
		}
	})
	t.Run("delivered", func(t *testing.T) {
		o := a.create(t, "Bo")
		a.moveTo(t, o, orders.Delivered)
		p := a.get(t, "/orders/"+o.Token)
		if got := p.textOf("when"); !strings.HasPrefix(got, "Delivered at") {
			t.Errorf("the estimate reads %q", got)
		}
		if p.byID("refresh-note") != nil {
			t.Error("a finished order asks to be refreshed")
		}
		if attr(p.byID("tracking"), "data-final") != "true" {
			t.Error("a delivered order is not final")
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		o := a.create(t, "Cy")
		a.moveTo(t, o, orders.Cooking)
		if _, err := a.store.Cancel(context.Background(), o.Token, orders.ByStaff); err != nil {
			t.Fatal(err)
		}
		p := a.get(t, "/orders/"+o.Token)
		if got := p.textOf("status-label"); got != "Cancelled" {
			t.Errorf("status = %q", got)
		}
		if got := p.textOf("status-message"); !strings.Contains(got, "cancelled") {
			t.Errorf("message = %q, want it to say the order was cancelled", got)
		}
		if attr(p.byID("status-card"), "data-status") != "cancelled" {
			t.Error("the status card is not styled as cancelled")
		}
		var states []string
		for _, s := range p.find(func(n *html.Node) bool { return n.Parent != nil && attr(n.Parent, "id") == "stepper" }) {
			states = append(states, attr(s, "class"))
		}
		if want := []string{"step step-done", "step step-stopped", "step step-skipped", "step step-skipped"}; !slices.Equal(states, want) {
			t.Errorf("stepper = %q, want %q", states, want)
		}
		if got := p.textOf("when"); !strings.HasPrefix(got, "Cancelled at") {
			t.Errorf("the estimate reads %q", got)
		}
	})
}

// movingStore moves an order on right after each Get, as a worker might
// between the page's two reads.
type movingStore struct {
	Store
	move func()
}

func (m movingStore) Get(ctx context.Context, token string) (orders.Order, error) {
	o, err := m.Store.Get(ctx, token)
	m.move()
	return o, err
}

// TestTrackingPageShowsNothingPastItsSequenceNumber: the page's stream
// resumes after the sequence number it renders, so a move that lands
// between its reads must not be on the page too, or it would show twice.
func TestTrackingPageShowsNothingPastItsSequenceNumber(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	store := orders.NewStore(pool, orders.Options{})
	o, err := store.Create(context.Background(), orders.NewOrder{CustomerName: "Ada", Lines: []orders.Line{{MenuID: "funghi", Quantity: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	moving := movingStore{Store: store, move: func() {
		if _, err := store.Advance(context.Background(), o.Token, orders.Received, orders.ByWorker); err != nil {
			t.Error(err)
		}
	}}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/orders/"+o.Token, nil)
	NewHandler(moving, stream.NewHub(stream.Options{Logger: quiet}), nil, Config{}, quiet).ServeHTTP(rec, req)
	p := readPage(t, rec.Result())
	entries := p.find(func(n *html.Node) bool { return n.Parent != nil && attr(n.Parent, "id") == "timeline" })
	if seq := attr(p.byID("tracking"), "data-seq"); seq != "1" || len(entries) != 1 {
		t.Errorf("the page resumes after seq %s and shows %d events, want 1 and 1", seq, len(entries))
	}
}

func TestUnknownAddressesGetTheFriendly404Page(t *testing.T) {
	t.Parallel()
	a := newPagesApp(t)
	var bodies []string
	for _, path := range []string{
		"/orders/" + orders.NewToken(), // well formed, unknown
		"/orders/not-a-token",
		"/orders/" + strings.ToLower(orders.NewToken()),
		"/orders/%3Cscript%3E",
	} {
		p := a.get(t, path)
		if p.resp.StatusCode != http.StatusNotFound || !strings.HasPrefix(p.resp.Header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: %d %s, want a 404 page", path, p.resp.StatusCode, p.resp.Header.Get("Content-Type"))
			continue
		}
		if got := text(p.find(func(n *html.Node) bool { return n.Data == "h1" })[0]); got != "We can't find that order" {
			t.Errorf("%s: heading %q", path, got)
		}
		if len(p.find(func(n *html.Node) bool { return n.Data == "a" && attr(n, "href") == "/" })) == 0 {
			t.Errorf("%s: no way back to the menu", path)
		}
		bodies = append(bodies, p.body)
	}
	for i := 1; i < len(bodies); i++ {
		if bodies[i] != bodies[0] {
			t.Error("404 pages differ between unknown and malformed tokens; a guess must learn nothing")
		}
	}
	p := a.get(t, "/no/such/page")
	if p.resp.StatusCode != http.StatusNotFound || text(p.find(func(n *html.Node) bool { return n.Data == "h1" })[0]) != "Page not found" {
		t.Errorf("an unknown address: %d, want the 404 page", p.resp.StatusCode)
	}
}

// TestPagesCarrySecurityHeadersAndNothingInline checks every kind of page:
// the headers, and that nothing in them needs the Content-Security-Policy
// to allow inline script or style.
func TestPagesCarrySecurityHeadersAndNothingInline(t *testing.T) {
	t.Parallel()
	a := newPagesApp(t)
	o := a.create(t, "Ada")
	pages := map[string]htmlPage{
		"home":       a.get(t, "/"),
		"tracking":   a.get(t, "/orders/"+o.Token),
		"not found":  a.get(t, "/orders/"+orders.NewToken()),
		"bad form":   a.postForm(t, "/orders", url.Values{"name": {""}}),
		"stylesheet": a.get(t, static.URL("app.css")),
	}
	for name, p := range pages {
		h := p.resp.Header
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: Content-Security-Policy %q lacks %s", name, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s: Content-Security-Policy allows inline code: %q", name, csp)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s: X-Content-Type-Options %q, Referrer-Policy %q", name, h.Get("X-Content-Type-Options"), h.Get("Referrer-Policy"))
		}
		if p.doc == nil {
			continue
		}
		if cc := h.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s: Cache-Control %q, want no-store for a page with a customer's details", name, cc)
		}
		for _, n := range p.find(func(*html.Node) bool { return true }) {
			switch {
			case n.Data == "script" && attr(n, "src") == "":
				t.Errorf("%s: an inline <script>", name)
			case n.Data == "style":
				t.Errorf("%s: an inline <style>", name)
			case hasAttr(n, "style"):
				t.Errorf("%s: a style attribute on <%s>", name, n.Data)
			}
			for _, at := range n.Attr {
				if strings.HasPrefix(at.Key, "on") {
					t.Errorf("%s: an event handler attribute %s on <%s>", name, at.Key, n.Data)
				}
				if (at.Key == "src" || at.Key == "href") && strings.HasPrefix(at.Val, "/static/") {
					if resp, err := a.client.Get(a.server.URL + at.Val); err != nil || resp.StatusCode != http.StatusOK {
						t.Errorf("%s: %s does not load", name, at.Val)
					} else {
						resp.Body.Close()
					}
				}
			}
		}
	}
}

func TestANameIsEscapedWhereverItIsShown(t *testing.T) {
	t.Parallel()
	a := newPagesApp(t)
	const name = `<script>alert("x")</script><img src=x onerror=alert(1)> & 'quotes'`
	form := a.postForm(t, "/orders", url.Values{"name": {name}})
	o := a.create(t, name)
	track := a.get(t, "/orders/"+o.Token)
	for label, p := range map[string]htmlPage{"form": form, "tracking": track} {
		if strings.Contains(p.body, "<script>alert") || strings.Contains(p.body, "<img src=x") {
			t.Errorf("%s: the name went out as markup", label)
		}
		if n := len(p.find(func(n *html.Node) bool { return n.Data == "img" && attr(n, "src") == "x" })); n != 0 {
			t.Errorf("%s: the name became %d <img> elements", label, n)
		}
		if n := len(p.find(func(n *html.Node) bool { return n.Data == "script" && attr(n, "src") == "" })); n != 0 {
			t.Errorf("%s: the name became %d <script> elements", label, n)
		}
	}
	if got := attr(form.byID("name"), "value"); got != name {
		t.Errorf("the form keeps the name as %q, want %q", got, name)
	}
	customer := track.find(func(n *html.Node) bool { return attr(n, "class") == "customer" })
	if len(customer) != 1 || text(customer[0]) != strings.Join(strings.Fields(name), " ") {
		t.Errorf("the tracking page shows the name as %q", text(customer[0]))
	}
}

func TestStaticFilesAreCachedByTheirFingerprint(t *testing.T) {
	t.Parallel()
	a := newPagesApp(t)
	for _, name := range []string{"app.css", "track.js", "tracker-worker.js", "order-form.js", "icon.svg"} {
		t.Run(name, func(t *testing.T) {
			fingerprinted := static.URL(name)
			if !regexp.MustCompile(`^/static/[\w-]+\.[0-9a-f]{10}\.\w+$`).MatchString(fingerprinted) {
				t.Fatalf("URL %q carries no fingerprint", fingerprinted)
			}
			resp, err := a.client.Get(a.server.URL + fingerprinted)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			etag := resp.Header.Get("ETag")
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" || etag == "" {
				t.Errorf("%d, Cache-Control %q, ETag %q: want 200, immutable, an ETag", resp.StatusCode, resp.Header.Get("Cache-Control"), etag)
			}
			wantType := map[string]string{".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}
			for ext, typ := range wantType {
				if strings.HasSuffix(name, ext) && !strings.HasPrefix(resp.Header.Get("Content-Type"), typ) {
					t.Errorf("Content-Type %q, want %s", resp.Header.Get("Content-Type"), typ)
				}
			}

			// The plain name, and an old fingerprint, find the file but must
			// be checked again every time.
			for _, path := range []string{"/static/" + name, regexp.MustCompile(`\.[0-9a-f]{10}\.`).ReplaceAllString(fingerprinted, ".0000000000.")} {
				resp, err := a.client.Get(a.server.URL + path)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-cache" || resp.Header.Get("ETag") != etag {
					t.Errorf("%s: %d, Cache-Control %q: want 200, no-cache, the same ETag", path, resp.StatusCode, resp.Header.Get("Cache-Control"))
				}
			}

			req, _ := http.NewRequest(http.MethodGet, a.server.URL+"/static/"+name, nil)
			req.Header.Set("If-None-Match", etag)
			resp, err = a.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotModified {
				t.Errorf("a revalidation with the ETag got %d, want 304", resp.StatusCode)
			}
		})
	}
	for _, path := range []string{"/static/nope.js", "/static/", "/static/../static.go"} {
		resp, err := a.client.Get(a.server.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", path, resp.StatusCode)
		}
	}
}

// TestTrackingPageLinksItsStreams checks the addresses the tracking script
// is given: they must be the routes that serve the streams.
func TestTrackingPageLinksItsStreams(t *testing.T) {
	t.Parallel()
	a := newPagesApp(t)
	o := a.create(t, "Ada")
	p := a.get(t, "/orders/"+o.Token)
	root := p.byID("tracking")
	for attrName, wantType := range map[string]string{
		"data-events-url": "text/event-stream",
		"data-worker-url": "text/javascript",
	} {
		u := attr(root, attrName)
		if u == "" {
			t.Errorf("%s is missing", attrName)
			continue
		}
		if attrName == "data-events-url" {
			u += "?since=" + attr(root, "data-seq")
		}
		resp, err := a.client.Get(a.server.URL + u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), wantType) {
			t.Errorf("%s %s: %d %s, want %s", attrName, u, resp.StatusCode, resp.Header.Get("Content-Type"), wantType)
		}
	}
	multi := attr(root, "data-multi-url") + "?orders=" + o.Token + "&since=" + strconv.Itoa(o.Seq)
	resp, err := a.client.Get(a.server.URL + multi)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Errorf("%s: %d %s, want an event stream", multi, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}
