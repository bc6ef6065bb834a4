package templ

import (
	"maps"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ordertracker/ordertracker/orders"
)

// StaffBoard is the staff's board of all orders as it stands when rendered.
// It works without JavaScript, every button a form and every "show more" a
// link; with JavaScript, staff.js follows the stream at EventsURL, moves the
// cards and keeps the counts itself.
type StaffBoard struct {
	Assets     Assets
	Stylesheet string // the staff pages' own stylesheet
	Script     string // staff.js
	// Message says what became of the last move: done, or, when Problem is
	// set, why it did not happen.
	Message string
	Problem bool
	// EventsURL is the stream of all orders, from the position the board was
	// rendered at, so that nothing that happens in between is lost.
	EventsURL string
	// OrdersURL is where the script reads the next orders of a column, when
	// cards leave it and it has room for more.
	OrdersURL string
	Columns   []StaffColumn
	// Member is the name of the staff account signed in.
	Member string
}

// A StaffColumn is one status of the board: how many orders it holds, and
// a window onto them. An unfinished status is a queue, oldest first, by
// when each order entered it: the order that has waited longest is the one
// a kitchen needs next, so it is never among those left off. A finished
// one shows its latest few, newest first.
type StaffColumn struct {
	Status orders.Status
	Label  string
	// Action names the button that moves an order of this column on, such
	// as "Start cooking"; empty when the orders here are finished.
	Action      string
	Cancellable bool
	// Stage is the sequence number every order in this status has: 1 when
	// received, 2 cooking, 3 out for delivery, 4 delivered, since each move
	// adds one. Zero for cancelled, which orders reach from two stages. An
	// event with seq s left the column of stage s−1, so the script keeps
	// the counts of columns whose cards it does not show.
	Stage       int
	NewestFirst bool
	// TimeLabel introduces the time on each card, when the order entered
	// this status: "Since" while it waits, "At" once finished.
	TimeLabel string
	// Duration is how long an order should spend in this status, from
	// STAGE_DURATIONS: the script shows a card amber once its order has
	// been here longer, and red past twice as long. Zero, as for a
	// finished status, shows no age.
	Duration time.Duration
	// Count is how many orders are in this status, shown or not.
	Count int
	// Window is how many cards the column shows at most; Cards are the
	// first of its orders, up to Window.
	Window int
	Cards  []StaffCard
	// MoreURL shows Step more cards in this column, keeping the other
	// columns' windows; empty where the window cannot grow.
	MoreURL string
	Step    int
}

// A StaffCard is one order on the board.
type StaffCard struct {
	Token string
	Name  string
	Items string // "2 × Diavola, 1 × Lemonade"
	Total string
	Seq   int
	// Entered is when the order entered its status: the time the card shows
	// and, with the token, its place in the column. (Every event carries
	// it, so a card the script makes from an event shows the same; when
	// the order was placed is only in the first.)
	Entered time.Time
	// By names the staff account that made the order's latest change, when
	// a member of staff made it; empty otherwise.
	By string
}

// The windows of the board's columns. An unfinished column shows
// BoardWindow cards unless asked for more, BoardWindowStep at a time, up
// to BoardWindowMax: whatever the number of orders, the page holds a few
// hundred cards at most.
const (
	BoardWindow     = 50
	BoardWindowStep = 50
	BoardWindowMax  = 500
)

// FinishedShown is how many of the latest delivered, and of the latest
// cancelled, orders the board shows.
const FinishedShown = 20

// boardColumns are the board's columns, in the order of an order's life.
var boardColumns = orders.Statuses

// BoardWindows says how many cards each unfinished column shows; a status
// that is not in it shows BoardWindow. The board's address carries it, one
// query parameter per column that shows more: /staff?cooking=100.
type BoardWindows map[orders.Status]int

// ParseBoardWindows reads the windows from the board's query. A value that
// is not a number is ignored and one out of range is brought into it: the
// parameters only say how much to show.
func ParseBoardWindows(q url.Values) BoardWindows {
	w := BoardWindows{}
	for _, s := range boardColumns {
		if s.Terminal() || !q.Has(string(s)) {
			continue
		}
		n, err := strconv.Atoi(q.Get(string(s)))
		if err != nil {
			continue
		}
		w[s] = min(max(n, BoardWindow), BoardWindowMax)
	}
	return w
}

// Of is the window of the column of status s.
func (w BoardWindows) Of(s orders.Status) int {
	if s.Terminal() {
		return FinishedShown
	}
	if n, ok := w[s]; ok {
		return n
	}
	return BoardWindow
}

// Limits are how many orders of each status the board reads.
func (w BoardWindows) Limits() map[orders.Status]int {
	limits := make(map[orders.Status]int, len(boardColumns))
	for _, s := range boardColumns {
		limits[s] = w.Of(s)
	}
	return limits
}

// query is the board's query string for w: only the windows that are not
// the default, in the order of the columns.
func (w BoardWindows) query() string {
	var parts []string
	for _, s := range boardColumns {
		if n := w.Of(s); !s.Terminal() && n != BoardWindow {
			parts = append(parts, string(s)+"="+strconv.Itoa(n))
		}
	}
	return strings.Join(parts, "&")
}

// AdvanceAction names the button that moves an order in status s on to its
// next stage, or returns "" when there is none.
func AdvanceAction(s orders.Status) string {
	switch s {
	case orders.Received:
		return "Start cooking"
	case orders.Cooking:
		return "Send out"
	case orders.OutForDelivery:
		return "Mark delivered"
	}
	return ""
}

// stageOf is the sequence number every order in status s has, or 0 when
// orders reach s from more than one stage.
func stageOf(s orders.Status) int {
	for i, stage := range orders.Stages {
		if stage == s {
			return i + 1
		}
	}
	return 0
}

// NewStaffBoard lays out b as the board, each column showing as many of
// its orders as windows say, in the order b has them.
func NewStaffBoard(assets Assets, b orders.Board, windows BoardWindows, eventsURL, ordersURL string) StaffBoard {
	board := StaffBoard{Assets: assets, EventsURL: eventsURL, OrdersURL: ordersURL}
	for _, s := range boardColumns {
		c := StaffColumn{
			Status:      s,
			Label:       s.Label(),
			Action:      AdvanceAction(s),
			Cancellable: s.Cancellable(),
			Stage:       stageOf(s),
			NewestFirst: s.Terminal(),
			Count:       b.Counts[s],
			Window:      windows.Of(s),
			TimeLabel:   "Since",
		}
		if s.Terminal() {
			c.TimeLabel = "At"
		}
		for _, o := range b.Orders[s] {
			if len(c.Cards) == c.Window {
				break
			}
			c.Cards = append(c.Cards, StaffCard{
				Token:   o.Token,
				Name:    o.CustomerName,
				Items:   ItemsSummary(o.Items),
				Total:   Money(o.TotalCents),
				Seq:     o.Seq,
				Entered: o.UpdatedAt,
				By:      o.Staff.Name,
			})
		}
		if !s.Terminal() && c.Window < BoardWindowMax {
			c.Step = min(BoardWindowStep, BoardWindowMax-c.Window)
			more := BoardWindows{}
			maps.Copy(more, windows)
			more[s] = c.Window + c.Step
			c.MoreURL = "/staff?" + more.query() + "#group-" + string(s)
		}
		board.Columns = append(board.Columns, c)
	}
	return board
}

// SetStages gives each unfinished column the duration of its stage.
func (b *StaffBoard) SetStages(d orders.StageDurations) {
	for i, c := range b.Columns {
		b.Columns[i].Duration, _ = d.For(c.Status)
	}
}

// exactTime is t to the microsecond the database keeps, for a card's
// place in its column: the script sends it back to ask for the orders after
// the card, and a time cut to the millisecond would put the card itself
// after it. (A <time> element's datetime holds milliseconds at most; this
// is for a data attribute.)
func exactTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// More is how many orders of the column have no card.
func (c StaffColumn) More() int { return max(c.Count-len(c.Cards), 0) }

// MoreText says how many orders of the column have no card: "and 9,950
// more".
func (c StaffColumn) MoreText() string { return "and " + Thousands(c.More()) + " more" }

// StepText names the link that shows more cards: "Show 50 more".
func (c StaffColumn) StepText() string { return "Show " + strconv.Itoa(c.Step) + " more" }

// Thousands writes n with its digits grouped by threes: 12,345.
func Thousands(n int) string {
	s := strconv.Itoa(n)
	sign := ""
	if n < 0 {
		sign, s = "-", s[1:]
	}
	var b strings.Builder
	for i, d := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	return sign + b.String()
}

// ItemsSummary is an order's items on one line: "2 × Diavola, 1 × Lemonade".
func ItemsSummary(items []orders.Item) string {
	parts := make([]string, len(items))
	for i, it := range items {
		parts[i] = strconv.Itoa(it.Quantity) + " × " + it.Name
	}
	return strings.Join(parts, ", ")
}
