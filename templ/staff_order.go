package templ

import (
	"time"

	"github.com/ordertracker/ordertracker/orders"
)

// StaffOrder is the staff's page for one order: what was ordered, every
// change it went through and who made it, and the buttons its status
// allows. It is a snapshot, as of when it was rendered, with a link that
// reads it again.
type StaffOrder struct {
	Assets     Assets
	Stylesheet string // the staff pages' own stylesheet
	Token      string
	Name       string
	Status     orders.Status
	StatusText string
	Items      []StaffOrderItem
	Total      string
	History    []StaffOrderEvent
	// Action names the button that moves the order on; empty when it is
	// finished. Cancellable says whether it may still be cancelled.
	Action      string
	Cancellable bool
	// Message says what became of the last move, and Problem whether it
	// failed; the zero value says nothing.
	Message string
	Problem bool
	// Rendered is when the page was read from the store.
	Rendered time.Time
}

// A StaffOrderItem is one line of an order, priced.
type StaffOrderItem struct {
	Quantity int
	Name     string
	Price    string // the line's total
}

// A StaffOrderEvent is one change in an order's history.
type StaffOrderEvent struct {
	Status string
	// By is who made the change: "customer", "worker", or the name of the
	// staff account (plain "staff" for a staff move that named none).
	By string
	At time.Time
}

// NewStaffOrder lays out o with its history, events oldest first.
func NewStaffOrder(assets Assets, o orders.Order, events []orders.Event, now time.Time) StaffOrder {
	p := StaffOrder{
		Assets:      assets,
		Token:       o.Token,
		Name:        o.CustomerName,
		Status:      o.Status,
		StatusText:  o.Status.Label(),
		Total:       Money(o.TotalCents),
		Action:      AdvanceAction(o.Status),
		Cancellable: o.Status.Cancellable(),
		Rendered:    now,
	}
	for _, it := range o.Items {
		p.Items = append(p.Items, StaffOrderItem{Quantity: it.Quantity, Name: it.Name, Price: Money(it.PriceCents * it.Quantity)})
	}
	for _, e := range events {
		by := string(e.Actor)
		if e.Staff.Name != "" {
			by = e.Staff.Name
		}
		p.History = append(p.History, StaffOrderEvent{Status: e.Status.Label(), By: by, At: e.At})
	}
	return p
}

// StaffOrderURL is the address of the page of the order with token.
func StaffOrderURL(token string) string { return "/staff/orders/" + token }
