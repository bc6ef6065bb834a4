package web

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ordertracker/ordertracker/orders"
)

func TestStaffOrderPage(t *testing.T) {
	t.Parallel()
	a := newStaffApp(t, staffOptions{})
	cookie := a.login(t, call{})
	o := a.create(t, `<b>Ada</b>`)
	page := "/staff/orders/" + o.Token

	t.Run("it needs a sign-in", func(t *testing.T) {
		r := a.send(t, http.MethodGet, page, call{})
		if r.status != http.StatusSeeOther || r.header.Get("Location") != "/staff/login" {
			t.Errorf("without a session = %d to %q, want 303 to /staff/login", r.status, r.header.Get("Location"))
		}
	})

	t.Run("it shows the items, the total, the history and the buttons, the name as text", func(t *testing.T) {
		r := a.send(t, http.MethodGet, page, call{session: cookie})
		if r.status != http.StatusOK {
			t.Fatalf("GET %s = %d, want 200", page, r.status)
		}
		for _, want := range []string{"&lt;b&gt;Ada&lt;/b&gt;", "Margherita", "Lemonade", "Received", "by customer", "Start cooking", "Cancel order"} {
			if !strings.Contains(r.body, want) {
				t.Errorf("the page lacks %q", want)
			}
		}
		if strings.Contains(r.body, "<b>Ada</b>") {
			t.Error("the customer's name reaches the page as markup")
		}
	})

	t.Run("a move from the page comes back to it, with the move in the history", func(t *testing.T) {
		r := a.send(t, http.MethodPost, page+"/advance", call{session: cookie, form: url.Values{"from": {"received"}, "return": {"order"}}})
		if r.status != http.StatusSeeOther || r.header.Get("Location") != page {
			t.Fatalf("advance = %d to %q, want 303 to %s", r.status, r.header.Get("Location"), page)
		}
		back := a.send(t, http.MethodGet, page, call{session: cookie})
		history := back.body[strings.Index(back.body, `id="order-history"`):]
		if !strings.Contains(history, "Cooking") || !strings.Contains(history, "by staff") {
			t.Errorf("the history does not show the staff's move to cooking: %s", history)
		}
		if !strings.Contains(back.body, "order is now cooking.") {
			t.Error("the page does not say what the move did")
		}
		if !strings.Contains(back.body, "Send out") {
			t.Error("the page does not offer the next move")
		}
	})

	t.Run("a move no longer possible is 409 on the page, saying why", func(t *testing.T) {
		r := a.send(t, http.MethodPost, page+"/advance", call{session: cookie, form: url.Values{"from": {"received"}, "return": {"order"}}})
		if r.status != http.StatusConflict || !strings.Contains(r.body, "already cooking") || !strings.Contains(r.body, `id="order-history"`) {
			t.Errorf("a stale advance = %d, want 409 with the order page saying it is already cooking", r.status)
		}
		if got := a.status(t, o); got != orders.Cooking {
			t.Errorf("the order is %s, want cooking", got)
		}
	})

	for _, token := range []string{"AAAAAAAAAAAAAAAAAAAAAAAAAA", "not-a-token"} {
		t.Run("an unknown token "+token+" is the 404 page", func(t *testing.T) {
			r := a.send(t, http.MethodGet, "/staff/orders/"+token, call{session: cookie})
			if r.status != http.StatusNotFound || !strings.Contains(r.body, "Error 404") {
				t.Errorf("GET an unknown order = %d, want the 404 page", r.status)
			}
		})
	}

	t.Run("the board links each card to its page", func(t *testing.T) {
		r := a.send(t, http.MethodGet, "/staff", call{session: cookie})
		if !strings.Contains(r.body, `href="`+page+`"`) {
			t.Error("the board has no link to the order's page")
		}
	})
}

func TestStaffOrdersFindsByNameOrToken(t *testing.T) {
	t.Parallel()
	a := newStaffApp(t, staffOptions{})
	cookie := a.login(t, call{})
	lena := a.create(t, "Lena Park")
	a.create(t, "Omar Haddad")
	find := func(q string) reply {
		return a.send(t, http.MethodGet, "/staff/orders?q="+url.QueryEscape(q), call{session: cookie, header: []string{"Accept", "application/json"}})
	}
	for _, tc := range []struct{ name, q, want string }{
		{"a part of a name finds its order", "lena", lena.Token},
		{"a token finds its order", lena.Token, lena.Token},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := find(tc.q)
			var got struct {
				Orders []struct{ Token, Name string }
				More   bool
			}
			if err := json.Unmarshal([]byte(r.body), &got); err != nil || r.status != http.StatusOK {
				t.Fatalf("find %q = %d %s (%v)", tc.q, r.status, r.body, err)
			}
			if len(got.Orders) != 1 || got.Orders[0].Token != tc.want || got.Orders[0].Name != "Lena Park" || got.More {
				t.Errorf("find %q = %+v, want Lena's order alone", tc.q, got)
			}
		})
	}
	t.Run("a search longer than any name is 400", func(t *testing.T) {
		if r := find(strings.Repeat("x", 201)); r.status != http.StatusBadRequest {
			t.Errorf("a long search = %d, want 400", r.status)
		}
	})
	t.Run("it needs a session", func(t *testing.T) {
		if r := a.send(t, http.MethodGet, "/staff/orders?q=lena", call{}); r.status != http.StatusUnauthorized {
			t.Errorf("a search without a session = %d, want 401", r.status)
		}
	})
}
