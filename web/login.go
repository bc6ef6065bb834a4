package web

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ordertracker/ordertracker/internal/accounts"
	"github.com/ordertracker/ordertracker/internal/clientaddr"
	"github.com/ordertracker/ordertracker/internal/ratelimit"
	views "github.com/ordertracker/ordertracker/templ"
)

// Sign-in attempts, right or wrong, that one client address, one account
// name, or one known browser (see device.go) may make: a burst of
// loginBurst, then one every loginEvery. A person who mistypes never
// notices; a guesser gets about 4,300 guesses a day at one name, however
// many addresses it brings, hopeless against a password of any length.
const (
	loginBurst = 5
	loginEvery = 20 * time.Second
)

// loginLimits are the allowances of sign-in attempts of one handler: one
// per client address, one per account name, and one per known browser,
// kept apart so that guesses at an address or at a name never spend a
// known browser's allowance.
type loginLimits struct {
	byAddress *ratelimit.Limiter
	byAccount *ratelimit.Limiter
	byDevice  *ratelimit.Limiter
}

func newLoginLimits() loginLimits {
	return loginLimits{
		byAddress: ratelimit.New(loginBurst, loginEvery),
		byAccount: ratelimit.New(loginBurst, loginEvery),
		byDevice:  ratelimit.New(loginBurst, loginEvery),
	}
}

// handleStaffLoginForm serves GET /staff/login: the sign-in form, or, for
// someone already signed in, the board. Before there is any account, it
// says how to make one instead.
func handleStaffLoginForm(accts *accounts.Store, sessions *staffSessions, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, ok, err := sessions.member(r.Context(), byPerson)
		if err != nil {
			sessions.unavailable(w, r, err)
			return
		}
		if ok {
			http.Redirect(w, r, "/staff", http.StatusSeeOther)
			return
		}
		some, err := accts.Any(r.Context())
		if err != nil {
			sessions.unavailable(w, r, err)
			return
		}
		if !some {
			page := views.StaffOff{Assets: pageAssets(), Stylesheet: staffStylesheet(), NoAccounts: true}
			render(w, r, log, http.StatusOK, views.StaffOffPage(page))
			return
		}
		renderLogin(w, r, log, http.StatusOK, "")
	})
}

// loginName is the account name an attempt names, as the limits count it:
// the form's name, trimmed and in lower case, or, when it is blank, the
// bootstrap account's name (accounts.BootstrapName), so that a demo signs
// in with STAFF_PASSWORD alone. It is cut short so that a made-up name
// cannot make a limit's key long.
func loginName(form string) string {
	name := strings.ToLower(strings.TrimSpace(form))
	if name == "" {
		return accounts.BootstrapName
	}
	if len(name) > 64 {
		name = strings.ToValidUTF8(name[:64], "")
	}
	return name
}

// wrongCredentials is what every refused sign-in says: a wrong password and
// a name that no account has are one answer, so that it tells nobody which
// names exist.
const wrongCredentials = "That name and password do not match a staff account."

// handleStaffLogin serves POST /staff/login.
//
// Attempts are limited before the password is checked, so that parallel
// guesses are counted as surely as serial ones. An attempt from a browser
// with a valid device cookie for the name it gives (one that signed in as
// that account before) spends that browser's own allowance; any other
// spends both its client address's and the name's, whether or not an
// account has that name; the name's is given back when the password is
// right, so that it counts wrong guesses alone. The address is the one
// internal/clientaddr works out: the connection's own, unless it comes from
// a trusted proxy (TRUSTED_PROXIES), whose X-Forwarded-For is then
// believed. From anyone else that header is whatever the client wants it
// to be, and a limit keyed by it would limit nobody.
//
// A name that no account has costs the same argon2id run as a wrong
// password and gets the same answer (accounts.Store.Authenticate). Success
// starts a session under a new token and gives the browser a new device
// cookie for the name.
func handleStaffLogin(accts *accounts.Store, sessions *staffSessions, devices deviceCookies, limits loginLimits, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client := clientaddr.Key(r)
		if err := readForm(w, r); err != nil {
			renderLogin(w, r, log, http.StatusBadRequest, "The form could not be read. Please try again.")
			return
		}
		name := loginName(r.PostForm.Get("name"))
		nonce, known := devices.nonce(r, name)
		refuse := func(from string, wait time.Duration) {
			seconds := int(math.Ceil(wait.Seconds()))
			log.Warn("staff sign-in rate limited", "client", client, "limit", from, "known_browser", known)
			w.Header().Set("Retry-After", strconv.Itoa(seconds))
			renderLogin(w, r, log, http.StatusTooManyRequests,
				fmt.Sprintf("Too many attempts %s. Please wait %d seconds, then try again.", from, seconds))
		}
		if known {
			if ok, wait := limits.byDevice.Allow(nonce); !ok {
				refuse("from this browser", wait)
				return
			}
		} else {
			if ok, wait := limits.byAddress.Allow(client); !ok {
				refuse("from your address", wait)
				return
			}
			if ok, wait := limits.byAccount.Allow(name); !ok {
				refuse("for this name", wait)
				return
			}
		}
		a, err := accts.Authenticate(r.Context(), name, r.PostForm.Get("password"))
		switch {
		case errors.Is(err, accounts.ErrBadCredentials):
			log.Info("staff sign-in refused", "client", client, "known_browser", known)
			renderLogin(w, r, log, http.StatusUnauthorized, wrongCredentials)
			return
		case err != nil:
			sessions.unavailable(w, r, err)
			return
		}
		if !known {
			// Only wrong guesses count against a name: its owner signing in
			// from one machine after another must not lock it.
			limits.byAccount.GiveBack(name)
		}
		if err := sessions.signIn(r.Context(), a, r.UserAgent()); err != nil {
			sessions.unavailable(w, r, err)
			return
		}
		devices.issue(w, r, name)
		log.Info("staff signed in", "client", client, "account", a.Name, "known_browser", known)
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
		_, ok, err := sessions.member(r.Context(), byPerson)
		if err != nil {
			sessions.unavailable(w, r, err)
			return
		}
		if !ok {
			writeJSON(w, http.StatusUnauthorized, sessionState{LoginURL: "/staff/login"})
			return
		}
		writeJSON(w, http.StatusOK, sessionState{
			SignedIn:  true,
			ExpiresAt: sessions.expiresAt(r.Context()).UTC().Format(time.RFC3339),
		})
	})
}

// handleStaffOff answers every staff address when the server has no staff
// accounts to sign in with (StaffConfig.Accounts is nil): 404, with a page
// that says how to turn the staff side on.
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
