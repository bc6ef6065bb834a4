package web

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// A Check is one thing the process needs in order to serve: the database,
// the listener, the schema.
type Check struct {
	Name string
	Run  func(context.Context) error
}

// handleHealthz answers whether the process is up at all.
func handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
}

// handleReadyz answers whether the process can serve: 200 when every check
// passes, 503 otherwise, with each check's result as JSON.
func handleReadyz(checks []Check) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		results := make(map[string]string, len(checks))
		status := http.StatusOK
		for _, c := range checks {
			results[c.Name] = "ok"
			if err := c.Run(ctx); err != nil {
				results[c.Name] = err.Error()
				status = http.StatusServiceUnavailable
			}
		}
		writeJSON(w, status, results)
	})
}

// writeJSON writes v as the JSON body of a response.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
