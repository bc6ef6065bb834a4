package web

import (
	"context"
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
// that signs in gets a cookie with a random nonce, signed, together with the
// account's name, with a key of the database's own (staff_secrets). Its
// later sign-in attempts as that account are limited by an allowance of
// their own, keyed by the nonce, instead of its address's and the
// account's: guesses from elsewhere at the same address (an office, a
// proxy), or at the same name from anywhere, use up those allowances, never
// this browser's. A guesser cannot make such a cookie without the key, and
// one who steals one gets one more allowance, as strict as any other, for
// one name.
type deviceCookies struct {
	key func(context.Context) ([]byte, error) // accounts.Store.DeviceKey
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

// issue sets a new device cookie for the account name on the response:
// only the sign-in form ever receives it, scripts cannot read it, and no
// other site's page makes the browser send it. Without the key (the
// database is in trouble), the browser simply stays unknown.
func (d deviceCookies) issue(w http.ResponseWriter, r *http.Request, name string) {
	key, err := d.key(r.Context())
	if err != nil {
		return
	}
	nonce := rand.Text()
	http.SetCookie(w, &http.Cookie{
		Name:     deviceCookieName,
		Value:    nonce + "." + sign(key, name, nonce),
		Path:     "/staff/login",
		MaxAge:   int(deviceLifetime.Seconds()),
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
		Secure:   r.TLS != nil || d.alwaysSecure,
	})
}

// nonce returns the nonce of the request's device cookie, if it has one
// signed with the key for the account name. A cookie that is malformed,
// forged, or signed for another name counts as none.
func (d deviceCookies) nonce(r *http.Request, name string) (string, bool) {
	c, err := r.Cookie(deviceCookieName)
	if err != nil {
		return "", false
	}
	key, err := d.key(r.Context())
	if err != nil {
		return "", false
	}
	nonce, signature, ok := strings.Cut(c.Value, ".")
	if !ok || nonce == "" || !hmac.Equal([]byte(signature), []byte(sign(key, name, nonce))) {
		return "", false
	}
	return nonce, true
}

// sign is the signature of nonce for the account name: their HMAC-SHA256
// under the device key.
func sign(key []byte, name, nonce string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(deviceCookieName + ":" + name + ":" + nonce))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
