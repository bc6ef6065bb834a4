package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// Not committed: measures the hops on a running program at MEASURE_URL.
func TestMeasureHops(t *testing.T) {
	base := os.Getenv("MEASURE_URL")
	if base == "" {
		t.Skip("MEASURE_URL")
	}
	tb := newTab(t, newBrowser(t), true)
	tb.do(t, chromedp.Navigate(base+"/staff/login"))
	tb.do(t, chromedp.WaitVisible(chromedp.ID("password")), chromedp.SetValue(chromedp.ID("password"), os.Getenv("MEASURE_PASSWORD")))
	tb.do(t, chromedp.Click(chromedp.CSS(`.staff-login button[type="submit"]`)), chromedp.WaitVisible(chromedp.ID("staff-board")))
	seg := map[string][]float64{}
	var clicks []float64
	for i := range 20 {
		resp, err := http.Post(base+"/api/orders", "application/json", strings.NewReader(fmt.Sprintf(`{"name":"Measure %d","items":[{"id":"margherita","quantity":1}]}`, i)))
		if err != nil {
			t.Fatal(err)
		}
		var o struct{ Token string }
		json.NewDecoder(resp.Body).Decode(&o)
		resp.Body.Close()
		tb.do(t, chromedp.Navigate(base+"/demo?order="+o.Token))
		tb.waitFor(t, "live", jsDemoLive)
		for _, want := range []string{"cooking", "out_for_delivery", "delivered"} {
			tb.do(t, chromedp.Click(chromedp.ID("demo-advance")))
			tb.waitFor(t, "moved", jsDemoCustomer+`.dataset.status === '`+want+`' && `+jsDemoBoardStatus+` === '`+want+`' && document.getElementById('demo-advance').disabled === false`)
		}
		tb.waitFor(t, "notes", `[...document.querySelectorAll('#demo-customer-frames .frame-note')].filter((li) => li.textContent.includes('reached this pane')).length === 3`)
		for _, list := range []string{"demo-customer-frames", "demo-board-frames"} {
			tb.waitFor(t, "waterfalls", `[...document.querySelectorAll('#`+list+` .waterfall[data-live="true"]')].length >= 3`)
			for _, w := range waterfalls(t, tb, list) {
				if !w.Live {
					continue
				}
				for j, n := range w.Names {
					seg[list+" "+n] = append(seg[list+" "+n], w.Hops[j])
				}
				seg[list+" total"] = append(seg[list+" total"], w.Total)
			}
		}
		for _, s := range eval[[]string](t, tb, `[...document.querySelectorAll('#demo-customer-frames .frame-note')].map((li) => li.textContent).filter((s) => s.includes('reached this pane'))`) {
			var ms float64
			i := strings.Index(s, "pane ")
			fmt.Sscanf(s[i+5:], "%f ms", &ms)
			clicks = append(clicks, ms)
		}
	}
	seg["click → customer pane"] = clicks
	keys := make([]string, 0, len(seg))
	for k := range seg {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := seg[k]
		slices.Sort(v)
		fmt.Printf("%-50s n=%3d median %6.2f  p90 %6.2f  max %6.2f\n", k, len(v), v[len(v)/2], v[len(v)*9/10], v[len(v)-1])
	}
	fmt.Println(eval[string](t, tb, `document.getElementById('demo-clock').textContent`))
}
