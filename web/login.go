package web

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/ordertracker/ordertracker/internal/clientaddr"
	"github.com/ordertracker/ordertracker/internal/ratelimit"
	views "github.com/ordertracker/ordertracker/templ"
)

// Sign-in attempts, right or wrong, that one client address may make: a
// burst of loginBurst, then one every loginEvery. A person who mistypes
// never notices; a guesser gets about 4,300 guesses a day, hopeless against
// a password of any length.
const (
	loginBurst = 5
	loginEvery = 20 * time.Second
)

// newLoginLimiter returns the limiter of sign-in attempts of one handler.
func newLoginLimiter() *ratelimit.Limiter { return ratelimit.New(loginBurst, loginEvery) }

// handleStaffLoginForm serves GET /staff/login: the sign-in form, or, for
// someone already signed in, the board.
func handleStaffLoginForm(sessions *staffSessions, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sessions.signedIn(r.Context()) {
			http.Redirect(w, r, "/staff", http.StatusSeeOther)
			return
		}
		renderLogin(w, r, log, http.StatusOK, "")
	})
}

// handleStaffLogin serves POST /staff/login.
//
// Attempts are limited per client address, counted before the password is
// even read, so that parallel guesses are counted as surely as serial ones.
// The address is the one internal/clientaddr works out: the connection's
// own, unless it comes from a trusted proxy (TRUSTED_PROXIES), whose
// X-Forwarded-For is then believed. From anyone else that header is
// whatever the client wants it to be, and a limit keyed by it would limit
// nobody.
//
// The password is compared in constant time, as SHA-256 digests, so that
// neither where the first wrong byte is nor the password's length shows in
// how long the answer takes. Success starts a session under a new token.
func handleStaffLogin(password string, sessions *staffSessions, limiter *ratelimit.Limiter, log *slog.Logger) http.Handler {
	want := sha256.Sum256([]byte(password))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client := clientaddr.Key(r)
		if ok, wait := limiter.Allow(client); !ok {
			seconds := int(math.Ceil(wait.Seconds()))
			log.Warn("staff sign-in rate limited", "client", client)
			w.Header().Set("Retry-After", strconv.Itoa(seconds))
			renderLogin(w, r, log, http.StatusTooManyRequests,
				fmt.Sprintf("Too many attempts from your address. Please wait %d seconds, then try again.", seconds))
			return
		}
		if err := readForm(w, r); err != nil {
			renderLogin(w, r, log, http.StatusBadRequest, "The form could not be read. Please try again.")
			return
		}
		given := sha256.Sum256([]byte(r.PostForm.Get("password")))
		if subtle.ConstantTimeCompare(given[:], want[:]) != 1 {
			log.Info("staff sign-in refused", "client", client)
			renderLogin(w, r, log, http.StatusUnauthorized, "That is not the staff password.")
			return
		}
		if err := sessions.signIn(r.Context()); err != nil {
			sessions.unavailable(w, r, err)
			return
		}
		log.Info("staff signed in", "client", client)
		http.Redirect(w, r, "/staff", http.StatusSeeOther)
	})
}

// handleStaffLogout serves POST /staff/logout: the session is deleted on
// the server, so a copy of its cookie is worthless from now on.
func handleStaffLogout(sessions *staffSessions, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := sessions.signOut(r.Context()); err != nil {
			sessions.unavailable(w, r, err)
			return
		}
		http.Redirect(w, r, "/staff/login", http.StatusSeeOther)
	})
}

// handleStaffOff answers every staff address when there is no staff
// password: 404, with a page that says how to turn the staff side on.
func handleStaffOff(log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page := views.StaffOff{Assets: pageAssets(), Stylesheet: staffStylesheet()}
		render(w, r, log, http.StatusNotFound, views.StaffOffPage(page))
	})
}

// renderLogin writes the sign-in form with status and a problem to show.
func renderLogin(w http.ResponseWriter, r *http.Request, log *slog.Logger, status int, problem string) {
	page := views.StaffLogin{Assets: pageAssets(), Stylesheet: staffStylesheet(), Problem: problem}
	render(w, r, log, status, views.StaffLoginPage(page))
}
