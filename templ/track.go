package templ

import (
	"encoding/json"
	"net/url"
	"slices"
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

	// After is the progress to show after each move the order may still
	// make, by the status it moves from and then the status it moves to.
	// The page carries it for the tracking script, which applies the entry
	// of each move as it arrives and so decides nothing itself: the page
	// shows the same live as it would if reloaded. Empty for a finished
	// order.
	After map[orders.Status]map[orders.Status]Progress
	// Actors are the words for who made a change, by actor.
	Actors map[orders.Actor]string

	// StageEnd is when the order is due to leave the stage it is in, by
	// the stage durations; zero for a finished order. Past it, the page
	// says the order is running late.
	StageEnd time.Time

	// Rendered is when the server made the page, to the microsecond: the
	// panel estimates from it how far the browser's clock is from the
	// server's (hops.js).
	Rendered time.Time

	// CanCancel reports whether the customer may still cancel: while the
	// order is only received. CancelURL is where the cancel form posts.
	CanCancel bool
	CancelURL string
	// Problem is said at the top of the page, such as why a cancel was
	// refused; empty means nothing went wrong.
	Problem string
	// AgainURL fills the order form with this order's items. The link is
	// shown once the order is finished.
	AgainURL string
	// DemoURL shows the order beside the staff board, on the demo page.
	DemoURL string
	// YouCancelled is the message of a cancel made by the customer.
	YouCancelled string

	EventsURL      string // the stream of this order
	MultiEventsURL string // the stream of several orders, shared by tabs
	PageURL        string
}

// Progress is what the page shows of where an order is, beyond what each
// event says itself (the status, its label, the time): the stepper, the
// message under the status, and what the time under it means.
type Progress struct {
	// Steps are the states of the stepper's steps, one per stage of
	// orders.Stages: "done", "current", "todo", "stopped" (the order was
	// cancelled here) or "skipped" (it never got here).
	Steps   []string
	Message string
	// WhenLabel says what the time under the status is.
	WhenLabel string
	// Estimate reports whether that time is an estimated delivery, Remaining
	// after the order got here; otherwise it is when the order got here.
	Estimate  bool
	Remaining time.Duration
	// Stage is how long the order is due to stay where it got; zero once
	// it is finished.
	Stage time.Duration
}

// MarshalJSON writes p for the tracking script, with Remaining in
// milliseconds.
func (p Progress) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Steps       []string `json:"steps"`
		Message     string   `json:"message"`
		WhenLabel   string   `json:"when"`
		Estimate    bool     `json:"estimate"`
		RemainingMs int64    `json:"remainingMs"`
		StageMs     int64    `json:"stageMs"`
	}{p.Steps, p.Message, p.WhenLabel, p.Estimate, p.Remaining.Milliseconds(), p.Stage.Milliseconds()})
}

// An ItemLine is one line of the order summary.
type ItemLine struct {
	Quantity int
	Name     string
	Price    string
}

// A Step is one stage of the stepper.
type Step struct {
	Status orders.Status
	Label  string
	// State is one of the states of Progress.Steps.
	State string
}

// StateText is the state in words for screen readers.
func (s Step) StateText() string { return stateWords[s.State] }

// stateWords say a step's state, for screen readers.
var stateWords = map[string]string{
	"done":    "done",
	"current": "now",
	"todo":    "to come",
	"stopped": "cancelled here",
	"skipped": "skipped",
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

// youCancelled is the message of an order the customer cancelled.
const youCancelled = "You cancelled this order."

// actorWords say who made a change: the customer places an order, and
// every later change of theirs is a cancel, said by youWords.
var actorWords = map[orders.Actor]string{
	orders.ByCustomer: "placed by you",
	orders.ByWorker:   "on schedule",
	orders.ByStaff:    "by the restaurant",
}

// youWords say that the customer made a change other than placing the
// order.
const youWords = "by you"

// whoOf says who made the change ev.
func whoOf(ev orders.Event) string {
	if ev.Actor == orders.ByCustomer && ev.Status != orders.Received {
		return youWords
	}
	return actorWords[ev.Actor]
}

// NewTrackPage lays out order o with its events (oldest first), estimating
// delivery from the stage durations as of now.
func NewTrackPage(assets Assets, o orders.Order, events []orders.Event, stages orders.StageDurations, now time.Time) TrackPage {
	p := TrackPage{
		Rendered:       now,
		Assets:         assets,
		Token:          o.Token,
		Name:           o.CustomerName,
		Total:          Money(o.TotalCents),
		Placed:         o.CreatedAt,
		Status:         o.Status,
		Label:          o.Status.Label(),
		Seq:            o.Seq,
		Final:          o.Status.Terminal(),
		Cancelled:      o.Status == orders.Cancelled,
		After:          progressAfter(o.Status, stages),
		Actors:         actorWords,
		EventsURL:      "/orders/" + o.Token + "/events",
		MultiEventsURL: "/orders/events",
		PageURL:        "/orders/" + o.Token,
		CanCancel:      o.Status.CustomerCancellable(),
		CancelURL:      "/orders/" + o.Token + "/cancel",
		YouCancelled:   youCancelled,
	}
	p.AgainURL = "/?" + url.Values{"again": {o.Token}}.Encode()
	p.DemoURL = "/demo?" + url.Values{"order": {o.Token}}.Encode()
	for _, it := range o.Items {
		p.Items = append(p.Items, ItemLine{Quantity: it.Quantity, Name: it.Name, Price: Money(it.PriceCents * it.Quantity)})
	}
	for _, ev := range events {
		p.Timeline = append(p.Timeline, Entry{Seq: ev.Seq, Label: ev.Status.Label(), At: ev.At, Who: whoOf(ev)})
	}
	// The stepper shows the last stage of the journey the order reached:
	// where it is, or where it stopped if it left the journey.
	reached := o.Status
	if !slices.Contains(orders.Stages, reached) {
		reached = orders.Received
		for _, ev := range events {
			if slices.Contains(orders.Stages, ev.Status) {
				reached = ev.Status
			}
		}
	}
	progress := newProgress(o.Status, reached, stages)
	for i, s := range orders.Stages {
		p.Steps = append(p.Steps, Step{Status: s, Label: s.Label(), State: progress.Steps[i]})
	}
	p.Message, p.WhenLabel, p.When = progress.Message, progress.WhenLabel, o.UpdatedAt
	if o.Status == orders.Cancelled && len(events) > 0 && events[len(events)-1].Actor == orders.ByCustomer {
		p.Message = youCancelled
	}
	if progress.Stage > 0 {
		p.StageEnd = o.UpdatedAt.Add(progress.Stage)
	}
	if progress.Estimate {
		p.When = o.UpdatedAt.Add(progress.Remaining)
		p.WhenRelative = InAbout(p.When.Sub(now))
	}
	return p
}

// newProgress is the progress of an order in status that last reached the
// stage reached of its journey: status itself, unless the order left the
// journey there.
func newProgress(status, reached orders.Status, stages orders.StageDurations) Progress {
	p := Progress{Message: statusMessages[status]}
	state := "done"
	for _, s := range orders.Stages {
		switch {
		case s == reached && s != status:
			p.Steps, state = append(p.Steps, "stopped"), "skipped"
		case s == reached && status.Terminal():
			p.Steps, state = append(p.Steps, "done"), "todo"
		case s == reached:
			p.Steps, state = append(p.Steps, "current"), "todo"
		default:
			p.Steps = append(p.Steps, state)
		}
	}
	switch {
	case status == orders.Cancelled:
		p.WhenLabel = "Cancelled at"
	case status.Terminal():
		p.WhenLabel = "Delivered at"
	default:
		p.WhenLabel, p.Estimate, p.Remaining = "Estimated delivery", true, stages.Remaining(status)
		p.Stage, _ = stages.For(status)
	}
	return p
}

// progressAfter is the progress after every move of orders.Moves that an
// order in status from may still make, by the status moved from and the
// status moved to.
func progressAfter(from orders.Status, stages orders.StageDurations) map[orders.Status]map[orders.Status]Progress {
	after := make(map[orders.Status]map[orders.Status]Progress)
	reachable := []orders.Status{from}
	for i := 0; i < len(reachable); i++ {
		s := reachable[i]
		for _, m := range orders.Moves {
			if m.From != s {
				continue
			}
			// A move off the journey leaves the stepper where the order was.
			reached := m.To
			if !slices.Contains(orders.Stages, m.To) {
				reached = m.From
			}
			if after[s] == nil {
				after[s] = make(map[orders.Status]Progress)
			}
			after[s][m.To] = newProgress(m.To, reached, stages)
			if !slices.Contains(reachable, m.To) {
				reachable = append(reachable, m.To)
			}
		}
	}
	return after
}

// IconsJSON is the page's icon for each status, for the tracking script.
func (p TrackPage) IconsJSON() string { return mustJSON(p.Assets.StatusIcons) }

// icon is the page's icon as rendered: that of its status.
func (p TrackPage) icon() string { return p.Assets.StatusIcons[p.Status] }

// stageEnd is StageEnd for the tracking script, empty for none.
func (p TrackPage) stageEnd() string {
	if p.StageEnd.IsZero() {
		return ""
	}
	return machineTime(p.StageEnd)
}

// AfterJSON is After for the tracking script.
func (p TrackPage) AfterJSON() string { return mustJSON(p.After) }

// StateWordsJSON is the words for each state of a step, for the tracking
// script.
func (p TrackPage) StateWordsJSON() string { return mustJSON(stateWords) }

// mustJSON encodes v, which holds nothing that cannot be encoded.
func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// Title is the page's title: the status first, so it shows in a tab.
func (p TrackPage) Title() string { return p.Label + " · " + p.titleSuffix() }

func (p TrackPage) titleSuffix() string { return "Your order · " + Site }
