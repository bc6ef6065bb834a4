// Package stream is the one engine that delivers order events to browsers
// as Server-Sent Events.
package stream

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/ordertracker/ordertracker/internal/sse"
	"github.com/ordertracker/ordertracker/orders"
)

// An OrderUpdate is the data of an order_update event on a customer's
// stream, and an event in the JSON API's history of an order. It carries
// nothing about other orders.
type OrderUpdate struct {
	Token  string        `json:"token"`
	Seq    int           `json:"seq"`
	Status orders.Status `json:"status"`
	Label  string        `json:"label"`
	At     time.Time     `json:"at"`
	Actor  orders.Actor  `json:"actor"`
	Final  bool          `json:"final"`
}

// A StaffUpdate is the data of an order_update event on the staff stream:
// the order's event plus what the board needs to show an order it has not
// seen before.
type StaffUpdate struct {
	OrderUpdate
	Position   int64         `json:"position"`
	Name       string        `json:"name"`
	Items      []orders.Item `json:"items"`
	TotalCents int           `json:"total_cents"`
}

// NewOrderUpdate is ev as a customer sees it.
func NewOrderUpdate(ev orders.Event) OrderUpdate {
	return OrderUpdate{
		Token:  ev.Token,
		Seq:    ev.Seq,
		Status: ev.Status,
		Label:  ev.Status.Label(),
		At:     ev.At.UTC(),
		Actor:  ev.Actor,
		Final:  ev.Status.Terminal(),
	}
}

// NewStaffUpdate is ev as the staff see it.
func NewStaffUpdate(ev orders.Event) StaffUpdate {
	return StaffUpdate{
		OrderUpdate: NewOrderUpdate(ev),
		Position:    ev.Position,
		Name:        ev.CustomerName,
		Items:       ev.Items,
		TotalCents:  ev.TotalCents,
	}
}

// AppendOrderFrame appends the frame of ev for a stream of its order: its
// id is the order's sequence number.
func AppendOrderFrame(dst []byte, ev orders.Event) []byte {
	return appendFrame(dst, int64(ev.Seq), NewOrderUpdate(ev))
}

// AppendStaffFrame appends the frame of ev for a stream of all orders: its
// id is the event's position in the log.
func AppendStaffFrame(dst []byte, ev orders.Event) []byte {
	return appendFrame(dst, ev.Position, NewStaffUpdate(ev))
}

// EventName is the type of every event about an order that the streams send.
const EventName = "order_update"

func appendFrame(dst []byte, id int64, v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		panic("encode order event: " + err.Error()) // plain structs of strings, numbers and times cannot fail
	}
	frame, err := sse.AppendEvent(dst, strconv.FormatInt(id, 10), EventName, data)
	if err != nil {
		panic("encode order event: " + err.Error()) // a number and a constant are never refused
	}
	return frame
}
