package web

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// signInThroughTheForm types the app's password into the sign-in form of tb
// and sends it.
func (a *staffApp) signInThroughTheForm(t *testing.T, tb *tab) {
	t.Helper()
	tb.do(t,
		chromedp.Navigate(a.server.URL+"/staff/login"),
		chromedp.WaitVisible(chromedp.ID("password")),
		chromedp.SendKeys(chromedp.ID("password"), a.password),
		chromedp.Click(chromedp.CSS(`.staff-login button[type="submit"]`)),
	)
}

// A browser that signed in before keeps signing in while someone at the
// same address (an office behind one router) guesses until the address is
// limited; a browser never seen before at that address is limited.
func TestBrowserKnownBrowserSignsInWhileAnotherGuesses(t *testing.T) {
	t.Parallel()
	a := newStaffApp(t, staffOptions{})

	known := newTab(t, newBrowser(t), true)
	// Signing out ends the board's stream at once; its script may see
	// the 401 of a reconnect before the sign-in page replaces it.
	known.expect("status of 401")
	a.signInThroughTheForm(t, known)
	known.do(t, chromedp.WaitVisible(chromedp.ID("staff-board")))
	known.do(t,
		chromedp.Click(chromedp.CSS(`.staff-signout button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("password")),
	)

	// Someone else at the same address guesses until it is limited. The
	// browsers connect from the same loopback address as this client.
	a.guessUntilLimited(t, call{})

	stranger := newTab(t, newBrowser(t), true)
	stranger.expect("status of 429")
	a.signInThroughTheForm(t, stranger)
	stranger.waitFor(t, "the new browser is told to wait",
		`document.body.textContent.includes('Too many attempts from your address')`)

	a.signInThroughTheForm(t, known)
	known.waitFor(t, "the known browser reaches the board", `document.getElementById('staff-board') !== null`)
	if got := eval[string](t, known, `location.pathname`); got != "/staff" {
		t.Errorf("the known browser is at %s, want /staff", got)
	}
}
