package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/ordertracker/ordertracker/internal/stream"
	"github.com/ordertracker/ordertracker/orders"
)

// orderJSON is an order as the JSON API shows it.
type orderJSON struct {
	Token       string               `json:"token"`
	Status      orders.Status        `json:"status"`
	Label       string               `json:"label"`
	Seq         int                  `json:"seq"`
	Name        string               `json:"name"`
	Items       []orders.Item        `json:"items"`
	TotalCents  int                  `json:"total_cents"`
	CreatedAt   time.Time            `json:"created_at"`
	UpdatedAt   time.Time            `json:"updated_at"`
	TrackingURL string               `json:"tracking_url"`
	EventsURL   string               `json:"events_url"`
	Events      []stream.OrderUpdate `json:"events,omitempty"`
}

func newOrderJSON(o orders.Order, events []orders.Event) orderJSON {
	j := orderJSON{
		Token:       o.Token,
		Status:      o.Status,
		Label:       o.Status.Label(),
		Seq:         o.Seq,
		Name:        o.CustomerName,
		Items:       o.Items,
		TotalCents:  o.TotalCents,
		CreatedAt:   o.CreatedAt.UTC(),
		UpdatedAt:   o.UpdatedAt.UTC(),
		TrackingURL: "/orders/" + o.Token,
		EventsURL:   "/orders/" + o.Token + "/events",
	}
	for _, ev := range events {
		j.Events = append(j.Events, stream.NewOrderUpdate(ev))
	}
	return j
}

// maxJSONBody bounds a JSON request body.
const maxJSONBody = 64 << 10

// orderCreator is what placing an order needs.
type orderCreator interface {
	Create(ctx context.Context, n orders.NewOrder) (orders.Order, error)
}

// handleCreateOrderJSON serves POST /api/orders:
//
//	{"name": "Ada", "items": [{"id": "margherita", "quantity": 2}]}
//
// It answers 201 with the order, 400 with {"error", "fields"}, or, past the
// client's order limit, 429 with {"error"} and Retry-After.
func handleCreateOrderJSON(store orderCreator, limit *orderLimit, log *slog.Logger) http.Handler {
	type request struct {
		Name  string        `json:"name"`
		Items []orders.Line `json:"items"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req request
		if err := decodeJSON(w, r, &req); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": err.Error()})
			return
		}
		n := orders.NewOrder{CustomerName: req.Name, Lines: req.Items}
		if _, _, err := n.Validate(); err != nil {
			apiError(w, r, log, err)
			return
		}
		if ok, wait := limit.allow(w, r); !ok {
			writeJSON(w, http.StatusTooManyRequests, map[string]any{"error": tooManyOrders(wait)})
			return
		}
		o, err := store.Create(r.Context(), n)
		if err != nil {
			apiError(w, r, log, err)
			return
		}
		w.Header().Set("Location", "/api/orders/"+o.Token)
		writeJSON(w, http.StatusCreated, newOrderJSON(o, nil))
	})
}

// handleOrderJSON serves GET /api/orders/{token}: the order with its whole
// event history.
func handleOrderJSON(store orderEvents, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o, err := store.Get(r.Context(), chi.URLParam(r, "token"))
		if err != nil {
			apiError(w, r, log, err)
			return
		}
		events, err := store.Events(r.Context(), o.ID, 0)
		if err != nil {
			apiError(w, r, log, err)
			return
		}
		writeJSON(w, http.StatusOK, newOrderJSON(o, events))
	})
}

// decodeJSON reads one JSON object from the request body into v and says,
// in words a client developer can act on, what is wrong with a bad one.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var tooBig *http.MaxBytesError
	switch {
	case err == nil:
		if dec.More() {
			return errors.New("the body must hold a single JSON object")
		}
		return nil
	case errors.Is(err, io.EOF):
		return errors.New("the body is empty; send a JSON object")
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("the body is not valid JSON")
	case errors.As(err, &typ):
		return fmt.Errorf("field %q must be a %s", typ.Field, typ.Type.Kind())
	case errors.As(err, &tooBig):
		return fmt.Errorf("the body is larger than %d bytes", maxJSONBody)
	case bodyCutShort(err):
		return errors.New("the body did not arrive whole")
	}
	return fmt.Errorf("the body is not an order: %s", err.Error())
}
