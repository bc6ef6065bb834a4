package orders

// A MenuItem is something a customer can order.
type MenuItem struct {
	ID          string
	Name        string
	Description string
	PriceCents  int
}

// Menu is the fixed menu, in the order it is shown.
var Menu = []MenuItem{
	{ID: "margherita", Name: "Margherita", Description: "Tomato, mozzarella, basil", PriceCents: 950},
	{ID: "diavola", Name: "Diavola", Description: "Tomato, mozzarella, spicy salami", PriceCents: 1150},
	{ID: "funghi", Name: "Funghi", Description: "Mozzarella, mushrooms, thyme", PriceCents: 1100},
	{ID: "garlic-bread", Name: "Garlic bread", Description: "With rosemary and sea salt", PriceCents: 450},
	{ID: "tiramisu", Name: "Tiramisù", Description: "Made in house every morning", PriceCents: 600},
	{ID: "lemonade", Name: "Lemonade", Description: "Fresh, not too sweet", PriceCents: 350},
}

// MenuItemByID finds an item of the menu.
func MenuItemByID(id string) (MenuItem, bool) {
	for _, m := range Menu {
		if m.ID == id {
			return m, true
		}
	}
	return MenuItem{}, false
}
