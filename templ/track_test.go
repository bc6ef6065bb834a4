package templ

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ordertracker/ordertracker/orders"
)

var stages = orders.StageDurations{Received: 10 * time.Second, Cooking: 30 * time.Second, OutForDelivery: 45 * time.Second}

// orderThrough is an order that went through statuses, one event each, a
// minute apart from t0.
func orderThrough(t0 time.Time, statuses ...orders.Status) (orders.Order, []orders.Event) {
	o := orders.Order{Token: orders.NewToken(), CustomerName: "Ada", CreatedAt: t0, TotalCents: 2250,
		Items: []orders.Item{{MenuID: "margherita", Name: "Margherita", PriceCents: 950, Quantity: 2}, {MenuID: "lemonade", Name: "Lemonade", PriceCents: 350, Quantity: 1}}}
	var events []orders.Event
	for i, s := range statuses {
		at := t0.Add(time.Duration(i) * time.Minute)
		actor := orders.ByWorker
		if i == 0 {
			actor = orders.ByCustomer
		}
		events = append(events, orders.Event{Seq: i + 1, Status: s, Actor: actor, At: at})
		o.Status, o.Seq, o.UpdatedAt = s, i+1, at
	}
	return o, events
}

func TestTrackPageStepper(t *testing.T) {
	t.Parallel()
	const (
		done, current, todo, stopped, skipped = "done", "current", "todo", "stopped", "skipped"
	)
	tests := []struct {
		name string
		path []orders.Status
		want []string
	}{
		{"a new order is at its first step", []orders.Status{orders.Received}, []string{current, todo, todo, todo}},
		{"cooking", []orders.Status{orders.Received, orders.Cooking}, []string{done, current, todo, todo}},
		{"out for delivery", []orders.Status{orders.Received, orders.Cooking, orders.OutForDelivery}, []string{done, done, current, todo}},
		{"a delivered order has every step done", orders.Stages, []string{done, done, done, done}},
		{"cancelled on receipt", []orders.Status{orders.Received, orders.Cancelled}, []string{stopped, skipped, skipped, skipped}},
		{"cancelled while cooking", []orders.Status{orders.Received, orders.Cooking, orders.Cancelled}, []string{done, stopped, skipped, skipped}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, events := orderThrough(time.Now(), tt.path...)
			p := NewTrackPage(Assets{}, o, events, stages, time.Now())
			var got []string
			for _, s := range p.Steps {
				got = append(got, s.State)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("steps = %q, want %q", got, tt.want)
			}
			if len(p.Timeline) != len(tt.path) || p.Seq != len(tt.path) {
				t.Errorf("timeline has %d entries and seq %d, want %d", len(p.Timeline), p.Seq, len(tt.path))
			}
		})
	}
}

func TestTrackPageCarriesTheProgressAfterEveryMoveStillPossible(t *testing.T) {
	t.Parallel()
	const (
		done, current, todo, stopped, skipped = "done", "current", "todo", "stopped", "skipped"
	)
	type move struct{ from, to orders.Status }
	tests := []struct {
		name string
		path []orders.Status
		want map[move][]string
	}{
		{"a new order may still make every move", []orders.Status{orders.Received}, map[move][]string{
			{orders.Received, orders.Cooking}:         {done, current, todo, todo},
			{orders.Cooking, orders.OutForDelivery}:   {done, done, current, todo},
			{orders.OutForDelivery, orders.Delivered}: {done, done, done, done},
			{orders.Received, orders.Cancelled}:       {stopped, skipped, skipped, skipped},
			{orders.Cooking, orders.Cancelled}:        {done, stopped, skipped, skipped},
		}},
		{"an order out for delivery may only be delivered", []orders.Status{orders.Received, orders.Cooking, orders.OutForDelivery}, map[move][]string{
			{orders.OutForDelivery, orders.Delivered}: {done, done, done, done},
		}},
		{"a delivered order makes no more moves", orders.Stages, map[move][]string{}},
		{"a cancelled order makes no more moves", []orders.Status{orders.Received, orders.Cancelled}, map[move][]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, events := orderThrough(time.Now(), tt.path...)
			p := NewTrackPage(Assets{}, o, events, stages, time.Now())
			got := make(map[move][]string)
			for from, tos := range p.After {
				for to, progress := range tos {
					got[move{from, to}] = progress.Steps
				}
			}
			if !maps.EqualFunc(got, tt.want, slices.Equal) {
				t.Errorf("after = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestTheLiveProgressIsWhatAReloadShows makes every move of the state
// machine: the progress the page carries for the move, shown by the script
// when the move arrives live, must be what a page rendered after the move
// shows.
func TestTheLiveProgressIsWhatAReloadShows(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, m := range orders.Moves {
		t.Run(fmt.Sprintf("%s to %s by %s", m.From, m.To, m.By), func(t *testing.T) {
			at := slices.Index(orders.Stages, m.From)
			if at < 0 {
				t.Fatalf("%s is not a stage of the journey; the test knows no way there", m.From)
			}
			before, events := orderThrough(t0, orders.Stages[:at+1]...)
			live := NewTrackPage(Assets{}, before, events, stages, t0).After[m.From][m.To]

			moved, events := orderThrough(t0, append(slices.Clone(orders.Stages[:at+1]), m.To)...)
			reload := NewTrackPage(Assets{}, moved, events, stages, t0)
			var steps []string
			for _, s := range reload.Steps {
				steps = append(steps, s.State)
			}
			when := moved.UpdatedAt
			if live.Estimate {
				when = when.Add(live.Remaining)
			}
			if !slices.Equal(live.Steps, steps) || live.Message != reload.Message || live.WhenLabel != reload.WhenLabel || !when.Equal(reload.When) {
				t.Errorf("live: steps %q, message %q, %s %s; a reload: %q, %q, %s %s",
					live.Steps, live.Message, live.WhenLabel, when.Format(time.TimeOnly),
					steps, reload.Message, reload.WhenLabel, reload.When.Format(time.TimeOnly))
			}
		})
	}
}

// TestTrackPageGivesTheScriptItsProgress checks the JSON the script reads.
func TestTrackPageGivesTheScriptItsProgress(t *testing.T) {
	t.Parallel()
	o, events := orderThrough(time.Now(), orders.Received, orders.Cooking)
	p := NewTrackPage(Assets{}, o, events, stages, time.Now())
	var after map[string]map[string]struct {
		Steps       []string `json:"steps"`
		Message     string   `json:"message"`
		When        string   `json:"when"`
		Estimate    bool     `json:"estimate"`
		RemainingMs int64    `json:"remainingMs"`
	}
	if err := json.Unmarshal([]byte(p.AfterJSON()), &after); err != nil {
		t.Fatalf("data-after is not JSON: %v", err)
	}
	next := after["cooking"]["out_for_delivery"]
	if !slices.Equal(next.Steps, []string{"done", "done", "current", "todo"}) || next.Message != statusMessages[orders.OutForDelivery] ||
		next.When != "Estimated delivery" || !next.Estimate || next.RemainingMs != stages.OutForDelivery.Milliseconds() {
		t.Errorf("after cooking to out_for_delivery: %+v", next)
	}
	cancel := after["cooking"]["cancelled"]
	if !slices.Equal(cancel.Steps, []string{"done", "stopped", "skipped", "skipped"}) || cancel.Message != statusMessages[orders.Cancelled] ||
		cancel.When != "Cancelled at" || cancel.Estimate {
		t.Errorf("after cooking to cancelled: %+v", cancel)
	}
	var words map[string]string
	if err := json.Unmarshal([]byte(p.StateWordsJSON()), &words); err != nil {
		t.Fatalf("data-state-words is not JSON: %v", err)
	}
	for _, s := range p.Steps {
		if words[s.State] != s.StateText() || s.StateText() == "" {
			t.Errorf("the script's word for %q is %q, the page's %q", s.State, words[s.State], s.StateText())
		}
	}
}

func TestTrackPageEstimatesDeliveryFromTheStageDurations(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		path      []orders.Status
		now       time.Time
		label     string
		when      time.Time
		relative  string
		cancelled bool
	}{
		// Received at 12:00: 10 s + 30 s + 45 s to go.
		{[]orders.Status{orders.Received}, t0, "Estimated delivery", t0.Add(85 * time.Second), "in about a minute", false},
		// Cooking since 12:01: 30 s + 45 s from then.
		{[]orders.Status{orders.Received, orders.Cooking}, t0.Add(time.Minute), "Estimated delivery", t0.Add(time.Minute + 75*time.Second), "in about a minute", false},
		{[]orders.Status{orders.Received, orders.Cooking}, t0.Add(10 * time.Minute), "Estimated delivery", t0.Add(time.Minute + 75*time.Second), "any moment now", false},
		{orders.Stages, t0.Add(time.Hour), "Delivered at", t0.Add(3 * time.Minute), "", false},
		{[]orders.Status{orders.Received, orders.Cancelled}, t0.Add(time.Hour), "Cancelled at", t0.Add(time.Minute), "", true},
	}
	for _, tt := range tests {
		o, events := orderThrough(t0, tt.path...)
		p := NewTrackPage(Assets{}, o, events, stages, tt.now)
		if p.WhenLabel != tt.label || !p.When.Equal(tt.when) || p.WhenRelative != tt.relative || p.Cancelled != tt.cancelled {
			t.Errorf("%v at %s: %q %s %q (cancelled %v), want %q %s %q (%v)", tt.path, tt.now.Format("15:04:05"),
				p.WhenLabel, p.When.Format("15:04:05"), p.WhenRelative, p.Cancelled, tt.label, tt.when.Format("15:04:05"), tt.relative, tt.cancelled)
		}
	}
}

func TestInAbout(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		-time.Second:                    "any moment now",
		0:                               "any moment now",
		20 * time.Second:                "in less than a minute",
		45 * time.Second:                "in about a minute",
		89 * time.Second:                "in about a minute",
		90 * time.Second:                "in about 2 minutes",
		12*time.Minute + 10*time.Second: "in about 12 minutes",
	} {
		if got := InAbout(d); got != want {
			t.Errorf("InAbout(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestMoney(t *testing.T) {
	t.Parallel()
	for cents, want := range map[int]string{0: "€0.00", 5: "€0.05", 950: "€9.50", 12345: "€123.45", -350: "-€3.50"} {
		if got := Money(cents); got != want {
			t.Errorf("Money(%d) = %q, want %q", cents, got, want)
		}
	}
}

func TestTrackPageTitleStartsWithTheStatus(t *testing.T) {
	t.Parallel()
	o, events := orderThrough(time.Now(), orders.Received, orders.Cooking, orders.OutForDelivery)
	if got := NewTrackPage(Assets{}, o, events, stages, time.Now()).Title(); got != "Out for delivery · Your order · "+Site {
		t.Errorf("title = %q", got)
	}
}

// TestPagesRenderUserTextAsText renders every page that shows what a
// customer typed with markup in it: it must come out escaped.
func TestPagesRenderUserTextAsText(t *testing.T) {
	t.Parallel()
	const name = `<script>alert(1)</script><img src=x onerror=alert(2)>"'&`
	o, events := orderThrough(time.Now(), orders.Received)
	o.CustomerName = name
	o.Items[0].Name = name
	home := NewHomePage(Assets{}, orders.Menu, OrderForm{Name: name, Quantities: map[string]string{"funghi": name},
		Errors: map[string]string{"name": name}, Problem: name})
	for label, render := range map[string]func(*bytes.Buffer) error{
		"tracking": func(b *bytes.Buffer) error {
			return Track(NewTrackPage(Assets{}, o, events, stages, time.Now())).Render(context.Background(), b)
		},
		"home": func(b *bytes.Buffer) error { return Home(home).Render(context.Background(), b) },
	} {
		var b bytes.Buffer
		if err := render(&b); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		if strings.Contains(out, "<script>alert") || strings.Contains(out, "<img src=x") {
			t.Errorf("%s: the text went out as markup", label)
		}
		if !strings.Contains(out, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("%s: the text is not on the page, escaped", label)
		}
	}
}

func TestHomePageFocusesTheFirstFieldToFix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		errors map[string]string
		want   string
	}{
		{nil, ""},
		{map[string]string{"name": "x", "items.funghi": "y"}, "name"},
		{map[string]string{"items.funghi": "y", "items.lemonade": "z"}, "qty-funghi"},
		{map[string]string{"items": "Choose at least one item."}, "qty-" + orders.Menu[0].ID},
	}
	for _, tt := range tests {
		p := NewHomePage(Assets{}, orders.Menu, OrderForm{Errors: tt.errors})
		if p.FirstError != tt.want {
			t.Errorf("errors %v: focus %q, want %q", tt.errors, p.FirstError, tt.want)
		}
	}
}

func TestTrackPageForTheCustomer(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		path      []orders.Status
		by        orders.Actor // of the last event
		canCancel bool
		message   string
		stageEnd  time.Time
	}{
		{"a received order may be cancelled", []orders.Status{orders.Received}, orders.ByCustomer, true, statusMessages[orders.Received], t0.Add(stages.Received)},
		{"a cooking order may not", []orders.Status{orders.Received, orders.Cooking}, orders.ByWorker, false, statusMessages[orders.Cooking], t0.Add(time.Minute + stages.Cooking)},
		{"the customer's cancel is theirs", []orders.Status{orders.Received, orders.Cancelled}, orders.ByCustomer, false, "You cancelled this order.", time.Time{}},
		{"the restaurant's cancel is the restaurant's", []orders.Status{orders.Received, orders.Cancelled}, orders.ByStaff, false, statusMessages[orders.Cancelled], time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, events := orderThrough(t0, tt.path...)
			events[len(events)-1].Actor = tt.by
			p := NewTrackPage(Assets{}, o, events, stages, t0)
			if p.CanCancel != tt.canCancel {
				t.Errorf("CanCancel = %v, want %v", p.CanCancel, tt.canCancel)
			}
			if p.Message != tt.message {
				t.Errorf("Message = %q, want %q", p.Message, tt.message)
			}
			if !p.StageEnd.Equal(tt.stageEnd) {
				t.Errorf("StageEnd = %v, want %v", p.StageEnd, tt.stageEnd)
			}
			if got, want := p.AgainURL, "/?again="+o.Token; got != want {
				t.Errorf("AgainURL = %q, want %q", got, want)
			}
			wantWho := map[orders.Actor]string{orders.ByCustomer: "by you", orders.ByWorker: "on schedule", orders.ByStaff: "by the restaurant"}[tt.by]
			if len(tt.path) > 1 && p.Timeline[len(p.Timeline)-1].Who != wantWho {
				t.Errorf("the last entry's who = %q, want %q", p.Timeline[len(p.Timeline)-1].Who, wantWho)
			}
			if got := p.Timeline[0].Who; got != "placed by you" {
				t.Errorf("the first entry's who = %q, want placed by you", got)
			}
		})
	}
}
