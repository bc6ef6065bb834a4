package templ

import (
	"testing"

	"github.com/ordertracker/ordertracker/orders"
)

func TestHomePageDescribesEachQuantityByItsMessages(t *testing.T) {
	t.Parallel()
	menu := orders.Menu[:2]
	a, b := QuantityField(menu[0].ID), QuantityField(menu[1].ID)
	tests := []struct {
		name   string
		errors map[string]string
		want   [2]string
	}{
		{"a fresh form: the descriptions alone", nil, [2]string{a + "-desc", b + "-desc"}},
		{"an error of one line: its own message", map[string]string{"items." + menu[0].ID: "x"}, [2]string{a + "-desc " + a + "-error", b + "-desc"}},
		{"an error of the whole menu: its message for every line", map[string]string{"items": "x"}, [2]string{a + "-desc items-error", b + "-desc items-error"}},
		{"both: a line's own message wins", map[string]string{"items": "x", "items." + menu[1].ID: "y"}, [2]string{a + "-desc items-error", b + "-desc " + b + "-error"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewHomePage(Assets{}, menu, OrderForm{Errors: tt.errors})
			for i, l := range p.Lines {
				if l.DescribedBy != tt.want[i] {
					t.Errorf("line %s: described by %q, want %q", l.ID, l.DescribedBy, tt.want[i])
				}
			}
		})
	}
}

func TestHomePageShowsOnlyNumbersInQuantityFields(t *testing.T) {
	t.Parallel()
	menu := orders.Menu[:3]
	form := OrderForm{Quantities: map[string]string{menu[0].ID: "1.5", menu[1].ID: "many"}}
	p := NewHomePage(Assets{}, menu, form)
	for i, want := range []string{"1.5", "", "0"} {
		if got := p.Lines[i].Quantity; got != want {
			t.Errorf("line %s: quantity %q, want %q", p.Lines[i].ID, got, want)
		}
	}
}
