package web

import (
	"encoding/json"
	"github.com/ordertracker/ordertracker/internal/sse"
	"strconv"
	"time"

	"github.com/ordertracker/ordertracker/orders"
)

// orderEventJSON is the data of an order_update event on a customer's
// stream. It carries nothing about other orders.
type orderEventJSON struct {
	Token  string        `json:"token"`
	Seq    int           `json:"seq"`
	Status orders.Status `json:"status"`
	Label  string        `json:"label"`
	At     time.Time     `json:"at"`
	Actor  orders.Actor  `json:"actor"`
	Final  bool          `json:"final"`
}

// staffEventJSON is the data of an order_update event on the staff stream:
// the order's event plus what the board needs to show an order it has not
// seen before.
type staffEventJSON struct {
	orderEventJSON
	Position   int64         `json:"position"`
	Name       string        `json:"name"`
	Items      []orders.Item `json:"items"`
	TotalCents int           `json:"total_cents"`
}

func newOrderEventJSON(ev orders.Event) orderEventJSON {
	return orderEventJSON{
		Token:  ev.Token,
		Seq:    ev.Seq,
		Status: ev.Status,
		Label:  ev.Status.Label(),
		At:     ev.At.UTC(),
		Actor:  ev.Actor,
		Final:  ev.Status.Terminal(),
	}
}

// encodeOrderEvent appends the frame of ev for a stream of its order.
func encodeOrderEvent(dst []byte, ev orders.Event) []byte {
	return encodeFrame(dst, int64(ev.Seq), newOrderEventJSON(ev))
}

// encodeStaffEvent appends the frame of ev for a stream of all orders.
func encodeStaffEvent(dst []byte, ev orders.Event) []byte {
	return encodeFrame(dst, ev.Position, staffEventJSON{
		orderEventJSON: newOrderEventJSON(ev),
		Position:       ev.Position,
		Name:           ev.CustomerName,
		Items:          ev.Items,
		TotalCents:     ev.TotalCents,
	})
}

// eventName is the type of every event the streams send.
const eventName = "order_update"

func encodeFrame(dst []byte, id int64, v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		panic("encode order event: " + err.Error()) // plain structs of strings, numbers and times cannot fail
	}
	frame, err := sse.AppendEvent(dst, strconv.FormatInt(id, 10), eventName, data)
	if err != nil {
		panic("encode order event: " + err.Error()) // a number and a constant are never refused
	}
	return frame
}
