package templ

import (
	"regexp"

	"github.com/ordertracker/ordertracker/orders"
)

// OrderForm is the order form as a customer filled it in, and what is wrong
// with it. The zero value is a fresh, empty form.
type OrderForm struct {
	Name string
	// Quantities are the quantity fields by menu id, exactly as typed.
	Quantities map[string]string
	// Errors are messages by field, keyed as orders.ValidationError.Fields:
	// "name", "items", and "items.<menu id>".
	Errors map[string]string
	// Problem is said above the form when it needs fixing.
	Problem string
}

// HomePage is the menu with the order form.
type HomePage struct {
	Assets     Assets
	Name       string
	NameError  string
	Lines      []MenuLine
	ItemsError string
	Problem    string
	// FirstError is the id of the first field to fix; it gets the focus.
	FirstError string
	MaxName    int
	MaxQty     int
}

// A MenuLine is one item of the menu with its quantity field.
type MenuLine struct {
	ID          string
	Name        string
	Description string
	Price       string
	PriceCents  int
	// Field is the name and id of the quantity input.
	Field    string
	Quantity string
	Error    string
	// DescribedBy are the ids of what describes the quantity input: the
	// item's description, and the message of its own error or, failing
	// that, of the whole menu's.
	DescribedBy string
}

// QuantityField is the form field that holds the quantity of a menu item.
func QuantityField(menuID string) string { return "qty-" + menuID }

// NewHomePage lays out menu with form.
func NewHomePage(assets Assets, menu []orders.MenuItem, form OrderForm) HomePage {
	p := HomePage{
		Assets:     assets,
		Name:       form.Name,
		NameError:  form.Errors["name"],
		ItemsError: form.Errors["items"],
		Problem:    form.Problem,
		MaxName:    orders.MaxNameLength,
		MaxQty:     orders.MaxQuantity,
	}
	if p.NameError != "" {
		p.FirstError = "name"
	}
	for _, m := range menu {
		line := MenuLine{
			ID:          m.ID,
			Name:        m.Name,
			Description: m.Description,
			Price:       Money(m.PriceCents),
			PriceCents:  m.PriceCents,
			Field:       QuantityField(m.ID),
			Quantity:    form.Quantities[m.ID],
			Error:       form.Errors["items."+m.ID],
		}
		switch {
		case line.Quantity == "":
			line.Quantity = "0"
		case !htmlNumber.MatchString(line.Quantity):
			// A number input can hold only a number (a browser never
			// sends anything else); the field's message says what to fix.
			line.Quantity = ""
		}
		line.DescribedBy = line.Field + "-desc"
		switch {
		case line.Error != "":
			line.DescribedBy += " " + line.Field + "-error"
		case p.ItemsError != "":
			line.DescribedBy += " items-error"
		}
		if line.Error != "" && p.FirstError == "" {
			p.FirstError = line.Field
		}
		p.Lines = append(p.Lines, line)
	}
	if p.ItemsError != "" && p.FirstError == "" && len(p.Lines) > 0 {
		p.FirstError = p.Lines[0].Field
	}
	return p
}

// htmlNumber is what the value of a number input may be: HTML's valid
// floating-point number.
var htmlNumber = regexp.MustCompile(`^-?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$`)

// Title is the page's title.
func (p HomePage) Title() string {
	if p.Problem != "" {
		return "Please check your order · " + Site
	}
	return "Order · " + Site
}
