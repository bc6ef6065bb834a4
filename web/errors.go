package web

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/ordertracker/ordertracker/orders"
)

// statusOf maps an error from the domain to the HTTP status that reports it.
// This is the one place where that mapping lives.
func statusOf(err error) int {
	var invalid *orders.ValidationError
	switch {
	case errors.Is(err, orders.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, orders.ErrIllegalTransition):
		return http.StatusConflict
	case errors.As(err, &invalid):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// messageOf is what a person is told about err: the domain's own words for
// its errors, and nothing of the server's insides for anything else.
func messageOf(err error) string {
	switch statusOf(err) {
	case http.StatusNotFound:
		return "No order has that tracking code."
	case http.StatusConflict:
		return "That move is not possible any more: the order has already moved on."
	case http.StatusBadRequest:
		return "Some of the order needs fixing."
	}
	return "Something went wrong on our side. Please try again in a moment."
}

// apiError writes err as a JSON error response, logging it if it is the
// server's fault.
func apiError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	status := statusOf(err)
	if status >= 500 {
		log.ErrorContext(r.Context(), "request failed", "err", err)
	}
	body := map[string]any{"error": messageOf(err)}
	var invalid *orders.ValidationError
	if errors.As(err, &invalid) {
		body["fields"] = invalid.Fields
	}
	writeJSON(w, status, body)
}
