package web

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ordertracker/ordertracker/orders"
	"github.com/ordertracker/ordertracker/static"
	views "github.com/ordertracker/ordertracker/templ"
)

// pageAssets are the fingerprinted URLs the pages link to, worked out once.
var pageAssets = sync.OnceValue(func() views.Assets {
	return views.Assets{
		Stylesheet:        static.URL("app.css"),
		Icon:              static.URL("icon.svg"),
		FormScript:        static.URL("order-form.js"),
		TrackScript:       static.URL("track.js"),
		WorkerScript:      static.URL("tracker-worker.js"),
		StaffWorkerScript: static.URL("staff-worker.js"),
		StreamScript:      static.URL("reconnecting-stream.js"),
		MyOrdersScript:    static.URL("my-orders.js"),
		HopsScript:        static.URL("hops.js"),
		DemoScript:        static.URL("demo.js"),
		StatusIcons:       statusIcons(),
	}
})

// immutable is the caching of a file asked for by its current fingerprinted
// name: the content at that URL never changes.
const immutable = "public, max-age=31536000, immutable"

// handleStatic serves GET /static/{name}, the embedded files. A file asked
// for by its current fingerprinted name may be kept for a year. Any other
// name that finds it (the plain name, or the fingerprint of an older
// version, from a page rendered before a deploy) gets the file as it is now,
// with an ETag and the instruction to check back every time.
func handleStatic(log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, static.Prefix)
		a, current, ok := static.Lookup(name)
		if !ok {
			notFoundPage(w, r, log, "Page not found", "There is nothing at this address.")
			return
		}
		h := w.Header()
		h.Set("Content-Type", a.ContentType)
		h.Set("ETag", a.ETag)
		if current {
			h.Set("Cache-Control", immutable)
		} else {
			h.Set("Cache-Control", "no-cache")
		}
		// ServeContent answers If-None-Match with 304 from the ETag.
		http.ServeContent(w, r, a.Name, time.Time{}, bytes.NewReader(a.Body))
	})
}

// statusIcons are the tracking page's icons, one per status, each in
// static/ as status-<status>.svg.
func statusIcons() map[orders.Status]string {
	icons := make(map[orders.Status]string, len(orders.Statuses))
	for _, s := range orders.Statuses {
		icons[s] = static.URL("status-" + string(s) + ".svg")
	}
	return icons
}
