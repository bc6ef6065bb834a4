package web

import (
	"context"
	"testing"

	"github.com/ordertracker/ordertracker/orders"
)

// fixtures is a test app's store, with the orders and moves its tests make.
type fixtures struct {
	store *orders.Store
}

// create places an order of two Margheritas and a lemonade for name.
func (f fixtures) create(t *testing.T, name string) orders.Order {
	t.Helper()
	o, err := f.store.Create(context.Background(), orders.NewOrder{
		CustomerName: name,
		Lines:        []orders.Line{{MenuID: "margherita", Quantity: 2}, {MenuID: "lemonade", Quantity: 1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// advance moves o one stage on from status from, as staff.
func (f fixtures) advance(t *testing.T, o orders.Order, from orders.Status) {
	t.Helper()
	if _, err := f.store.Advance(context.Background(), o.Token, from, orders.ByStaff); err != nil {
		t.Fatalf("advance from %s: %v", from, err)
	}
}

// deliver moves o through every stage after from.
func (f fixtures) deliver(t *testing.T, o orders.Order, from orders.Status) {
	t.Helper()
	for ; from != orders.Delivered; from, _ = from.Next() {
		f.advance(t, o, from)
	}
}

// moveTo moves a new order o on until it is in status to.
func (f fixtures) moveTo(t *testing.T, o orders.Order, to orders.Status) {
	t.Helper()
	for from := orders.Received; from != to; from, _ = from.Next() {
		f.advance(t, o, from)
	}
}

// status is o's status now.
func (f fixtures) status(t *testing.T, o orders.Order) orders.Status {
	t.Helper()
	got, err := f.store.Get(context.Background(), o.Token)
	if err != nil {
		t.Fatal(err)
	}
	return got.Status
}
