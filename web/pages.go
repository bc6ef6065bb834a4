package web

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/a-h/templ"
	"github.com/go-chi/chi/v5"

	"github.com/ordertracker/ordertracker/orders"
	views "github.com/ordertracker/ordertracker/templ"
)

// pageStore is what the customer pages read and write.
type pageStore interface {
	orderEvents
	orderCreator
	// Stages are the stage durations, for the delivery estimate.
	Stages() orders.StageDurations
}

// maxFormBody bounds the body of the order form: a name and a handful of
// quantities.
const maxFormBody = 16 << 10

// orderReader reads one order by its token.
type orderReader interface {
	Get(ctx context.Context, token string) (orders.Order, error)
}

// handleHomePage serves GET /: the menu and an empty order form, or, with
// ?again=<token>, the form filled in with that order's name and items, to
// order the same again. An unknown token gets the 404 of any other.
func handleHomePage(store orderReader, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var form views.OrderForm
		if token := r.URL.Query().Get("again"); token != "" {
			o, err := store.Get(r.Context(), token)
			if err != nil {
				errorPage(w, r, log, err)
				return
			}
			form = againForm(o)
		}
		page := views.NewHomePage(pageAssets(), orders.Menu, form)
		render(w, r, log, http.StatusOK, views.Home(page))
	})
}

// againForm is the order form filled in with o's name and items.
func againForm(o orders.Order) views.OrderForm {
	form := views.OrderForm{Name: o.CustomerName, Quantities: make(map[string]string)}
	for _, it := range o.Items {
		form.Quantities[it.MenuID] = strconv.Itoa(it.Quantity)
	}
	return form
}

// handlePlaceOrder serves POST /orders, the order form. A good order is
// placed and the browser is sent to its tracking page with 303 See Other,
// so a reload there does not post the form again. A bad one gets the form
// back, 400, with what was typed and a message beside each field to fix;
// one past the client's order limit gets it back too, 429, with how long
// to wait.
func handlePlaceOrder(store orderCreator, limit *orderLimit, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := readForm(w, r); err != nil {
			form := views.OrderForm{Problem: messageOf(err)}
			render(w, r, log, statusOf(err), views.Home(views.NewHomePage(pageAssets(), orders.Menu, form)))
			return
		}
		form, n := readOrderForm(r.PostForm)
		// Say everything that is wrong at once, not one field per post.
		_, _, err := n.Validate()
		addFieldErrors(&form, err)
		if len(form.Errors) > 0 {
			err = &orders.ValidationError{Fields: form.Errors}
		} else if ok, wait := limit.allow(w, r); !ok {
			form.Problem = tooManyOrders(wait)
			render(w, r, log, http.StatusTooManyRequests, views.Home(views.NewHomePage(pageAssets(), orders.Menu, form)))
			return
		} else {
			var o orders.Order
			if o, err = store.Create(r.Context(), n); err == nil {
				http.Redirect(w, r, "/orders/"+o.Token, http.StatusSeeOther)
				return
			}
			addFieldErrors(&form, err)
		}
		if statusOf(err) != http.StatusBadRequest {
			errorPage(w, r, log, err)
			return
		}
		form.Problem = messageOf(err)
		render(w, r, log, http.StatusBadRequest, views.Home(views.NewHomePage(pageAssets(), orders.Menu, form)))
	})
}

// readOrderForm reads the order form as typed. A quantity left empty or at
// 0 orders none of that item; one that is not a whole number is an error of
// its field, found here because the domain only ever sees numbers.
func readOrderForm(values url.Values) (views.OrderForm, orders.NewOrder) {
	form := views.OrderForm{
		Name:       values.Get("name"),
		Quantities: make(map[string]string),
		Errors:     make(map[string]string),
	}
	n := orders.NewOrder{CustomerName: form.Name}
	for _, m := range orders.Menu {
		typed := strings.TrimSpace(values.Get(views.QuantityField(m.ID)))
		form.Quantities[m.ID] = typed
		if typed == "" {
			continue
		}
		q, err := strconv.Atoi(typed)
		switch {
		case err != nil:
			form.Errors["items."+m.ID] = "Enter a whole number, such as 1 or 2."
		case q != 0:
			n.Lines = append(n.Lines, orders.Line{MenuID: m.ID, Quantity: q})
		}
	}
	return form, n
}

// addFieldErrors adds the messages of a *orders.ValidationError to the
// form's own, which win.
func addFieldErrors(form *views.OrderForm, err error) {
	var invalid *orders.ValidationError
	if !errors.As(err, &invalid) {
		return
	}
	for field, msg := range invalid.Fields {
		if _, ok := form.Errors[field]; !ok {
			form.Errors[field] = msg
		}
	}
	// "Choose at least one item" is beside the point when the items chosen
	// have errors of their own.
	for field := range form.Errors {
		if strings.HasPrefix(field, "items.") {
			delete(form.Errors, "items")
			break
		}
	}
}

// handleTrackingPage serves GET /orders/{token}: the order as it stands,
// rendered on the server, ready to go live.
func handleTrackingPage(store pageStore, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page, err := trackingPage(r.Context(), store, chi.URLParam(r, "token"))
		if err != nil {
			errorPage(w, r, log, err)
			return
		}
		render(w, r, log, http.StatusOK, views.Track(page))
	})
}

// trackingPage lays out the tracking page of the order with token as it
// stands.
func trackingPage(ctx context.Context, store pageStore, token string) (views.TrackPage, error) {
	o, err := store.Get(ctx, token)
	if err != nil {
		return views.TrackPage{}, err
	}
	events, err := store.Events(ctx, o.ID, 0)
	if err != nil {
		return views.TrackPage{}, err
	}
	// The order may have moved on between the two reads. The page must
	// show exactly the state up to o.Seq, because its stream resumes
	// after o.Seq: a later event shown here would arrive again.
	for len(events) > 0 && events[len(events)-1].Seq > o.Seq {
		events = events[:len(events)-1]
	}
	return views.NewTrackPage(pageAssets(), o, events, store.Stages(), time.Now()), nil
}

// handleMyOrdersPage serves GET /my-orders: the orders placed in this
// browser. The browser keeps the list, so the server sends the same page
// to everyone.
func handleMyOrdersPage(log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		render(w, r, log, http.StatusOK, views.MyOrders(views.MyOrdersPage{Assets: pageAssets()}))
	})
}

// handleNotFoundPage answers any address the router does not know.
func handleNotFoundPage(log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		notFoundPage(w, r, log, "Page not found", "There is nothing at this address.")
	})
}

// errorPage answers a page request that failed with err, as a page.
func errorPage(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	status := statusOf(err)
	if status == http.StatusNotFound {
		notFoundPage(w, r, log, "We can't find that order", messageOf(err))
		return
	}
	if status >= 500 {
		log.ErrorContext(r.Context(), "page failed", "err", err)
	}
	p := views.ErrorPage{Assets: pageAssets(), Title: "Sorry", Message: messageOf(err)}
	render(w, r, log, status, views.ServerError(p))
}

// notFoundPage writes the friendly 404 page.
func notFoundPage(w http.ResponseWriter, r *http.Request, log *slog.Logger, title, message string) {
	p := views.ErrorPage{Assets: pageAssets(), Title: title, Message: message}
	render(w, r, log, http.StatusNotFound, views.NotFound(p))
}

// render writes a page. It renders into memory first, so a failure midway
// is a clean 500 rather than half a page under a 200.
//
// It renders under a context that does not end with the request's: templ
// gives up on an ended context, and the request's ends when its client
// goes away, which is no failure of the page. The page, all in memory, is
// then written to nobody, and the request is logged with the status it
// was meant to have.
func render(w http.ResponseWriter, r *http.Request, log *slog.Logger, status int, c templ.Component) {
	var buf bytes.Buffer
	if err := c.Render(context.WithoutCancel(r.Context()), &buf); err != nil {
		log.ErrorContext(r.Context(), "render page", "err", err)
		http.Error(w, messageOf(err), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// Pages show a customer's name and order: no cache may keep them.
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}
