package stream

import (
	"bytes"
	"encoding/json"
	"fmt"
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
	Hops   *Hops         `json:"hops,omitempty"`
}

// Hops are the times of an event's journey so far, for anyone who wants to
// see where the time between a change and the browser goes (the tracking
// page's "Under the hood" panel draws them): when the database logged it,
// by the database's clock, and when this process's listener heard of it, by
// the process's. Each is absent when unknown: an event replayed from the
// log was never heard live. The last hop, when the hub wrote the event to a
// stream, differs from stream to stream; a stream that asks for it
// (Subscription.WithHops) gets it in a hop event after each write.
type Hops struct {
	Logged time.Time `json:"logged,omitzero"`
	Heard  time.Time `json:"heard,omitzero"`
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
	// Staff names the staff account that made a staff move: for the staff
	// alone, never on a customer's stream.
	Staff string `json:"staff,omitempty"`
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
		Hops:   newHops(ev),
	}
}

func newHops(ev orders.Event) *Hops {
	if ev.Logged.IsZero() && ev.Noticed.IsZero() {
		return nil
	}
	h := &Hops{Logged: ev.Logged.UTC()}
	if !ev.Noticed.IsZero() {
		h.Heard = ev.Noticed.UTC()
	}
	return h
}

// NewStaffUpdate is ev as the staff see it.
func NewStaffUpdate(ev orders.Event) StaffUpdate {
	return StaffUpdate{
		OrderUpdate: NewOrderUpdate(ev),
		Position:    ev.Position,
		Name:        ev.CustomerName,
		Items:       ev.Items,
		TotalCents:  ev.TotalCents,
		Staff:       ev.Staff.Name,
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

// UnknownEventName is the type of the event that tells a stream of several
// orders that one of its tokens names no order. It carries no id, so the
// browser's last event id stays as it was.
const UnknownEventName = "order_unknown"

// appendUnknownFrame appends the report of a token that no order has.
func appendUnknownFrame(dst []byte, token string) []byte {
	data, err := json.Marshal(struct {
		Token string `json:"token"`
	}{token})
	if err != nil {
		panic("encode unknown order: " + err.Error()) // a string cannot fail
	}
	frame, err := sse.AppendEvent(dst, "", UnknownEventName, data)
	if err != nil {
		panic("encode unknown order: " + err.Error()) // a constant name is never refused
	}
	return frame
}

// appendFrameWithID appends frame, an order's frame as AppendOrderFrame
// makes it, under another id: a stream of several orders sends each
// order's frame with every order's cursor as its id.
func appendFrameWithID(dst []byte, id string, frame []byte) []byte {
	// The order frame's first line is its id; the rest is the event name
	// and the data, the same for every stream.
	rest := frame[bytes.IndexByte(frame, '\n')+1:]
	if err := sse.CheckField("id", id); err != nil {
		panic("encode order event: " + err.Error()) // digits and dots are never refused
	}
	dst = append(append(append(dst, "id: "...), id...), '\n')
	return append(dst, rest...)
}

// ResetEventName is the type of the event that tells a client of all
// orders that it missed too much to be replayed: it should load its state
// afresh. Its id is the position the stream goes on from.
const ResetEventName = "reset"

// appendResetFrame appends a reset event that moves the client's cursor to
// position head.
func appendResetFrame(dst []byte, head int64) []byte {
	frame, err := sse.AppendEvent(dst, strconv.FormatInt(head, 10), ResetEventName, []byte(`{"reason":"too far behind to replay; load the board afresh"}`))
	if err != nil {
		panic("encode reset: " + err.Error()) // a number and a constant are never refused
	}
	return frame
}

// HeartbeatEventName is the type of the event a stream sends when it starts
// and whenever it has been quiet for the heartbeat interval. Its data says
// the interval, so that a client can tell a stream that has gone silent
// (a laptop that slept, a NAT that forgot the connection) from one with
// nothing to say: {"interval_ms":15000}. It has no id, so it moves no
// cursor; and being named, it wakes only the listeners of that name, never
// a client's onmessage.
const HeartbeatEventName = "heartbeat"

// appendHeartbeatFrame appends a heartbeat event announcing interval.
func appendHeartbeatFrame(dst []byte, interval time.Duration) []byte {
	frame, err := sse.AppendEvent(dst, "", HeartbeatEventName, fmt.Appendf(nil, `{"interval_ms":%d}`, interval.Milliseconds()))
	if err != nil {
		panic("encode heartbeat: " + err.Error()) // a constant name is never refused
	}
	return frame
}

// HopEventName is the type of the event that follows each write of order
// events to a stream that asked for hops (Subscription.WithHops): its data
// says when the hub wrote them, {"written":"2026-12-02T09:45:01.123456Z"},
// the last hop before the browser. It has no id.
const HopEventName = "hop"

// appendHopFrame appends a hop event for a write at written. It is written
// out by hand, not through sse.AppendEvent, because every stream that asks
// for hops gets one of its own after every write: a constant name and a
// time, which hold no line break, cost no check and nothing but dst.
func appendHopFrame(dst []byte, written time.Time) []byte {
	dst = append(dst, "event: "+HopEventName+"\ndata: {\"written\":\""...)
	dst = written.UTC().AppendFormat(dst, time.RFC3339Nano)
	return append(dst, "\"}\n\n"...)
}

// withHop is p followed by a hop event for a write at written, made with
// one allocation.
func (p payload) withHop(written time.Time) payload {
	var buf [64]byte
	return newPayload(p.frames(), appendHopFrame(buf[:0], written))
}
