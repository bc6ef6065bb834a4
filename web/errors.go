package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"

	"github.com/ordertracker/ordertracker/orders"
)

// errBadBody is a request body that could not be read: the client went
// away or stopped sending midway, sent it too slowly (the server's
// ReadTimeout), sent more than is allowed, or sent something that is not a
// form. It is the client's doing, never the server's.
var errBadBody = errors.New("the request body could not be read")

// readForm reads a form post of at most maxFormBody bytes into r.PostForm;
// a failure is an errBadBody.
func readForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		return fmt.Errorf("%w: %w", errBadBody, err)
	}
	return nil
}

// bodyCutShort reports whether err, from reading a request body, means the
// body stopped before its end: the connection closed, or timed out.
func bodyCutShort(err error) bool {
	var netErr net.Error
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || errors.As(err, &netErr)
}

// statusOf maps an error to the HTTP status that reports it: the domain's
// errors, and a client that went away. This is the one place where that
// mapping lives.
func statusOf(err error) int {
	var invalid *orders.ValidationError
	switch {
	case errors.Is(err, orders.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, orders.ErrIllegalTransition):
		return http.StatusConflict
	case errors.As(err, &invalid), errors.Is(err, errBadBody):
		return http.StatusBadRequest
	case errors.Is(err, context.Canceled):
		// A request's context ends when its client goes away; what failed
		// because of that is no fault of the server's, and the client no
		// longer hears the answer. It is logged as a client error, not a
		// 500 with an error line.
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// messageOf is what a person is told about err: the domain's own words for
// its errors, and nothing of the server's insides for anything else.
func messageOf(err error) string {
	var invalid *orders.ValidationError
	switch {
	case errors.As(err, &invalid):
		return "Some of the order needs fixing."
	case statusOf(err) == http.StatusBadRequest:
		return "The form did not arrive whole. Please try again."
	case statusOf(err) == http.StatusNotFound:
		return "No order has that tracking code."
	case errors.Is(err, errTooLateToCancel):
		return "Your order can no longer be cancelled: the kitchen has already started on it."
	case statusOf(err) == http.StatusConflict:
		return "That move is not possible any more: the order has already moved on."
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
