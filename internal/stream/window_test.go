package stream

import (
	"fmt"
	"testing"
	"time"

	"github.com/ordertracker/ordertracker/orders"
)

// windowOf returns a window of max events and age, started at position
// head, that has been published the events at the given positions, each
// of the order named in tokens (cycled), each order's sequence numbers
// counting from 1, all at time at.
func windowOf(max int, age time.Duration, head int64, positions []int64, tokens string, at time.Time) *window {
	w := newWindow(max, age)
	w.start(head, nil, at)
	publishTo(w, positions, tokens, at, map[string]int{})
	return w
}

func publishTo(w *window, positions []int64, tokens string, at time.Time, seqs map[string]int) {
	var batch []orders.Event
	for i, p := range positions {
		token := string(tokens[i%len(tokens)])
		seqs[token]++
		batch = append(batch, orders.Event{Position: p, Token: token, Seq: seqs[token]})
	}
	w.add(newPublished(batch), at)
}

func positionsOf(events []orders.Event) string {
	var s []int64
	for _, ev := range events {
		s = append(s, ev.Position)
	}
	return fmt.Sprint(s)
}

func seqsOf(events []orders.Event) string {
	var s []int
	for _, ev := range events {
		s = append(s, ev.Seq)
	}
	return fmt.Sprint(s)
}

func TestWindowAfter(t *testing.T) {
	now := time.Now()
	// Positions 11 to 15, except 14 (a rolled-back transaction took it).
	full := windowOf(10, 0, 10, []int64{11, 12, 13, 15}, "AB", now)
	// The same with room for two: 11 and 12 have gone, so it knows
	// everything after 12.
	small := windowOf(2, 0, 10, []int64{11, 12, 13, 15}, "AB", now)
	for _, tc := range []struct {
		name   string
		w      *window
		after  int64
		want   string
		wantOK bool
	}{
		{"from the start it replays everything", full, 10, "[11 12 13 15]", true},
		{"from the middle it replays the rest", full, 12, "[13 15]", true},
		{"from a position no event took it replays what follows", full, 14, "[15]", true},
		{"from the last it replays nothing", full, 15, "[]", true},
		{"from before the start it does not know", full, 9, "[]", false},
		{"from past what was published it does not know", full, 16, "[]", false},
		{"after the oldest have gone it knows what follows them", small, 12, "[13 15]", true},
		{"after the oldest have gone it knows nothing older", small, 11, "[]", false},
		{"unstarted it knows nothing", newWindow(10, 0), 0, "[]", false},
		{"of size zero it knows nothing", windowOf(0, 0, 10, []int64{11}, "A", now), 10, "[]", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			events, head, ok := tc.w.after(tc.after)
			if got := positionsOf(events); got != tc.want || ok != tc.wantOK {
				t.Errorf("after(%d) = %s, %v; want %s, %v", tc.after, got, ok, tc.want, tc.wantOK)
			}
			if covered, ok2 := tc.w.covers(tc.after); ok2 != ok || ok && covered != head {
				t.Errorf("covers(%d) = %d, %v; after said %d, %v", tc.after, covered, ok2, head, ok)
			}
			if ok && head != 15 {
				t.Errorf("head %d, want 15", head)
			}
		})
	}
}

func TestWindowOrderAfter(t *testing.T) {
	now := time.Now()
	// A's events are at 11, 13, 15 (sequence numbers 1, 2, 3); B's at 12, 14.
	full := windowOf(10, 0, 10, []int64{11, 12, 13, 14, 15}, "AB", now)
	// Room for three: A's first event has gone.
	small := windowOf(3, 0, 10, []int64{11, 12, 13, 14, 15}, "AB", now)
	for _, tc := range []struct {
		name   string
		w      *window
		token  string
		after  int
		want   string
		wantOK bool
	}{
		{"from no event it replays every one", full, "A", 0, "[1 2 3]", true},
		{"from the middle it replays the rest", full, "A", 1, "[2 3]", true},
		{"from the latest it replays nothing", full, "A", 3, "[]", true},
		{"past the latest it does not know", full, "A", 4, "[]", false},
		{"an order it never saw it does not know", full, "C", 0, "[]", false},
		{"after the order's first event has gone, from it, it replays the rest", small, "A", 1, "[2 3]", true},
		{"after the order's first event has gone, from before it, it does not know", small, "A", 0, "[]", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			events, ok := tc.w.orderAfter(tc.token, tc.after)
			if got := seqsOf(events); got != tc.want || ok != tc.wantOK {
				t.Errorf("orderAfter(%s, %d) = %s, %v; want %s, %v", tc.token, tc.after, got, ok, tc.want, tc.wantOK)
			}
		})
	}
	if latest, ok := full.order("A"); !ok || latest.Seq != 3 || latest.Position != 15 {
		t.Errorf("order(A) = %+v, %v; want its latest event, seq 3 at 15", latest, ok)
	}
	if _, ok := full.order("C"); ok {
		t.Error("order(C) found an order the window never saw")
	}
}

func TestWindowLetsGoOfEventsOlderThanItsAge(t *testing.T) {
	start := time.Now()
	seqs := map[string]int{}
	w := newWindow(100, time.Minute)
	w.start(0, nil, start)
	publishTo(w, []int64{1, 2}, "AB", start, seqs)
	publishTo(w, []int64{3}, "A", start.Add(30*time.Second), seqs)
	if _, _, ok := w.after(0); !ok {
		t.Fatal("the window lost events younger than its age")
	}
	publishTo(w, []int64{4}, "A", start.Add(61*time.Second), seqs)
	if _, _, ok := w.after(0); ok {
		t.Error("the window still holds events older than its age")
	}
	if events, _, ok := w.after(2); !ok || positionsOf(events) != "[3 4]" {
		t.Errorf("after(2) = %s, %v; want [3 4], true", positionsOf(events), ok)
	}
	if _, ok := w.order("B"); ok {
		t.Error("the window still knows an order whose only event has gone")
	}
}

func TestWindowIgnoresWhatItHasAlready(t *testing.T) {
	w := windowOf(10, 0, 10, []int64{11, 12}, "A", time.Now())
	publishTo(w, []int64{12, 13}, "B", time.Now(), map[string]int{})
	if events, _, _ := w.after(10); positionsOf(events) != "[11 12 13]" {
		t.Errorf("after a batch that repeats position 12: %s, want [11 12 13]", positionsOf(events))
	}
}

func TestWindowStartsWithTheLogsLatestEvents(t *testing.T) {
	w := newWindow(10, 0)
	// The log's latest events up to head 15, read by a process that
	// starts: everything after 11 is in them.
	recent := []orders.Event{{Position: 12, Token: "A", Seq: 2}, {Position: 14, Token: "B", Seq: 1}, {Position: 15, Token: "A", Seq: 3}}
	w.start(15, recent, time.Now())
	if events, head, ok := w.after(11); !ok || head != 15 || positionsOf(events) != "[12 14 15]" {
		t.Errorf("after(11) = %s, %d, %v; want [12 14 15], 15, true", positionsOf(events), head, ok)
	}
	if _, _, ok := w.after(10); ok {
		t.Error("after(10) claims events the window was never given")
	}
	if events, ok := w.orderAfter("A", 1); !ok || seqsOf(events) != "[2 3]" {
		t.Errorf("orderAfter(A, 1) = %s, %v; want [2 3], true", seqsOf(events), ok)
	}
	publishTo(w, []int64{16}, "B", time.Now(), map[string]int{"B": 1})
	if events, _, ok := w.after(15); !ok || positionsOf(events) != "[16]" {
		t.Errorf("after(15) once 16 is published = %s, %v; want [16], true", positionsOf(events), ok)
	}
}

// A replay from the window writes the frames the hub encoded when it
// published the event, so a storm of resumes encodes each event once.
func TestWindowKeepsPublishedFrames(t *testing.T) {
	w := newWindow(2, 0)
	w.start(10, nil, time.Now())
	p := newPublished([]orders.Event{{Position: 11, Token: "A", Seq: 1}, {Position: 13, Token: "B", Seq: 1}, {Position: 14, Token: "A", Seq: 2}})
	w.add(p, time.Now())
	for _, tc := range []struct {
		position int64
		want     *delivery
	}{
		{11, nil}, // gone: the window holds two
		{12, nil}, // never published
		{13, p.batch[1]},
		{14, p.batch[2]},
		{15, nil},
	} {
		if got := w.delivery(tc.position); got != tc.want {
			t.Errorf("delivery(%d): got %p, want %p", tc.position, got, tc.want)
		}
	}
	frame := p.batch[2].staffFrame()
	if got := w.delivery(14).staffFrame(); &got[0] != &frame[0] {
		t.Error("the window encoded its event's frame again")
	}
}
