package orders_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ordertracker/ordertracker/orders"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	one := []orders.Line{{MenuID: "margherita", Quantity: 1}}
	tests := []struct {
		name  string
		order orders.NewOrder
		want  map[string]string // field -> a word the message must contain; nil: valid
	}{
		{"a simple order is valid", orders.NewOrder{CustomerName: "Ada", Lines: one}, nil},
		{"the name is trimmed before it is measured", orders.NewOrder{CustomerName: "  " + strings.Repeat("é", 80) + "  ", Lines: one}, nil},
		{"an empty name is refused", orders.NewOrder{CustomerName: "", Lines: one}, map[string]string{"name": "name"}},
		{"a name of spaces is refused", orders.NewOrder{CustomerName: " \t ", Lines: one}, map[string]string{"name": "name"}},
		{"81 characters are too many", orders.NewOrder{CustomerName: strings.Repeat("a", 81), Lines: one}, map[string]string{"name": "80"}},
		{"a line break in the name is refused", orders.NewOrder{CustomerName: "Ada\nevent: x", Lines: one}, map[string]string{"name": "control"}},
		{"invalid UTF-8 in the name is refused", orders.NewOrder{CustomerName: "Ada\xff", Lines: one}, map[string]string{"name": "valid"}},
		{"a name of zero-width characters is refused", orders.NewOrder{CustomerName: "\u200b\u200c\u200d\u2060\ufeff", Lines: one}, map[string]string{"name": "seen"}},
		{"a name of Hangul fillers is refused", orders.NewOrder{CustomerName: "\u3164\u115f\u1160\uffa0", Lines: one}, map[string]string{"name": "seen"}},
		{"a name of blank braille is refused", orders.NewOrder{CustomerName: "\u2800\u2800", Lines: one}, map[string]string{"name": "seen"}},
		{"a name of ideographic spaces is refused", orders.NewOrder{CustomerName: "\u3000\u3000", Lines: one}, map[string]string{"name": "name"}},
		{"a name of combining marks alone is refused", orders.NewOrder{CustomerName: "\u0301\u034f\ufe0f", Lines: one}, map[string]string{"name": "seen"}},
		{"a name of soft hyphens and tags is refused", orders.NewOrder{CustomerName: "\u00ad\U000E0041", Lines: one}, map[string]string{"name": "seen"}},
		{"a name of bidirectional controls alone is refused as empty", orders.NewOrder{CustomerName: "\u202e\u2066\u200f", Lines: one}, map[string]string{"name": "name"}},
		{"a zero-width joiner beside letters is fine", orders.NewOrder{CustomerName: "Ada \U0001F469\u200d\U0001F373", Lines: one}, nil},
		{"a name in Arabic script is fine", orders.NewOrder{CustomerName: "\u0639\u0644\u064a", Lines: one}, nil},
		{"a name in Korean is fine", orders.NewOrder{CustomerName: "\ud55c\uc9c0\ubbfc", Lines: one}, nil},
		{"a name of one symbol is fine", orders.NewOrder{CustomerName: "\u2605", Lines: one}, nil},
		{"no items are refused", orders.NewOrder{CustomerName: "Ada"}, map[string]string{"items": "at least one"}},
		{"quantity 0 is refused", orders.NewOrder{CustomerName: "Ada", Lines: []orders.Line{{MenuID: "diavola", Quantity: 0}}}, map[string]string{"items.diavola": "between 1 and 20"}},
		{"quantity 21 is refused", orders.NewOrder{CustomerName: "Ada", Lines: []orders.Line{{MenuID: "diavola", Quantity: 21}}}, map[string]string{"items.diavola": "between 1 and 20"}},
		{"quantity 20 is allowed", orders.NewOrder{CustomerName: "Ada", Lines: []orders.Line{{MenuID: "diavola", Quantity: 20}}}, nil},
		{"an item off the menu is refused", orders.NewOrder{CustomerName: "Ada", Lines: []orders.Line{{MenuID: "sushi", Quantity: 1}}}, map[string]string{"items": "not on the menu"}},
		{"an item listed twice is refused", orders.NewOrder{CustomerName: "Ada", Lines: []orders.Line{{MenuID: "funghi", Quantity: 1}, {MenuID: "funghi", Quantity: 2}}}, map[string]string{"items.funghi": "twice"}},
		{"every wrong field is reported at once", orders.NewOrder{CustomerName: "", Lines: []orders.Line{{MenuID: "funghi", Quantity: 99}}}, map[string]string{"name": "name", "items.funghi": "between"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, items, err := tt.order.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want no error", err)
				}
				if len(items) != len(tt.order.Lines) {
					t.Errorf("got %d items, want %d", len(items), len(tt.order.Lines))
				}
				return
			}
			var invalid *orders.ValidationError
			if !errors.As(err, &invalid) {
				t.Fatalf("Validate() error = %v, want a *ValidationError", err)
			}
			if len(invalid.Fields) != len(tt.want) {
				t.Errorf("got fields %v, want exactly %v", invalid.Fields, tt.want)
			}
			for field, word := range tt.want {
				if msg, ok := invalid.Fields[field]; !ok || !strings.Contains(msg, word) {
					t.Errorf("field %q: got message %q, want one containing %q", field, msg, word)
				}
			}
		})
	}
}

func TestValidateRemovesBidirectionalControls(t *testing.T) {
	one := []orders.Line{{MenuID: "margherita", Quantity: 1}}
	for _, tt := range []struct{ in, want string }{
		{"Ada\u202egnp.exe", "Adagnp.exe"},
		{"\u202aAda\u202c", "Ada"},
		{"\u2067\u05d3\u05e0\u05d4\u2069 2", "\u05d3\u05e0\u05d4 2"},
		{"\u200eAda\u200f\u061c", "Ada"},
		{"  \u202d Ada \u202d  ", "Ada"},
	} {
		n, _, err := orders.NewOrder{CustomerName: tt.in, Lines: one}.Validate()
		if err != nil {
			t.Errorf("Validate(%+q) = %v, want no error", tt.in, err)
			continue
		}
		if n.CustomerName != tt.want {
			t.Errorf("Validate(%+q) name = %+q, want %+q", tt.in, n.CustomerName, tt.want)
		}
	}
}

func TestValidatePricesItemsFromTheMenu(t *testing.T) {
	t.Parallel()
	_, items, err := orders.NewOrder{CustomerName: "Ada", Lines: []orders.Line{{MenuID: "diavola", Quantity: 3}, {MenuID: "lemonade", Quantity: 2}}}.Validate()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := orders.Total(items), 3*1150+2*350; got != want {
		t.Errorf("Total = %d, want %d", got, want)
	}
}

func TestTokens(t *testing.T) {
	t.Parallel()
	seen := make(map[string]bool)
	for range 10000 {
		tok := orders.NewToken()
		if len(tok) < 22 {
			t.Fatalf("token %q has %d characters; 128 bits need at least 22 in base64, 26 in base32", tok, len(tok))
		}
		if !orders.ValidToken(tok) {
			t.Fatalf("ValidToken(%q) = false for a fresh token", tok)
		}
		if seen[tok] {
			t.Fatalf("token %q was handed out twice", tok)
		}
		seen[tok] = true
	}
	for _, bad := range []string{"", "abc", strings.Repeat("A", 25), strings.Repeat("A", 27), strings.Repeat("a", 26), strings.Repeat("A", 25) + "1", strings.Repeat("A", 25) + "/"} {
		if orders.ValidToken(bad) {
			t.Errorf("ValidToken(%q) = true, want false", bad)
		}
	}
}

func TestParseStageDurations(t *testing.T) {
	t.Parallel()
	d, err := orders.ParseStageDurations("received=1s, cooking=2m,out_for_delivery=500ms")
	if err != nil {
		t.Fatal(err)
	}
	if want := (orders.StageDurations{Received: time.Second, Cooking: 2 * time.Minute, OutForDelivery: 500 * time.Millisecond}); d != want {
		t.Errorf("got %+v, want %+v", d, want)
	}
	if d, _ := orders.ParseStageDurations(""); d != orders.DefaultStageDurations {
		t.Errorf("empty: got %+v, want the defaults", d)
	}
	if d, _ := orders.ParseStageDurations("cooking=5s"); d.Cooking != 5*time.Second || d.Received != orders.DefaultStageDurations.Received {
		t.Errorf("partial: got %+v, want cooking=5s and the other defaults", d)
	}
	for _, tt := range []struct{ in, want string }{
		{"received", "stage=duration"},
		{"received=soon", "not a duration"},
		{"received=-1s", "positive"},
		{"received=0s", "positive"},
		{"baking=1s", "unknown stage"},
		{"received=1s,received=2s", "twice"},
		{"delivered=1s", "unknown stage"},
	} {
		t.Run(tt.in, func(t *testing.T) {
			_, err := orders.ParseStageDurations(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseStageDurations(%q) error = %v, want one containing %q", tt.in, err, tt.want)
			}
		})
	}
}
