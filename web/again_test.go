package web

import (
	"net/http"
	"testing"

	"github.com/ordertracker/ordertracker/orders"
)

func TestOrderAgainFillsTheFormWithTheSameItems(t *testing.T) {
	t.Parallel()
	a := newPagesApp(t)
	o, err := a.store.Create(t.Context(), orders.NewOrder{CustomerName: "Mia <b>Rossi</b>", Lines: []orders.Line{
		{MenuID: "margherita", Quantity: 2}, {MenuID: "lemonade", Quantity: 1},
	}})
	if err != nil {
		t.Fatal(err)
	}
	a.deliver(t, o, orders.Received)

	track := a.get(t, "/orders/"+o.Token)
	link := track.byID("order-again")
	if link == nil {
		t.Fatal("the delivered order's page has no Order again link")
	}
	p := a.get(t, attr(link, "href"))
	if p.resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d, want 200", attr(link, "href"), p.resp.StatusCode)
	}
	if got, want := attr(p.byID("name"), "value"), "Mia <b>Rossi</b>"; got != want {
		t.Errorf("name = %q, want %q", got, want)
	}
	for id, want := range map[string]string{"qty-margherita": "2", "qty-lemonade": "1", "qty-tiramisu": "0"} {
		if got := attr(p.byID(id), "value"); got != want {
			t.Errorf("%s = %q, want %q", id, got, want)
		}
	}
}

func TestOrderAgainOfAnUnknownOrderIsNotFound(t *testing.T) {
	t.Parallel()
	a := newPagesApp(t)
	for _, token := range []string{orders.NewToken(), "nonsense", "%00"} {
		if p := a.get(t, "/?again="+token); p.resp.StatusCode != http.StatusNotFound {
			t.Errorf("again=%q: %d, want 404", token, p.resp.StatusCode)
		}
	}
}
