// Package templ renders the customer pages: the menu with its order form,
// the live tracking page, and the error pages. Each page has a view model, a
// struct shaped like the page, built from the domain by a New function here,
// so the components only lay out values that are ready to show.
//
// Everything a customer typed reaches the page as text that templ escapes;
// nothing here uses templ.Raw or templ.SafeURL.
package templ

import (
	"fmt"
	"net/url"
	"time"

	"github.com/ordertracker/ordertracker/orders"
)

// Site is the name shown in the header and in every title.
const Site = "Order tracker"

// Assets are the URLs of the static files the pages link to. They carry a
// fingerprint of the content, so the web package fills them in.
type Assets struct {
	Stylesheet        string
	Icon              string
	FormScript        string // the running total on the order form
	TrackScript       string // live updates of the tracking page
	WorkerScript      string // the SharedWorker that shares one stream among tracking tabs
	StaffWorkerScript string // the SharedWorker that shares one stream among board tabs
	StreamScript      string // the reconnecting stream that every page and worker follows a stream with
	MyOrdersScript    string // the live list of the orders placed in this browser
	HopsScript        string // the waterfall of an event's hops in the panels
	DemoScript        string // the side-by-side demo page
	// StatusIcons are the tracking page's icons, one per status.
	StatusIcons map[orders.Status]string
}

// head is what the layout needs of a page.
type head struct {
	Title  string
	Assets Assets
	Script string // one deferred script, or none
	// Stream loads the reconnecting stream's script before Script, which
	// follows an event stream with it.
	Stream bool
	// Hops loads the hops' waterfall (hops.js) before Script.
	Hops bool
	// Icon is the page's own icon; empty means the site's.
	Icon string
}

// icon is the page's icon.
func (h head) icon() string {
	if h.Icon != "" {
		return h.Icon
	}
	return h.Assets.Icon
}

// workerURL is the address of a shared worker's script, with that of the
// reconnecting stream's script it imports: a worker has no page to load it
// for it, and both names carry a fingerprint, so that every tab of one
// version shares one worker of that version.
func workerURL(worker string, a Assets) string {
	return worker + "?" + url.Values{"stream": {a.StreamScript}}.Encode()
}

// Money formats an amount in cents, as on the menu: "€9.50".
func Money(cents int) string {
	sign := ""
	if cents < 0 {
		sign, cents = "-", -cents
	}
	return fmt.Sprintf("%s€%d.%02d", sign, cents/100, cents%100)
}

// Clock formats a time for a page that does not know the reader's time zone:
// the time of day in UTC, said so. The tracking script rewrites every
// <time> element in the reader's own zone.
func Clock(t time.Time) string { return t.UTC().Format("15:04:05") + " UTC" }

// DayClock is a time with its day, for what may be days old.
func DayClock(t time.Time) string { return t.UTC().Format("2 Jan 15:04") + " UTC" }

// shortClock is Clock without the seconds.
func shortClock(t time.Time) string { return t.UTC().Format("15:04") + " UTC" }

// preciseTime is a time to the microsecond, for a script that measures
// with it (hops.js).
func preciseTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z07:00") }

// machineTime is the datetime attribute of a <time> element, to the
// millisecond: HTML allows no more than three digits of a second.
func machineTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

// InAbout says roughly how far away d is, as a person would: "in about 3
// minutes". The tracking script has the same rule in JavaScript.
func InAbout(d time.Duration) string {
	minutes := int((d + 30*time.Second) / time.Minute)
	switch {
	case d <= 0:
		return "any moment now"
	case minutes < 1:
		return "in less than a minute"
	case minutes == 1:
		return "in about a minute"
	}
	return fmt.Sprintf("in about %d minutes", minutes)
}
