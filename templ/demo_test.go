package templ

import (
	"encoding/json"
	"testing"

	"github.com/ordertracker/ordertracker/orders"
)

func TestDemoOrderSaysTheBoardsNextMove(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		status orders.Status
		want   string
	}{
		{orders.Received, "Move on to Cooking"},
		{orders.Cooking, "Move on to Out for delivery"},
		{orders.OutForDelivery, "Move on to Delivered"},
		{orders.Delivered, ""},
		{orders.Cancelled, ""},
	} {
		t.Run(string(tt.status), func(t *testing.T) {
			o := NewDemoOrder(orders.Order{Token: "tok", Status: tt.status}, 7)
			if got := o.NextLabel(); got != tt.want {
				t.Errorf("NextLabel() = %q, want %q", got, tt.want)
			}
			if o.Final != tt.status.Terminal() || o.HeadText() != "7" {
				t.Errorf("final %v, head %q; want %v, 7", o.Final, o.HeadText(), tt.status.Terminal())
			}
		})
	}
}

// TestMovesJSONFollowsTheStateMachine: the board pane's button decides
// nothing itself, so its moves must be Status.Next's.
func TestMovesJSONFollowsTheStateMachine(t *testing.T) {
	t.Parallel()
	var moves map[orders.Status]struct {
		Next  orders.Status `json:"next"`
		Label string        `json:"label"`
	}
	if err := json.Unmarshal([]byte(MovesJSON()), &moves); err != nil {
		t.Fatal(err)
	}
	for _, s := range orders.Statuses {
		next, ok := s.Next()
		m, has := moves[s]
		if has != ok || has && (m.Next != next || m.Label != next.Label()) {
			t.Errorf("%s: moves say %+v (%v), want %s (%v)", s, m, has, next, ok)
		}
	}
}

func TestDemoURLEscapesTheToken(t *testing.T) {
	t.Parallel()
	if got, want := DemoURL("a b&c=d"), "/demo?order=a+b%26c%3Dd"; got != want {
		t.Errorf("DemoURL = %q, want %q", got, want)
	}
}
