package orders

import "slices"

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

// Statuses lists every status, in the order an order meets them.
var Statuses = []Status{Received, Cooking, OutForDelivery, Delivered, Cancelled}

// An Actor is who caused a change.
type Actor string

// The actors. A customer creates an order, and may cancel it while it is
// still received.
const (
	ByCustomer Actor = "customer"
	ByWorker   Actor = "worker"
	ByStaff    Actor = "staff"
)

// Actors lists every actor.
var Actors = []Actor{ByCustomer, ByWorker, ByStaff}

// A Move is one change of status the state machine allows: an order in From
// may be moved to To by By.
type Move struct {
	From, To Status
	By       Actor
}

// Moves is the state machine: every move an order may make, and who may make
// it. Next, Terminal, Cancellable and Stages are derived from it, and so is
// the worker's statement. The database keeps its own copy in
// legal_transition (migrations/001_orders.sql, last changed by
// 004_customer_cancel.sql), because it must refuse an
// illegal move whoever asks; TestDatabaseAllowsExactlyTheMoves asks it about
// every (from, to, actor) triple and fails on any difference, so a change
// here needs a new migration that changes legal_transition the same way.
var Moves = []Move{
	{Received, Cooking, ByWorker},
	{Received, Cooking, ByStaff},
	{Cooking, OutForDelivery, ByWorker},
	{Cooking, OutForDelivery, ByStaff},
	{OutForDelivery, Delivered, ByWorker},
	{OutForDelivery, Delivered, ByStaff},
	{Received, Cancelled, ByStaff},
	{Cooking, Cancelled, ByStaff},
	{Received, Cancelled, ByCustomer},
}

// Stages lists the statuses of an order's normal journey, in order: where it
// starts, then one advance after another until none is left.
var Stages = journey()

func journey() []Status {
	stages := []Status{Received}
	for s, ok := Received.Next(); ok && !slices.Contains(stages, s); s, ok = s.Next() {
		stages = append(stages, s)
	}
	return stages
}

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

// CanMove reports whether by may move an order from s to status to.
func (s Status) CanMove(to Status, by Actor) bool {
	return slices.Contains(Moves, Move{From: s, To: to, By: by})
}

// Next is the status an advance moves to, and false when there is none. An
// advance is the move the worker makes when an order's time in s is up;
// staff make the same move by hand.
func (s Status) Next() (Status, bool) {
	for _, m := range Moves {
		if m.From == s && m.By == ByWorker {
			return m.To, true
		}
	}
	return "", false
}

// Terminal reports whether the order's journey is over: no move leads out of
// s. An unknown status is not terminal.
func (s Status) Terminal() bool {
	return s.Valid() && !slices.ContainsFunc(Moves, func(m Move) bool { return m.From == s })
}

// Cancellable reports whether staff may still cancel an order in this status.
func (s Status) Cancellable() bool { return s.CanMove(Cancelled, ByStaff) }

// CustomerCancellable reports whether the customer may still cancel an
// order in this status: only before the kitchen has started it.
func (s Status) CustomerCancellable() bool { return s.CanMove(Cancelled, ByCustomer) }

// Valid reports whether s is one of Statuses.
func (s Status) Valid() bool { return slices.Contains(Statuses, s) }
