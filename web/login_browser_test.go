package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
)

// typePassword opens the sign-in form in tb and types the app's password,
// without sending it yet.
func (a *staffApp) typePassword(t *testing.T, tb *tab) {
	t.Helper()
	tb.do(t,
		chromedp.Navigate(a.server.URL+"/staff/login"),
		chromedp.WaitVisible(chromedp.ID("password")),
		chromedp.SendKeys(chromedp.ID("password"), a.password),
	)
}

// submitSignIn sends the sign-in form of tb.
func submitSignIn(t *testing.T, tb *tab) {
	t.Helper()
	tb.do(t, chromedp.Click(chromedp.CSS(`.staff-login button[type="submit"]`)))
}

// guessing makes wrong sign-in attempts from this machine's loopback
// address, one after another, until stop is called, which returns how many
// of them were answered 429; the test's end stops it too.
func (a *staffApp) guessing(t *testing.T) (stop func() (limited int)) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	limited := 0
	wg.Go(func() {
		client := a.server.Client()
		for ctx.Err() == nil {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.server.URL+"/staff/login",
				strings.NewReader(url.Values{"password": {"guess"}}.Encode()))
			if err != nil {
				return
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := client.Do(req)
			if err != nil {
				continue // cancelled
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusTooManyRequests {
				limited++
			}
		}
	})
	stop = sync.OnceValue(func() int {
		cancel()
		wg.Wait()
		return limited
	})
	t.Cleanup(func() { stop() })
	return stop
}

// A browser that signed in before keeps signing in while another client at
// the same address (an office behind one router) guesses and is limited.
func TestBrowserKnownBrowserSignsInWhileAnotherGuesses(t *testing.T) {
	t.Parallel()
	logs := &lockedBuffer{}
	a := newStaffApp(t, staffOptions{log: newTextLog(logs)})

	// The browser signed in yesterday and signed out: it keeps its device
	// cookie, and has no session.
	known := newTab(t, newBrowser(t), true)
	// Signing out ends the board's stream at once; its script may see
	// the 401 of a reconnect before the sign-in page replaces it.
	known.expect("status of 401")
	a.typePassword(t, known)
	submitSignIn(t, known)
	// Waits that ask the page, not chromedp's queries of nodes, which can
	// name a node of the page before the navigation and fail.
	known.waitFor(t, "the board is live", jsBoardConnection+` === 'live'`)
	known.do(t, chromedp.Click(chromedp.CSS(`.staff-signout button[type="submit"]`)))
	known.waitFor(t, "the browser is signed out", jsOnSignInPage)
	a.typePassword(t, known)

	// Someone else at the same address (the browser and this test both
	// connect from 127.0.0.1) guesses until the address is limited, and
	// goes on guessing, taking every attempt the address earns back.
	a.guessUntilLimited(t, call{})
	stop := a.guessing(t)
	submitSignIn(t, known)
	known.waitFor(t, "the known browser reaches the board", `document.getElementById('staff-board') !== null`)
	limited := stop()

	if got := eval[string](t, known, `location.pathname`); got != "/staff" {
		t.Errorf("the known browser is at %s, want /staff", got)
	}
	if limited == 0 {
		t.Error("the guesser was never limited while the browser signed in; the test proves nothing")
	}
	// The sign-in was let through by the browser's own allowance, not by
	// an attempt the address earned back.
	signedIn := 0
	for line := range strings.Lines(logs.String()) {
		if strings.Contains(line, `msg="staff signed in"`) {
			signedIn++
			if want := signedIn == 2; strings.Contains(line, "known_browser=true") != want {
				t.Errorf("sign-in %d logged %q, want known_browser=%v", signedIn, line, want)
			}
		}
	}
	if signedIn != 2 {
		t.Errorf("%d sign-ins logged, want 2", signedIn)
	}
}
