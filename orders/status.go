package orders

// A Status is where an order is in its journey.
type Status string

// The statuses, in the order an order moves through them. Delivered and
// Cancelled are terminal: nothing moves an order out of them.
const (
	Received       Status = "received"
	Cooking        Status = "cooking"
	OutForDelivery Status = "out_for_delivery"
	Delivered      Status = "delivered"
	Cancelled      Status = "cancelled"
)

// Stages lists the statuses of an order's normal journey, in order.
var Stages = []Status{Received, Cooking, OutForDelivery, Delivered}

// Label is the status in words, for people.
func (s Status) Label() string {
	switch s {
	case Received:
		return "Received"
	case Cooking:
		return "Cooking"
	case OutForDelivery:
		return "Out for delivery"
	case Delivered:
		return "Delivered"
	case Cancelled:
		return "Cancelled"
	}
	return string(s)
}

// Next is the status an advance moves to, and false when there is none.
func (s Status) Next() (Status, bool) {
	switch s {
	case Received:
		return Cooking, true
	case Cooking:
		return OutForDelivery, true
	case OutForDelivery:
		return Delivered, true
	}
	return "", false
}

// Terminal reports whether the order's journey is over.
func (s Status) Terminal() bool { return s == Delivered || s == Cancelled }

// Cancellable reports whether staff may still cancel an order in this status.
func (s Status) Cancellable() bool { return s == Received || s == Cooking }

// Valid reports whether s is one of the statuses above.
func (s Status) Valid() bool {
	switch s {
	case Received, Cooking, OutForDelivery, Delivered, Cancelled:
		return true
	}
	return false
}

// An Actor is who caused a change.
type Actor string

// The actors. A customer only ever creates an order.
const (
	ByCustomer Actor = "customer"
	ByWorker   Actor = "worker"
	ByStaff    Actor = "staff"
)
