package web

import (
	"context"
	"crypto/hmac"
	"log/slog"
	"net/http"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"
)

// staffSessions keeps who is signed in on the staff side. Sessions live on
// the server (github.com/alexedwards/scs, in PostgreSQL in production); the
// browser holds only a random token, in a cookie that scripts cannot read
// (HttpOnly), that other sites' pages do not send along with their
// requests (SameSite=Lax), and that only the staff pages receive (Path=/staff).
type staffSessions struct {
	manager *scs.SessionManager
	// overTLS is manager with one difference: its cookie is Secure. A copy of
	// a SessionManager shares its store and its context key, so either one
	// reads what the other loaded; only the cookie they write differs.
	overTLS *scs.SessionManager
	// alwaysSecure marks the cookie Secure on every response, for a site
	// whose TLS ends at a proxy in front of this server.
	alwaysSecure bool
	// keys are the current password's (see staffKeys): a session signed in
	// with another password is not signed in.
	keys func() staffKeys
	// streamUnavailable answers an event stream whose session cannot be
	// read now.
	streamUnavailable func(http.ResponseWriter, *http.Request, error)
	log               *slog.Logger
}

// Session keys.
const (
	sessionStaff       = "staff"       // bool: signed in with the staff password
	sessionFingerprint = "fingerprint" // []byte: staffKeys.fingerprint of that password
	sessionFlash       = "flash"       // string: what the board says once, after a move
)

// defaultSessionLifetime is how long a staff sign-in lasts when the
// configuration does not say.
const defaultSessionLifetime = 12 * time.Hour

func newStaffSessions(cfg StaffConfig, keys func() staffKeys, streamUnavailable func(http.ResponseWriter, *http.Request, error), log *slog.Logger) *staffSessions {
	m := scs.New()
	m.Store = cfg.Sessions
	if m.Store == nil {
		m.Store = memstore.NewWithCleanupInterval(0)
	}
	m.Lifetime = cfg.SessionLifetime
	if m.Lifetime <= 0 {
		m.Lifetime = defaultSessionLifetime
	}
	// The store keeps a hash of each token, so that a copy of the sessions
	// table signs nobody in.
	m.HashTokenInStore = true
	m.Cookie.Name = "staff_session"
	m.Cookie.Path = "/staff"
	m.Cookie.HttpOnly = true
	m.Cookie.SameSite = http.SameSiteLaxMode
	s := &staffSessions{manager: m, alwaysSecure: cfg.SecureCookie, keys: keys, streamUnavailable: streamUnavailable, log: log}
	m.ErrorFunc = s.unavailable
	overTLS := *m
	overTLS.Cookie.Secure = true
	s.overTLS = &overTLS
	return s
}

// loadAndSave loads the request's session before next runs, and saves it,
// with a fresh cookie, if next changed it, just before the response's
// headers go out. The cookie is Secure when the request came over TLS or
// the configuration says TLS ends in front of us.
func (s *staffSessions) loadAndSave(next http.Handler) http.Handler {
	plain, secure := s.manager.LoadAndSave(next), s.overTLS.LoadAndSave(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil || s.alwaysSecure {
			secure.ServeHTTP(w, r)
			return
		}
		plain.ServeHTTP(w, r)
	})
}

// signedIn reports whether the session belongs to someone who gave the
// staff password: the password of now, not one it had before a restart.
func (s *staffSessions) signedIn(ctx context.Context) bool {
	return s.manager.GetBool(ctx, sessionStaff) &&
		hmac.Equal(s.manager.GetBytes(ctx, sessionFingerprint), s.keys().fingerprint)
}

// signIn marks the session signed in, under a new token: a token that
// anyone saw before sign-in (planted by an attacker, say) is worth nothing
// after it.
func (s *staffSessions) signIn(ctx context.Context) error {
	if err := s.manager.RenewToken(ctx); err != nil {
		return err
	}
	s.manager.Put(ctx, sessionStaff, true)
	s.manager.Put(ctx, sessionFingerprint, s.keys().fingerprint)
	return nil
}

// signOut deletes the session from the store, so its cookie, wherever a
// copy of it is, signs nobody in any more. It returns the session's token,
// which named the streams the session opened.
func (s *staffSessions) signOut(ctx context.Context) (token string, err error) {
	token = s.manager.Token(ctx)
	return token, s.manager.Destroy(ctx)
}

// token is the session's token, which names the streams the session opens
// (see sessionwatch.go). It is a credential: never log it.
func (s *staffSessions) token(ctx context.Context) string {
	return s.manager.Token(ctx)
}

// expiresAt is when the session ends by itself.
func (s *staffSessions) expiresAt(ctx context.Context) time.Time {
	return s.manager.Deadline(ctx)
}

// live reports whether the session with the given token is still signed in
// with the current password and has not expired, reading it from the store
// afresh. An error means the store could not say.
func (s *staffSessions) live(ctx context.Context, token string) (bool, error) {
	// ctx holds no session of this manager's, so Load reads the store.
	loaded, err := s.manager.Load(ctx, token)
	if err != nil {
		return false, err
	}
	return s.signedIn(loaded) && time.Now().Before(s.expiresAt(loaded)), nil
}

// flash leaves a message for the next page of the board to show.
func (s *staffSessions) flash(ctx context.Context, message string) {
	s.manager.Put(ctx, sessionFlash, message)
}

// popFlash takes the message left by flash, if any.
func (s *staffSessions) popFlash(ctx context.Context) string {
	return s.manager.PopString(ctx, sessionFlash)
}

// unavailable answers a request whose session could not be read or saved,
// which means the database is in trouble. An event stream gets the 200
// that tells EventSource to come back later (any other status would make it
// give up for good); everything else gets a 503.
func (s *staffSessions) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	if wantsEventStream(r) {
		s.streamUnavailable(w, r, err)
		return
	}
	s.log.Warn("staff session unavailable", "err", err)
	http.Error(w, "The staff side cannot reach its sessions just now. Please try again in a moment.", http.StatusServiceUnavailable)
}

// wantsEventStream reports whether r comes from an EventSource, which
// always asks for text/event-stream.
func wantsEventStream(r *http.Request) bool {
	return r.Header.Get("Accept") == "text/event-stream"
}
