package templ

import (
	"encoding/json"
	"net/url"
	"strconv"
	"time"

	"github.com/ordertracker/ordertracker/orders"
)

// DemoPage is /demo: one order as its customer sees it beside the staff
// board, with the frames of both event streams below, and, when the
// process allows it (DEMO_CONTROLS), buttons that break the streams on
// purpose.
type DemoPage struct {
	Assets Assets
	// Controls shows the buttons that break things.
	Controls bool
	// StaffOn says whether the staff side is on (STAFF_PASSWORD): without
	// it the board pane says so.
	StaffOn bool
	// Order is the order shown; nil asks for one.
	Order *DemoOrder
	// Problem is what was wrong with the order asked for.
	Problem string
	// Rendered is when the server made the page, for the clock estimate of
	// the hops (hops.js).
	Rendered time.Time
}

// DemoOrder is the order the demo page follows, as of the render.
type DemoOrder struct {
	Token  string
	Name   string
	Status orders.Status
	Label  string
	Seq    int
	Final  bool
	// Head is the position of the log when the page was made: the board's
	// stream starts after it.
	Head int64
}

// NewDemoOrder is o as the demo page starts with it, at log position head.
func NewDemoOrder(o orders.Order, head int64) *DemoOrder {
	return &DemoOrder{Token: o.Token, Name: o.CustomerName, Status: o.Status, Label: o.Status.Label(), Seq: o.Seq, Final: o.Status.Terminal(), Head: head}
}

// Title is the page's title.
func (p DemoPage) Title() string { return "Watch one event travel · " + Site }

// EventsURL is the customer's stream of the order.
func (o DemoOrder) EventsURL() string { return "/orders/" + o.Token + "/events" }

// AdvanceURL is the board's button for the order.
func (o DemoOrder) AdvanceURL() string { return "/staff/orders/" + o.Token + "/advance" }

// PageURL is the customer's own tracking page of the order.
func (o DemoOrder) PageURL() string { return "/orders/" + o.Token }

// DemoURL is the demo page of token's order, where the controls' forms
// come back to.
func DemoURL(token string) string { return "/demo?" + url.Values{"order": {token}}.Encode() }

// SeqText is Seq in digits.
func (o DemoOrder) SeqText() string { return strconv.Itoa(o.Seq) }

// HeadText is Head in digits.
func (o DemoOrder) HeadText() string { return strconv.FormatInt(o.Head, 10) }

// NextLabel is the board button's words for the order's next move, or ""
// when it has none.
func (o DemoOrder) NextLabel() string {
	next, ok := o.Status.Next()
	if !ok {
		return ""
	}
	return "Move on to " + next.Label()
}

// MovesJSON says, for every status, the next one and its label, so that
// the board pane's button follows the order without deciding anything.
func MovesJSON() string {
	type move struct {
		Next  orders.Status `json:"next"`
		Label string        `json:"label"`
	}
	moves := make(map[orders.Status]move)
	for _, s := range orders.Statuses {
		if next, ok := s.Next(); ok {
			moves[s] = move{next, next.Label()}
		}
	}
	b, err := json.Marshal(moves)
	if err != nil {
		panic("encode moves: " + err.Error()) // strings only
	}
	return string(b)
}
