package web

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ordertracker/ordertracker/static"
)

func TestMyOrdersPageIsTheSameFrameForEveryone(t *testing.T) {
	t.Parallel()
	a := newPagesApp(t)
	p := a.get(t, "/my-orders")
	if p.resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /my-orders: %d, want 200", p.resp.StatusCode)
	}
	if got := p.resp.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	card := p.byID("my-orders-card")
	if card == nil {
		t.Fatal("the page has no list of orders")
	}
	// The list is the browser's: the page must follow it through the
	// tracking tabs' own worker, by the very same URL, to share its stream.
	if got, want := attr(card, "data-worker-url"), static.URL("tracker-worker.js")+"?stream="; !strings.HasPrefix(got, want) {
		t.Errorf("worker URL = %q, want it to start with %q", got, want)
	}
	if !strings.Contains(p.body, "<noscript>") || !strings.Contains(p.body, "needs JavaScript") {
		t.Error("the page does not say, without JavaScript, that it needs it")
	}
	if !strings.Contains(p.body, static.URL("my-orders.js")) {
		t.Error("the page does not load my-orders.js")
	}
	if list := p.byID("my-orders"); list == nil || list.FirstChild != nil {
		t.Error("the server put something in the list; the list is the browser's")
	}
}
