package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
	"time"
)

// Device cookies keep guessers from locking staff out, as OWASP's "Slow
// Down Online Guessing Attacks with Device Cookies" describes. A browser
// that signs in gets a cookie with a random nonce, signed with a key
// derived from the staff password. Its later sign-in attempts are limited
// by an allowance of its own, keyed by the nonce, instead of its address's:
// guesses from elsewhere at the same address (an office, a proxy) use up
// the address's allowance, never this browser's. A guesser cannot make
// such a cookie without the key, and one who steals one gets one more
// allowance, as strict as any other.
type deviceCookies struct {
	keys func() staffKeys // of which device is the key
	// alwaysSecure marks the cookie Secure on every response, as for the
	// session cookie.
	alwaysSecure bool
}

const (
	deviceCookieName = "staff_device"
	// deviceLifetime is how long a browser stays known after it last signed
	// in.
	deviceLifetime = 30 * 24 * time.Hour
)

// issue sets a new device cookie on the response: only the sign-in form
// ever receives it, scripts cannot read it, and no other site's page makes
// the browser send it.
func (d deviceCookies) issue(w http.ResponseWriter, r *http.Request) {
	nonce := rand.Text()
	http.SetCookie(w, &http.Cookie{
		Name:     deviceCookieName,
		Value:    nonce + "." + d.sign(nonce),
		Path:     "/staff/login",
		MaxAge:   int(deviceLifetime.Seconds()),
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
		Secure:   r.TLS != nil || d.alwaysSecure,
	})
}

// nonce returns the nonce of the request's device cookie, if it has one
// signed with the current key. A cookie that is malformed, forged, or
// signed under another password counts as none.
func (d deviceCookies) nonce(r *http.Request) (string, bool) {
	c, err := r.Cookie(deviceCookieName)
	if err != nil {
		return "", false
	}
	nonce, signature, ok := strings.Cut(c.Value, ".")
	if !ok || nonce == "" || !hmac.Equal([]byte(signature), []byte(d.sign(nonce))) {
		return "", false
	}
	return nonce, true
}

// sign is the signature of nonce: its HMAC-SHA256 under the device key.
func (d deviceCookies) sign(nonce string) string {
	m := hmac.New(sha256.New, d.keys().device)
	m.Write([]byte(deviceCookieName + ":" + nonce))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
