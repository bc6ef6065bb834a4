// Package orders is the domain: orders, their state machine, the event log
// that records every change, the worker that moves orders on by themselves,
// and the listener that hears about changes from PostgreSQL.
package orders

import (
	"crypto/rand"
	"time"
)

// An Order is what a customer asked for and where it is now.
type Order struct {
	ID           int64
	Token        string
	CustomerName string
	Items        []Item
	TotalCents   int
	Status       Status
	// Seq is the sequence number of the order's latest event: 1 at creation,
	// one more for every change.
	Seq       int
	CreatedAt time.Time
	UpdatedAt time.Time
	// NextMoveAt is when the worker will move the order on; zero once the
	// order is finished.
	NextMoveAt time.Time
	// Staff is the staff account that made the order's latest change, when
	// that was a staff move that named one (see Event.Staff).
	Staff StaffMember
}

// An Item is one line of an order, priced when the order was placed.
type Item struct {
	MenuID     string `json:"id"`
	Name       string `json:"name"`
	PriceCents int    `json:"price_cents"`
	Quantity   int    `json:"quantity"`
}

// An Event is one change of an order's status, as the event log holds it.
type Event struct {
	// Position is the event's place in the log of all orders. Positions are
	// handed out in commit order, so they are a gap-free cursor.
	Position int64
	OrderID  int64
	Token    string
	// Seq is the event's place in its own order's history: 1, 2, 3...
	Seq    int
	Status Status
	Actor  Actor
	At     time.Time
	// Staff is the staff account that made a staff move: its name as it
	// was then, kept after the account is removed. Zero for every other
	// move, and for staff moves logged before there were accounts.
	Staff StaffMember

	// CustomerName, Items and TotalCents describe the order, so that a board
	// of all orders can show one it has not seen before.
	CustomerName string
	Items        []Item
	TotalCents   int

	// Logged is when the database wrote the event to its log, by the
	// database's clock: the end of the statement that made it. Zero for
	// events logged before that was kept.
	Logged time.Time
	// Noticed is when this process's listener heard of the event; zero for
	// events read from the log for a replay.
	Noticed time.Time
}

// A StaffMember is a staff account as the event log names it.
type StaffMember struct {
	ID   int64
	Name string
}

// NewToken returns a fresh customer token: 26 characters of base32 carrying
// 130 bits from crypto/rand, safe in a URL.
func NewToken() string { return rand.Text() }

// ValidToken reports whether s has the shape of a token, so that malformed
// ones are turned away without a query.
func ValidToken(s string) bool {
	if len(s) != 26 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || '2' <= c && c <= '7') {
			return false
		}
	}
	return true
}
