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

// Sign-in attempts, right or wrong, that one client address, or one known
// browser (see device.go), may make: a burst of loginBurst, then one every
// loginEvery. A person who mistypes never notices; a guesser gets about
// 4,300 guesses a day, hopeless against a password of any length.
const (
	loginBurst = 5
	loginEvery = 20 * time.Second
)

// loginLimits are the allowances of sign-in attempts of one handler: one
// per client address, and one per known browser, kept apart so that
// guesses at an address never spend a known browser's allowance.
type loginLimits struct {
	byAddress *ratelimit.Limiter
	byDevice  *ratelimit.Limiter
}

func newLoginLimits() loginLimits {
	return loginLimits{
		byAddress: ratelimit.New(loginBurst, loginEvery),
		byDevice:  ratelimit.New(loginBurst, loginEvery),
	}
}

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
// Attempts are limited before the password is even read, so that parallel
// guesses are counted as surely as serial ones. An attempt from a browser
// with a valid device cookie (one that signed in before) spends that
// browser's own allowance; any other spends its client address's. The
// address is the one internal/clientaddr works out: the connection's own,
// unless it comes from a trusted proxy (TRUSTED_PROXIES), whose
// X-Forwarded-For is then believed. From anyone else that header is
// whatever the client wants it to be, and a limit keyed by it would limit
// nobody.
//
// The password is compared in constant time, as SHA-256 digests, so that
// neither where the first wrong byte is nor the password's length shows in
// how long the answer takes. Success starts a session under a new token and
// gives the browser a new device cookie.
func handleStaffLogin(password string, sessions *staffSessions, devices deviceCookies, limits loginLimits, log *slog.Logger) http.Handler {
	want := sha256.Sum256([]byte(password))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client := clientaddr.Key(r)
		limiter, key, from := limits.byAddress, client, "your address"
		nonce, known := devices.nonce(r)
		if known {
			limiter, key, from = limits.byDevice, nonce, "this browser"
		}
		if ok, wait := limiter.Allow(key); !ok {
			seconds := int(math.Ceil(wait.Seconds()))
			log.Warn("staff sign-in rate limited", "client", client, "known_browser", known)
			w.Header().Set("Retry-After", strconv.Itoa(seconds))
			renderLogin(w, r, log, http.StatusTooManyRequests,
				fmt.Sprintf("Too many attempts from %s. Please wait %d seconds, then try again.", from, seconds))
			return
		}
		if err := readForm(w, r); err != nil {
			renderLogin(w, r, log, http.StatusBadRequest, "The form could not be read. Please try again.")
			return
		}
		given := sha256.Sum256([]byte(r.PostForm.Get("password")))
		if subtle.ConstantTimeCompare(given[:], want[:]) != 1 {
			log.Info("staff sign-in refused", "client", client, "known_browser", known)
			renderLogin(w, r, log, http.StatusUnauthorized, "That is not the staff password.")
			return
		}
		if err := sessions.signIn(r.Context()); err != nil {
			sessions.unavailable(w, r, err)
			return
		}
		devices.issue(w, r)
		log.Info("staff signed in", "client", client, "known_browser", known)
		http.Redirect(w, r, "/staff", http.StatusSeeOther)
	})
}

// handleStaffLogout serves POST /staff/logout: the session is deleted on
// the server, so a copy of its cookie is worthless from now on, and its
// streams in this process end at once (in other processes, within a check
// of their watch; see sessionwatch.go).
func handleStaffLogout(sessions *staffSessions, streams sessionStreams) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, err := sessions.signOut(r.Context())
		if err != nil {
			sessions.unavailable(w, r, err)
			return
		}
		streams.EndOwner(token)
		http.Redirect(w, r, "/staff/login", http.StatusSeeOther)
	})
}

// sessionState is the answer of GET /staff/session.
type sessionState struct {
	SignedIn  bool   `json:"signed_in"`
	ExpiresAt string `json:"expires_at,omitempty"` // RFC 3339
	LoginURL  string `json:"login_url,omitempty"`
}

// handleStaffSession serves GET /staff/session, which the board's script
// asks when its event stream has given up: a signed-in session (200) means
// the server is in trouble, and the script tries again later; none (401)
// means the person must sign in again. It never redirects, since a script
// cannot show the form it would lead to, and nothing caches the answer.
func handleStaffSession(sessions *staffSessions) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !sessions.signedIn(r.Context()) {
			writeJSON(w, http.StatusUnauthorized, sessionState{LoginURL: "/staff/login"})
			return
		}
		writeJSON(w, http.StatusOK, sessionState{
			SignedIn:  true,
			ExpiresAt: sessions.expiresAt(r.Context()).UTC().Format(time.RFC3339),
		})
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
