package web

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/ordertracker/ordertracker/internal/stream"
	"github.com/ordertracker/ordertracker/orders"
)

func TestACustomerCancelsTheirOrderWhileItIsReceived(t *testing.T) {
	t.Parallel()
	a := newPagesApp(t)
	o := a.create(t, "Ada")
	p := a.postForm(t, "/orders/"+o.Token+"/cancel", nil)
	if p.resp.StatusCode != http.StatusSeeOther || p.resp.Header.Get("Location") != "/orders/"+o.Token {
		t.Fatalf("cancel: %d to %q, want 303 to the tracking page", p.resp.StatusCode, p.resp.Header.Get("Location"))
	}
	if got := a.status(t, o); got != orders.Cancelled {
		t.Fatalf("the order is %s, want cancelled", got)
	}
	events, err := a.store.Events(t.Context(), o.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || events[0].Actor != orders.ByCustomer {
		t.Errorf("events after the first: %+v, want one cancel by the customer", events)
	}
}

func TestACustomerCannotCancelOnceTheKitchenHasStarted(t *testing.T) {
	t.Parallel()
	a := newPagesApp(t)
	cooking := a.create(t, "Ada")
	a.advance(t, cooking, orders.Received)
	cancelled := a.create(t, "Bo")
	a.postForm(t, "/orders/"+cancelled.Token+"/cancel", nil)
	delivered := a.create(t, "Cy")
	a.deliver(t, delivered, orders.Received)
	for _, tc := range []struct {
		name string
		o    orders.Order
		want orders.Status
	}{
		{"cooking", cooking, orders.Cooking},
		{"already cancelled", cancelled, orders.Cancelled},
		{"delivered", delivered, orders.Delivered},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := a.postForm(t, "/orders/"+tc.o.Token+"/cancel", nil)
			if p.resp.StatusCode != http.StatusConflict || !strings.Contains(p.textOf("problem"), "can no longer be cancelled") {
				t.Errorf("form: %d, want 409 with a message that it can no longer be cancelled", p.resp.StatusCode)
			}
			if p.byID("tracking") == nil || p.byID("cancel-form") != nil || p.textOf("status-label") != tc.want.Label() {
				t.Errorf("the 409 is not the tracking page as it stands, without a cancel button")
			}
			status, body := a.postJSON(t, "/api/orders/"+tc.o.Token+"/cancel")
			if status != http.StatusConflict || !strings.Contains(body["error"].(string), "can no longer be cancelled") {
				t.Errorf("API: %d %v, want 409 saying it can no longer be cancelled", status, body)
			}
			if got := a.status(t, tc.o); got != tc.want {
				t.Errorf("the order is %s, want it still %s", got, tc.want)
			}
		})
	}
}

func TestTheJSONAPICancelsAndAnswersWithTheEvent(t *testing.T) {
	t.Parallel()
	a := newPagesApp(t)
	o := a.create(t, "Ada")
	resp, err := a.client.Post(a.server.URL+"/api/orders/"+o.Token+"/cancel", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var u stream.OrderUpdate
	if err := json.NewDecoder(resp.Body).Decode(&u); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || u.Token != o.Token || u.Seq != 2 || u.Status != orders.Cancelled || u.Actor != orders.ByCustomer || !u.Final {
		t.Errorf("API cancel: %d %+v, want 200 with the final cancel, seq 2, by the customer", resp.StatusCode, u)
	}
	for _, token := range []string{orders.NewToken(), "not-a-token"} {
		if status, _ := a.postJSON(t, "/api/orders/"+token+"/cancel"); status != http.StatusNotFound {
			t.Errorf("cancel of %s: %d, want 404", token, status)
		}
		if p := a.postForm(t, "/orders/"+token+"/cancel", url.Values{}); p.resp.StatusCode != http.StatusNotFound {
			t.Errorf("form cancel of %s: %d, want 404", token, p.resp.StatusCode)
		}
	}
}

func TestACancelFromAnotherSiteIsRefused(t *testing.T) {
	t.Parallel()
	a := newPagesApp(t)
	o := a.create(t, "Ada")
	req, _ := http.NewRequest(http.MethodPost, a.server.URL+"/orders/"+o.Token+"/cancel", nil)
	req.Header.Set("Origin", "https://elsewhere.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := a.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a cross-site cancel: %d, want 403", resp.StatusCode)
	}
	if got := a.status(t, o); got != orders.Received {
		t.Errorf("the order is %s, want it still received", got)
	}
}

// postJSON posts to a JSON API address with no body and decodes the answer.
func (a *pagesApp) postJSON(t *testing.T, path string) (int, map[string]any) {
	t.Helper()
	resp, err := a.client.Post(a.server.URL+path, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("%s: the answer is not JSON: %v", path, err)
	}
	return resp.StatusCode, body
}

func TestTheCancelButtonIsThereOnlyWhileTheOrderIsReceived(t *testing.T) {
	t.Parallel()
	a := newPagesApp(t)
	received := a.create(t, "Ada")
	cooking := a.create(t, "Bo")
	a.advance(t, cooking, orders.Received)
	for _, tc := range []struct {
		name string
		o    orders.Order
		want bool
	}{
		{"a received order has it", received, true},
		{"a cooking order has none", cooking, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := a.get(t, "/orders/"+tc.o.Token)
			form := p.byID("cancel-form")
			if got := form != nil; got != tc.want {
				t.Fatalf("cancel form shown: %v, want %v", got, tc.want)
			}
			if form == nil {
				return
			}
			if got, want := attr(form, "action"), "/orders/"+tc.o.Token+"/cancel"; got != want || attr(form, "method") != "post" {
				t.Errorf("the form posts to %q (%s), want POST %q", got, attr(form, "method"), want)
			}
		})
	}
}

func TestACustomersCancelIsTheirsOnTheTrackingPage(t *testing.T) {
	t.Parallel()
	a := newPagesApp(t)
	mine := a.create(t, "Ada")
	a.postForm(t, "/orders/"+mine.Token+"/cancel", nil)
	staffs := a.create(t, "Bo")
	if _, err := a.store.Cancel(t.Context(), staffs.Token, orders.ByStaff); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name         string
		o            orders.Order
		message, who string
	}{
		{"cancelled by the customer", mine, "You cancelled this order.", "by you"},
		{"cancelled by the restaurant", staffs, "The restaurant cancelled this order. We are sorry.", "by the restaurant"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := a.get(t, "/orders/"+tc.o.Token)
			if got := p.textOf("status-message"); got != tc.message {
				t.Errorf("message = %q, want %q", got, tc.message)
			}
			items := p.find(func(n *html.Node) bool { return n.Data == "span" && attr(n, "class") == "timeline-who" })
			if len(items) != 2 || text(items[1]) != tc.who {
				t.Errorf("the timeline's last entry is not %q", tc.who)
			}
			if again := p.byID("again"); again == nil || hasAttr(again, "hidden") {
				t.Errorf("a finished order's page shows no Order again")
			}
		})
	}
}
