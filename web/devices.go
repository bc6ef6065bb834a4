package web

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/ordertracker/ordertracker/internal/accounts"
	views "github.com/ordertracker/ordertracker/templ"
)

// handleStaffDevices serves GET /staff/devices: where the signed-in
// account is signed in, this session marked, with the button that signs
// them all out. It lists the account's own sessions and nobody else's.
func handleStaffDevices(accts *accounts.Store, sessions *staffSessions, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := staffMember(r.Context())
		list, err := accts.Sessions(r.Context(), a.ID)
		if err != nil {
			errorPage(w, r, log, err)
			return
		}
		this := sessions.signInID(r.Context())
		p := views.StaffDevices{Assets: pageAssets(), Stylesheet: staffStylesheet(), Member: a.Name}
		for _, s := range list {
			p.Devices = append(p.Devices, views.StaffDevice{
				UserAgent: s.UserAgent, SignedInAt: s.SignedInAt, LastSeen: s.LastSeen, This: s.ID == this,
			})
		}
		render(w, r, log, http.StatusOK, views.StaffDevicesPage(p))
	})
}

// handleStaffSignOutEverywhere serves POST /staff/devices/sign-out: every
// session of the signed-in account ends, this one too, and so do their
// open streams, at once in this process and within a check of the session
// watch in the others. Like every POST, it must come from this site
// (cross-origin protection in NewHandler).
func handleStaffSignOutEverywhere(accts *accounts.Store, sessions *staffSessions, streams sessionStreams) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := staffMember(r.Context())
		ended, err := accts.EndSessions(r.Context(), a.ID)
		if err != nil {
			sessions.unavailable(w, r, err)
			return
		}
		for _, id := range ended {
			sessions.members.forget(id)
		}
		token, err := sessions.signOut(r.Context())
		if err != nil {
			sessions.unavailable(w, r, err)
			return
		}
		streams.EndOwner(token)
		// The other sessions' streams in this process: the watch would find
		// them ended within a check; this finds them now. The check reads
		// each session afresh, under a context that holds none (the
		// request's holds this one's, which Load would return instead).
		ctx, cancel := context.WithTimeout(context.Background(), sessionReadTimeout)
		defer cancel()
		sessions.endEnded(ctx, streams)
		http.Redirect(w, r, "/staff/login", http.StatusSeeOther)
	})
}

// sessionReadTimeout bounds the reads of a check of the sessions made for a
// request.
const sessionReadTimeout = 5 * time.Second
