package web

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"

	"github.com/ordertracker/ordertracker/internal/accounts"
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
	// streams and streamsOverTLS are manager and overTLS reading through a
	// cachedStore, for the requests of staff event streams alone.
	streams, streamsOverTLS *scs.SessionManager
	// alwaysSecure marks the cookie Secure on every response, for a site
	// whose TLS ends at a proxy in front of this server.
	alwaysSecure bool
	// accounts are the staff's accounts and their signed-in sessions: a
	// session is signed in while its row there lasts.
	accounts *accounts.Store
	// members remembers, for a moment, whose sessions the event streams
	// connect with (see memberCache).
	members *memberCache
	// streamUnavailable answers an event stream whose session cannot be
	// read now.
	streamUnavailable func(http.ResponseWriter, *http.Request, error)
	log               *slog.Logger
}

// Session keys.
const (
	sessionAccount = "account" // int64: the id of the staff account signed in
	sessionID      = "signin"  // string: the id of the sign-in's row in staff_sessions
	sessionFlash   = "flash"   // string: what the board says once, after a move
)

// defaultSessionLifetime is how long a staff sign-in lasts when the
// configuration does not say.
const defaultSessionLifetime = 12 * time.Hour

func newStaffSessions(cfg StaffConfig, streamUnavailable func(http.ResponseWriter, *http.Request, error), log *slog.Logger) *staffSessions {
	m := scs.New()
	store := cfg.Sessions
	if store == nil {
		store = memstore.NewWithCleanupInterval(0)
	}
	check := cmp.Or(cfg.SessionCheck, defaultSessionCheck)
	cached := newCachedStore(store, check)
	m.Store = cached.uncached()
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
	s := &staffSessions{
		manager: m, alwaysSecure: cfg.SecureCookie, accounts: cfg.Accounts, members: newMemberCache(cfg.Accounts, check),
		streamUnavailable: streamUnavailable, log: log,
	}
	m.ErrorFunc = s.unavailable
	overTLS := *m
	overTLS.Cookie.Secure = true
	s.overTLS = &overTLS
	streams, streamsOverTLS := *m, overTLS
	streams.Store, streamsOverTLS.Store = cached, cached
	s.streams, s.streamsOverTLS = &streams, &streamsOverTLS
	return s
}

// loadAndSave loads the request's session before next runs, and saves it,
// with a fresh cookie, if next changed it, just before the response's
// headers go out. The cookie is Secure when the request came over TLS or
// the configuration says TLS ends in front of us.
//
// A staff event stream's session is read through a cache (cachedStore), so
// that boards reconnecting all at once after a restart cost a query per
// session, not per board.
func (s *staffSessions) loadAndSave(next http.Handler) http.Handler {
	plain, secure := s.manager.LoadAndSave(next), s.overTLS.LoadAndSave(next)
	streamPlain, streamSecure := s.streams.LoadAndSave(next), s.streamsOverTLS.LoadAndSave(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stream := r.Method == http.MethodGet && r.URL.Path == staffEventsPath
		switch tls := r.TLS != nil || s.alwaysSecure; {
		case stream && tls:
			streamSecure.ServeHTTP(w, r)
		case stream:
			streamPlain.ServeHTTP(w, r)
		case tls:
			secure.ServeHTTP(w, r)
		default:
			plain.ServeHTTP(w, r)
		}
	})
}

// staffEventsPath is the address of the staff event stream.
const staffEventsPath = "/staff/events"

// A use is why a request asks whose session it has.
type use int

const (
	// byPerson: a page or a move, which marks the session as seen.
	byPerson use = iota
	// byStream: an event stream connecting, whose answer may come from a
	// moment ago (memberCache), as its session's does.
	byStream
)

// member returns the staff account the request's session is signed in
// with, and false when it is signed in with none: never signed in, signed
// out here or everywhere, or ended by a new password or the account's
// removal. An error means the accounts could not be read.
func (s *staffSessions) member(ctx context.Context, u use) (accounts.Account, bool, error) {
	id := s.manager.GetString(ctx, sessionID)
	if id == "" {
		return accounts.Account{}, false, nil
	}
	var a accounts.Account
	var err error
	if u == byStream {
		a, err = s.members.get(ctx, id)
	} else {
		a, err = s.accounts.SessionAccount(ctx, id, true)
	}
	switch {
	case errors.Is(err, accounts.ErrNoSession):
		return accounts.Account{}, false, nil
	case err != nil:
		return accounts.Account{}, false, err
	}
	// The row names the account; the session must name the same one.
	if a.ID != s.manager.GetInt64(ctx, sessionAccount) {
		return accounts.Account{}, false, nil
	}
	return a, true, nil
}

// signIn signs the session in with the account, under a new token: a
// token that anyone saw before sign-in (planted by an attacker, say) is
// worth nothing after it. The sign-in gets its row in staff_sessions, which
// the account's list of devices shows, with the browser's User-Agent.
func (s *staffSessions) signIn(ctx context.Context, a accounts.Account, userAgent string) error {
	// A browser that signs in again, as anyone, leaves no sign-in behind in
	// the list of devices.
	if old := s.manager.GetString(ctx, sessionID); old != "" {
		if err := s.accounts.EndSession(ctx, old); err != nil {
			return err
		}
		s.members.forget(old)
	}
	if err := s.manager.RenewToken(ctx); err != nil {
		return err
	}
	id, err := s.accounts.StartSession(ctx, a.ID, userAgent, time.Now().Add(s.manager.Lifetime))
	if err != nil {
		return err
	}
	s.manager.Put(ctx, sessionAccount, a.ID)
	s.manager.Put(ctx, sessionID, id)
	return nil
}

// signOut ends the sign-in and deletes the session from the store, so its
// cookie, wherever a copy of it is, signs nobody in any more. It returns
// the session's token, which named the streams the session opened.
func (s *staffSessions) signOut(ctx context.Context) (token string, err error) {
	if id := s.manager.GetString(ctx, sessionID); id != "" {
		if err := s.accounts.EndSession(ctx, id); err != nil {
			return "", err
		}
		s.members.forget(id)
	}
	token = s.manager.Token(ctx)
	return token, s.manager.Destroy(ctx)
}

// signInID is the id of the session's sign-in, which the list of devices
// marks as this one.
func (s *staffSessions) signInID(ctx context.Context) string {
	return s.manager.GetString(ctx, sessionID)
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
// and has not expired, reading it, and its sign-in, afresh (ctx must hold
// no session of its own, or Load would return that one): a sign-out
// everywhere, a new password or the account's removal ends it as surely as
// a sign-out. An error means the store could not say.
func (s *staffSessions) live(ctx context.Context, token string) (bool, error) {
	// ctx holds no session of this manager's, so Load reads the store.
	loaded, err := s.manager.Load(ctx, token)
	if err != nil {
		return false, err
	}
	if !time.Now().Before(s.expiresAt(loaded)) {
		return false, nil
	}
	id := s.manager.GetString(loaded, sessionID)
	if id == "" {
		return false, nil
	}
	a, err := s.accounts.SessionAccount(ctx, id, false)
	switch {
	case errors.Is(err, accounts.ErrNoSession):
		s.members.forget(id)
		return false, nil
	case err != nil:
		return false, err
	}
	return a.ID == s.manager.GetInt64(loaded, sessionAccount), nil
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
