package templ

import "github.com/ordertracker/ordertracker/orders"

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
		if line.Quantity == "" {
			line.Quantity = "0"
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

// Title is the page's title.
func (p HomePage) Title() string {
	if p.Problem != "" {
		return "Please check your order · " + Site
	}
	return "Order · " + Site
}
