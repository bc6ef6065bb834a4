package orders_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/ordertracker/ordertracker/orders"
)

func TestFindByNameOrToken(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	named := func(name string) orders.Order {
		t.Helper()
		o, err := s.Create(ctx, orders.NewOrder{CustomerName: name, Lines: []orders.Line{{MenuID: "margherita", Quantity: 1}}})
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	lena := named("Lena Park")
	helena := named("Helena Lenz")
	percent := named("100% Bob")
	under := named("Under_score")
	delivered := orderIn(t, s, orders.Delivered) // named Ada, finished

	for _, tc := range []struct {
		name, q string
		want    []orders.Order
	}{
		{"a part of a name, in any case, finds every unfinished order whose name has it", "LEN", []orders.Order{lena, helena}},
		{"a percent sign is a percent sign, not a wildcard", "%", []orders.Order{percent}},
		{"an underscore is an underscore, not a wildcard", "r_s", []orders.Order{under}},
		{"a finished order is not found by its name", "Ada", nil},
		{"a finished order is found by its token", delivered.Token, []orders.Order{delivered}},
		{"a token in lower case finds its order", strings.ToLower(lena.Token), []orders.Order{lena}},
		{"the start of a token finds an unfinished order", helena.Token[:12], []orders.Order{helena}},
		{"nothing finds nothing", "   ", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			list, err := s.Find(ctx, tc.q, 0)
			if err != nil {
				t.Fatal(err)
			}
			got := tokensOf(list)
			if want := tokensOf(tc.want); !slices.Equal(got, want) {
				t.Errorf("Find(%q) = %v, want %v", tc.q, got, want)
			}
		})
	}

	t.Run("it returns no more than the limit", func(t *testing.T) {
		list, err := s.Find(ctx, "e", 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 1 {
			t.Errorf("Find with limit 1 returned %d orders", len(list))
		}
	})
}

func tokensOf(list []orders.Order) []string {
	out := []string{}
	for _, o := range list {
		out = append(out, o.Token)
	}
	return out
}
