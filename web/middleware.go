package web

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/ordertracker/ordertracker/internal/accounts"
	"github.com/ordertracker/ordertracker/internal/clientaddr"
)

// securityHeaders sets the headers every response carries.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; "+
			"img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, r)
	})
}

// observeRequests logs one line per request, with method, route pattern
// (never the raw path, which holds the customer's token), status, duration
// and the client's address (see internal/clientaddr), and counts it in the
// metrics. Client errors are not errors of
// the server and are logged at info.
func observeRequests(log *slog.Logger, metrics *httpMetrics) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			rec := &statusRecorder{ResponseWriter: w}
			next.ServeHTTP(rec, r)
			pattern := chi.RouteContext(r.Context()).RoutePattern()
			if pattern == "" {
				pattern = "unmatched"
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			took := time.Since(start)
			metrics.observe(pattern, r.Method, status, took.Seconds(), rec.Header().Get("Content-Type") == "text/event-stream")
			level := slog.LevelInfo
			if status >= 500 {
				level = slog.LevelError
			}
			log.LogAttrs(r.Context(), level, "request",
				slog.String("method", r.Method),
				slog.String("route", pattern),
				slog.Int("status", status),
				slog.Duration("duration", took),
				slog.String("client", clientaddr.String(r)))
		})
	}
}

// statusRecorder remembers the status of a response. Unwrap lets
// http.ResponseController reach the real writer, for flushes and deadlines.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(p)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// requireStaff lets through only requests of a signed-in staff session,
// with its account in their context (staffMember).
// The rest are answered 401, since their callers cannot sign in by following
// a redirect: EventSource (which then stops), the board's script (which gets
// JSON and sends the person to sign in), and a plain form post (which gets
// the sign-in form).
func requireStaff(sessions *staffSessions, log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u := byPerson
			if r.Method == http.MethodGet && r.URL.Path == staffEventsPath {
				u = byStream
			}
			a, ok, err := sessions.member(r.Context(), u)
			switch {
			case err != nil:
				sessions.unavailable(w, r, err)
			case ok:
				next.ServeHTTP(w, r.WithContext(withStaffMember(r.Context(), a)))
			case wantsJSON(r):
				writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "Your staff sign-in has ended. Please sign in again."})
			case r.Method == http.MethodGet:
				http.Error(w, "staff sign-in required", http.StatusUnauthorized)
			default:
				renderLogin(w, r, log, http.StatusUnauthorized, "Please sign in first; nothing was changed.")
			}
		})
	}
}

// requireStaffPage is requireStaff for the pages a person opens: without a
// signed-in session they are sent to the sign-in form.
func requireStaffPage(sessions *staffSessions) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			a, ok, err := sessions.member(r.Context(), byPerson)
			switch {
			case err != nil:
				sessions.unavailable(w, r, err)
			case !ok:
				http.Redirect(w, r, "/staff/login", http.StatusSeeOther)
			default:
				next.ServeHTTP(w, r.WithContext(withStaffMember(r.Context(), a)))
			}
		})
	}
}

// memberKey is the context key of the signed-in staff account.
type memberKey struct{}

func withStaffMember(ctx context.Context, a accounts.Account) context.Context {
	return context.WithValue(ctx, memberKey{}, a)
}

// staffMember is the account that requireStaff or requireStaffPage found
// signed in: the zero Account outside them.
func staffMember(ctx context.Context) accounts.Account {
	a, _ := ctx.Value(memberKey{}).(accounts.Account)
	return a
}
