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

// Validate checks a NewOrder and returns it cleaned up (bidirectional
// controls removed from the name, and the name trimmed) together with its
// priced items, or a *ValidationError.
func (n NewOrder) Validate() (NewOrder, []Item, error) {
	fields := make(map[string]string)
	if utf8.ValidString(n.CustomerName) {
		n.CustomerName = strings.TrimSpace(strings.Map(dropBidiControl, n.CustomerName))
	}
	switch name := n.CustomerName; {
	case !utf8.ValidString(name):
		fields["name"] = "The name is not valid text."
	case name == "":
		fields["name"] = "Please tell us your name."
	case utf8.RuneCountInString(name) > MaxNameLength:
		fields["name"] = fmt.Sprintf("Please keep the name to %d characters.", MaxNameLength)
	case strings.ContainsFunc(name, unicode.IsControl):
		fields["name"] = "The name cannot contain line breaks or control characters."
	case !strings.ContainsFunc(name, visible):
		fields["name"] = "Please write your name with letters or digits that can be seen."
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

// dropBidiControl removes (returns -1 for) the characters that change the
// direction in which the text after them is shown. Where a name is shown
// among other text, on the staff board, one of them turns the text around
// it: "Ada\u202Egnp.exe" shows as "Adaexe.png". A name needs none of them
// to show right: a browser lays out right-to-left script by itself.
func dropBidiControl(r rune) rune {
	switch {
	case r >= '\u202A' && r <= '\u202E', // embeddings, overrides and their end
		r >= '\u2066' && r <= '\u2069', // isolates and their end
		r == '\u200E', r == '\u200F',   // left-to-right and right-to-left marks
		r == '\u061C': // Arabic letter mark
		return -1
	}
	return r
}

// visible reports whether r shows as something: a letter, digit,
// punctuation or symbol, but none of those that a font draws as nothing,
// such as the Hangul fillers (U+115F, U+1160, U+3164, U+FFA0) and the other
// default-ignorable characters, or the blank braille pattern (U+2800).
// Spaces, format characters (U+200B to U+200D, U+2060, U+FEFF) and marks
// are not letters, so they do not count either; a name may hold them, as
// long as it holds something visible too (a zero-width joiner belongs in
// many emoji and some scripts).
func visible(r rune) bool {
	if !unicode.In(r, unicode.L, unicode.N, unicode.P, unicode.S) {
		return false
	}
	switch {
	case unicode.In(r, unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector),
		r == '\u2800',     // braille pattern blank
		r == '\U0001D159': // musical symbol null notehead
		return false
	}
	return true
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
