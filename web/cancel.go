package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/ordertracker/ordertracker/internal/stream"
	"github.com/ordertracker/ordertracker/orders"
	views "github.com/ordertracker/ordertracker/templ"
)

// A customer may cancel their own order while it is still only received:
// until the kitchen starts on it. The database enforces that as it does
// every other move (orders.Moves, legal_transition); these handlers only
// ask for it and say what happened.

// orderCanceller is what a customer's cancel needs.
type orderCanceller interface {
	Cancel(ctx context.Context, token string, by orders.Actor) (orders.Event, error)
}

// errTooLateToCancel is a customer's cancel of an order the kitchen has
// already started, or that has ended.
var errTooLateToCancel = fmt.Errorf("%w: the kitchen has started on the order", orders.ErrIllegalTransition)

// customerCancel cancels the order on the customer's behalf, with the
// error a customer is told when it is too late.
func customerCancel(ctx context.Context, store orderCanceller, token string) (orders.Event, error) {
	ev, err := store.Cancel(ctx, token, orders.ByCustomer)
	if errors.Is(err, orders.ErrIllegalTransition) {
		return ev, errTooLateToCancel
	}
	return ev, err
}

// cancelPageStore is what the tracking page's cancel button needs: the
// cancel, and the page to show when it is too late.
type cancelPageStore interface {
	orderCanceller
	pageStore
}

// handleCancelOrder serves POST /orders/{token}/cancel, the tracking page's
// cancel button: 303 back to the tracking page, which shows the order
// cancelled (and so does every open stream of it); or, when it is too late,
// 409 with the tracking page as it now stands and a message saying so.
func handleCancelOrder(store cancelPageStore, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := chi.URLParam(r, "token")
		_, err := customerCancel(r.Context(), store, token)
		if err == nil {
			http.Redirect(w, r, "/orders/"+token, http.StatusSeeOther)
			return
		}
		if !errors.Is(err, errTooLateToCancel) {
			errorPage(w, r, log, err)
			return
		}
		page, perr := trackingPage(r.Context(), store, token)
		if perr != nil {
			errorPage(w, r, log, perr)
			return
		}
		page.Problem = messageOf(err)
		render(w, r, log, http.StatusConflict, views.Track(page))
	})
}

// handleCancelOrderJSON serves POST /api/orders/{token}/cancel: 200 with
// the cancel's event, as the order's stream sends it; 409 with {"error"}
// when it is too late; 404 for an unknown token.
func handleCancelOrderJSON(store orderCanceller, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ev, err := customerCancel(r.Context(), store, chi.URLParam(r, "token"))
		if err != nil {
			apiError(w, r, log, err)
			return
		}
		writeJSON(w, http.StatusOK, stream.NewOrderUpdate(ev))
	})
}
