package orders

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on what a customer may ask for.
const (
	MaxNameLength = 80
	MaxQuantity   = 20
)

// A NewOrder is what a customer submits.
type NewOrder struct {
	CustomerName string
	Lines        []Line
}

// A Line asks for a quantity of one menu item.
type Line struct {
	MenuID   string `json:"id"`
	Quantity int    `json:"quantity"`
}

// A ValidationError says what is wrong with a NewOrder, field by field. The
// keys are "name", "items", and "items.<menu id>" for one line.
type ValidationError struct {
	Fields map[string]string
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("invalid order:")
	for _, k := range slices.Sorted(maps.Keys(e.Fields)) {
		fmt.Fprintf(&b, " %s: %s;", k, e.Fields[k])
	}
	return strings.TrimSuffix(b.String(), ";")
}

// Validate checks a NewOrder and returns it cleaned up (the name trimmed)
// together with its priced items, or a *ValidationError.
func (n NewOrder) Validate() (NewOrder, []Item, error) {
	fields := make(map[string]string)
	n.CustomerName = strings.TrimSpace(n.CustomerName)
	switch name := n.CustomerName; {
	case name == "":
		fields["name"] = "Please tell us your name."
	case !utf8.ValidString(name):
		fields["name"] = "The name is not valid text."
	case utf8.RuneCountInString(name) > MaxNameLength:
		fields["name"] = fmt.Sprintf("Please keep the name to %d characters.", MaxNameLength)
	case strings.ContainsFunc(name, unicode.IsControl):
		fields["name"] = "The name cannot contain line breaks or control characters."
	}

	var items []Item
	seen := make(map[string]bool)
	for _, l := range n.Lines {
		key := "items." + l.MenuID
		m, ok := MenuItemByID(l.MenuID)
		switch {
		case !ok:
			fields["items"] = fmt.Sprintf("%q is not on the menu.", truncate(l.MenuID, 40))
			continue
		case seen[l.MenuID]:
			fields[key] = "This item is listed twice."
			continue
		case l.Quantity < 1 || l.Quantity > MaxQuantity:
			fields[key] = fmt.Sprintf("Choose between 1 and %d.", MaxQuantity)
			continue
		}
		seen[l.MenuID] = true
		items = append(items, Item{MenuID: m.ID, Name: m.Name, PriceCents: m.PriceCents, Quantity: l.Quantity})
	}
	if len(n.Lines) == 0 {
		fields["items"] = "Choose at least one item."
	}
	if len(fields) > 0 {
		return n, nil, &ValidationError{Fields: fields}
	}
	return n, items, nil
}

// Total is the price of the items.
func Total(items []Item) int {
	total := 0
	for _, it := range items {
		total += it.PriceCents * it.Quantity
	}
	return total
}

func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}
