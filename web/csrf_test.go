package web

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/ordertracker/ordertracker/orders"
)

// TestCrossSiteRequestsAreRefused sends every state-changing request, staff
// and customer alike, as a browser would from another site, and from this
// one. NewHandler wraps everything in net/http.CrossOriginProtection, which
// reads Sec-Fetch-Site, or, from browsers that do not send it, Origin.
func TestCrossSiteRequestsAreRefused(t *testing.T) {
	t.Parallel()
	a := newStaffApp(t, staffOptions{})
	session := a.login(t, call{})
	ctx := context.Background()
	var addresses atomic.Int32

	countOrders := func(t *testing.T) int {
		t.Helper()
		list, err := a.store.List(ctx, orders.ListOptions{Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		return len(list)
	}

	// An endpoint is one state-changing request: how to make it, what it
	// answers when it is let through, and whether it changed anything.
	type endpoint struct {
		name string
		// prepare readies a request, and returns how to tell whether it
		// took effect.
		prepare func(t *testing.T) (method, path string, c call, changed func() bool)
		allowed int
	}
	endpoints := []endpoint{
		{"POST /orders", func(t *testing.T) (string, string, call, func() bool) {
			before := countOrders(t)
			form := url.Values{"name": {"Mallory"}, "qty-margherita": {"1"}}
			return http.MethodPost, "/orders", call{form: form}, func() bool { return countOrders(t) != before }
		}, http.StatusSeeOther},
		{"POST /api/orders", func(t *testing.T) (string, string, call, func() bool) {
			before := countOrders(t)
			return http.MethodPost, "/api/orders", call{json: `{"name": "Mallory", "items": [{"id": "diavola", "quantity": 1}]}`},
				func() bool { return countOrders(t) != before }
		}, http.StatusCreated},
		{"POST /staff/login", func(t *testing.T) (string, string, call, func() bool) {
			// A login form on another site that signs the browser in to
			// ours, with a password the attacker knows, is forgery too.
			// From an address of its own, so as not to meet the limit.
			return http.MethodPost, "/staff/login", call{form: url.Values{"password": {testStaffPassword}}, from: "127.0.0.5"}, nil
		}, http.StatusSeeOther},
		{"POST /staff/logout", func(t *testing.T) (string, string, call, func() bool) {
			// A page on another site that signs staff out: a nuisance,
			// and forgery all the same. Each from an address of its own,
			// so as not to meet the sign-in limit.
			fresh := a.login(t, call{from: "127.0.6." + strconv.Itoa(int(addresses.Add(1)))})
			signedOut := func() bool {
				return a.send(t, http.MethodGet, "/staff/session", call{session: fresh}).status == http.StatusUnauthorized
			}
			return http.MethodPost, "/staff/logout", call{form: url.Values{}, session: fresh}, signedOut
		}, http.StatusSeeOther},
		{"POST /staff/orders/{token}/advance", func(t *testing.T) (string, string, call, func() bool) {
			o := a.create(t, "Ada")
			c := call{form: url.Values{"from": {"received"}}, session: session}
			return http.MethodPost, "/staff/orders/" + o.Token + "/advance", c, func() bool { return a.status(t, o) != orders.Received }
		}, http.StatusSeeOther},
	}

	self := a.server.URL
	refused := []struct {
		name   string
		header []string
	}{
		{"Sec-Fetch-Site: cross-site", []string{"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"}},
		{"Sec-Fetch-Site: same-site", []string{"Sec-Fetch-Site", "same-site", "Origin", "http://shop.127.0.0.1.nip.io"}},
		{"Sec-Fetch-Site: cross-site, with our own Origin", []string{"Sec-Fetch-Site", "cross-site", "Origin", self}},
		{"a foreign Origin, no Sec-Fetch-Site", []string{"Origin", "https://evil.example"}},
		{"Origin: null, no Sec-Fetch-Site", []string{"Origin", "null"}},
	}
	allowed := []struct {
		name   string
		header []string
	}{
		{"Sec-Fetch-Site: same-origin", []string{"Sec-Fetch-Site", "same-origin", "Origin", self}},
		{"our own Origin, no Sec-Fetch-Site", []string{"Origin", self}},
		{"Sec-Fetch-Site: none (typed by the user)", []string{"Sec-Fetch-Site", "none"}},
		{"no browser headers at all (curl)", nil},
	}

	for _, e := range endpoints {
		for _, c := range refused {
			t.Run(e.name+" is refused with "+c.name, func(t *testing.T) {
				method, path, req, changed := e.prepare(t)
				req.header = c.header
				r := a.send(t, method, path, req)
				if r.status != http.StatusForbidden {
					t.Errorf("status %d, want 403", r.status)
				}
				if changed != nil && changed() {
					t.Error("the refused request took effect")
				}
				if r.session != nil || r.device != nil {
					t.Error("the refused request set a session or device cookie")
				}
			})
		}
		for _, c := range allowed {
			t.Run(e.name+" is allowed with "+c.name, func(t *testing.T) {
				method, path, req, changed := e.prepare(t)
				req.header = c.header
				r := a.send(t, method, path, req)
				if r.status != e.allowed {
					t.Errorf("status %d, want %d; body: %.300s", r.status, e.allowed, r.body)
				}
				if changed != nil && !changed() {
					t.Error("the request was answered but took no effect")
				}
			})
		}
	}
}
