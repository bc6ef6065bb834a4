package web

import (
	"context"
	"net/http"
	"time"
)

// A staff stream is owned by the session that opened it: the hub tags it
// with the session's token (ownedBySession, handleStaffEvents), and the stream ends when
// the session does, so that a copied cookie is worth nothing after
// sign-out, even for a stream that was already open. Sign-out in this
// process ends the session's streams at once (handleStaffLogout); the
// watch below catches every other way a session ends, within a check:
// sign-out in another process, expiry, a session deleted from the store,
// and a sign-in ended by signing out everywhere or by the account's removal
// or new password (from the command line, in no web process at all).

// sessionStreams is what the staff side asks of the hub about the streams
// that sessions own.
type sessionStreams interface {
	// Owners are the distinct owners of the streams open in this process.
	Owners() []string
	// EndOwner ends every open stream of owner cleanly; its browser
	// reconnects and, without a session, is refused.
	EndOwner(owner string)
}

// defaultSessionCheck is how often the watch checks the sessions of open
// staff streams when the configuration does not say.
const defaultSessionCheck = 2 * time.Second

// watch checks, every interval until ctx is done, the session of each open
// staff stream of this process, and ends the streams of every session that
// has ended.
func (s *staffSessions) watch(ctx context.Context, streams sessionStreams, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.endEnded(ctx, streams)
		}
	}
}

// endEnded reads each session that owns a stream, once, from the store, and
// ends the streams of those that have ended. A session that cannot be read
// keeps its streams: a database hiccup must not sign everyone out, and the
// next check will tell. It logs one line per check, whatever the number of
// sessions that could not be read, and never a token.
func (s *staffSessions) endEnded(ctx context.Context, streams sessionStreams) {
	var (
		unreadable int
		firstErr   error
		ended      int
	)
	for _, token := range streams.Owners() {
		live, err := s.live(ctx, token)
		switch {
		case err != nil:
			unreadable++
			if firstErr == nil {
				firstErr = err
			}
		case !live:
			streams.EndOwner(token)
			ended++
		}
	}
	if unreadable > 0 && ctx.Err() == nil {
		s.log.Warn("staff sessions unreadable: their streams stay open until a check can read them",
			"sessions", unreadable, "err", firstErr)
	}
	if ended > 0 {
		s.log.Info("staff streams ended with their sessions", "sessions", ended)
	}
}

// ownerKey is the context key of the token of the session that opens a
// staff stream.
type ownerKey struct{}

// ownedBySession leaves the session's token in the request's context, for
// handleStaffEvents to tag its stream with.
func ownedBySession(sessions *staffSessions) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := context.WithValue(r.Context(), ownerKey{}, sessions.token(r.Context()))
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// streamOwner is the token that ownedBySession left in ctx: "" when there is
// none, and the stream then has no owner.
func streamOwner(ctx context.Context) string {
	owner, _ := ctx.Value(ownerKey{}).(string)
	return owner
}
