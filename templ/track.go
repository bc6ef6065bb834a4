package templ

import (
	"strconv"
	"time"

	"github.com/ordertracker/ordertracker/orders"
)

// TrackPage is the tracking page of one order, as it stands when the page
// is rendered. The tracking script keeps it current from there.
type TrackPage struct {
	Assets Assets
	Token  string
	Name   string
	Items  []ItemLine
	Total  string
	Placed time.Time

	Status  orders.Status
	Label   string
	Message string
	// Seq is the sequence number of the latest event the page shows; the
	// live stream resumes after it.
	Seq       int
	Final     bool
	Cancelled bool

	Steps    []Step
	Timeline []Entry
	// When is the estimated delivery for an order on its way, or when it
	// was delivered or cancelled; WhenLabel says which.
	When      time.Time
	WhenLabel string
	// WhenRelative is "in about 3 minutes" for an estimate, else empty.
	WhenRelative string

	// CancelledMessage is what the page says of a cancelled order; it is on
	// every page, hidden, so the script can show it if the order is cancelled
	// while someone watches.
	CancelledMessage string
	// Actors are the words for who made a change, by actor.
	Actors map[orders.Actor]string

	EventsURL      string // the stream of this order
	MultiEventsURL string // the stream of several orders, shared by tabs
	PageURL        string
}

// An ItemLine is one line of the order summary.
type ItemLine struct {
	Quantity int
	Name     string
	Price    string
}

// A Step is one stage of the stepper.
type Step struct {
	Status  orders.Status
	Label   string
	Message string
	// State is "done", "current", "todo", "stopped" (the order was
	// cancelled here) or "skipped" (it never got here).
	State string
	// Remaining is how long an order that has just reached this stage
	// still has to go, for the delivery estimate.
	Remaining time.Duration
}

// StateText is the state in words for screen readers.
func (s Step) StateText() string {
	switch s.State {
	case "done":
		return "done"
	case "current":
		return "now"
	case "stopped":
		return "cancelled here"
	case "skipped":
		return "skipped"
	}
	return "to come"
}

// An Entry is one line of the timeline: one event of the order.
type Entry struct {
	Seq   int
	Label string
	At    time.Time
	Who   string
}

// statusMessages say what a status means for the customer.
var statusMessages = map[orders.Status]string{
	orders.Received:       "We have your order and the kitchen will start on it shortly.",
	orders.Cooking:        "Your food is in the oven.",
	orders.OutForDelivery: "A rider is on the way to you.",
	orders.Delivered:      "Delivered. Enjoy your meal!",
	orders.Cancelled:      "The restaurant cancelled this order. We are sorry.",
}

// actorWords say who made a change.
var actorWords = map[orders.Actor]string{
	orders.ByCustomer: "placed by you",
	orders.ByWorker:   "on schedule",
	orders.ByStaff:    "by the restaurant",
}

// NewTrackPage lays out order o with its events (oldest first), estimating
// delivery from the stage durations as of now.
func NewTrackPage(assets Assets, o orders.Order, events []orders.Event, stages orders.StageDurations, now time.Time) TrackPage {
	p := TrackPage{
		Assets:           assets,
		Token:            o.Token,
		Name:             o.CustomerName,
		Total:            Money(o.TotalCents),
		Placed:           o.CreatedAt,
		Status:           o.Status,
		Label:            o.Status.Label(),
		Message:          statusMessages[o.Status],
		Seq:              o.Seq,
		Final:            o.Status.Terminal(),
		Cancelled:        o.Status == orders.Cancelled,
		CancelledMessage: statusMessages[orders.Cancelled],
		Actors:           actorWords,
		EventsURL:        "/orders/" + o.Token + "/events",
		MultiEventsURL:   "/orders/events",
		PageURL:          "/orders/" + o.Token,
	}
	for _, it := range o.Items {
		p.Items = append(p.Items, ItemLine{Quantity: it.Quantity, Name: it.Name, Price: Money(it.PriceCents * it.Quantity)})
	}
	for _, ev := range events {
		p.Timeline = append(p.Timeline, Entry{Seq: ev.Seq, Label: ev.Status.Label(), At: ev.At, Who: actorWords[ev.Actor]})
	}

	// The stage the order reached last, which is where it stopped if it
	// was cancelled.
	reached := o.Status
	if p.Cancelled {
		reached = orders.Received
		for _, ev := range events {
			if ev.Status != orders.Cancelled {
				reached = ev.Status
			}
		}
	}
	state := "done"
	for _, s := range orders.Stages {
		step := Step{Status: s, Label: s.Label(), Message: statusMessages[s], Remaining: stages.Remaining(s)}
		switch {
		case s == reached && p.Cancelled:
			step.State, state = "stopped", "skipped"
		case s == reached && s == orders.Delivered:
			step.State, state = "done", "todo"
		case s == reached:
			step.State, state = "current", "todo"
		default:
			step.State = state
		}
		p.Steps = append(p.Steps, step)
	}

	switch {
	case p.Cancelled:
		p.When, p.WhenLabel = o.UpdatedAt, "Cancelled at"
	case p.Final:
		p.When, p.WhenLabel = o.UpdatedAt, "Delivered at"
	default:
		p.When, p.WhenLabel = o.UpdatedAt.Add(stages.Remaining(o.Status)), "Estimated delivery"
		p.WhenRelative = InAbout(p.When.Sub(now))
	}
	return p
}

// Title is the page's title: the status first, so it shows in a tab.
func (p TrackPage) Title() string { return p.Label + " · " + p.titleSuffix() }

func (p TrackPage) titleSuffix() string { return "Your order · " + Site }

// ms formats a duration as milliseconds, for the script.
func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
