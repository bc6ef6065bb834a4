package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ordertracker/ordertracker/internal/accounts"
)

// guessUntilLimited makes wrong sign-in attempts as c until one is answered
// 429, and fails the test if that takes more than the burst allows.
func (a *staffApp) guessUntilLimited(t *testing.T, c call) {
	t.Helper()
	c.form = url.Values{"password": {"guess"}}
	for range loginBurst + 2 {
		switch r := a.send(t, http.MethodPost, "/staff/login", c); r.status {
		case http.StatusTooManyRequests:
			return
		case http.StatusUnauthorized:
		default:
			t.Fatalf("a wrong guess = %d, want 401 or 429", r.status)
		}
	}
	t.Fatalf("%d wrong guesses and still no 429", loginBurst+2)
}

// signInAs signs in with the right password as c and returns the answer.
func (a *staffApp) signInAs(t *testing.T, c call) reply {
	t.Helper()
	c.form = url.Values{"password": {a.password}}
	return a.send(t, http.MethodPost, "/staff/login", c)
}

func TestStaffKnownBrowserSignsInWhileItsAddressIsLimited(t *testing.T) {
	t.Parallel()
	logs := &lockedBuffer{}
	a := newStaffApp(t, staffOptions{log: newTextLog(logs)})
	const office = "127.0.4.1" // one address for everyone at the office

	// A browser at the office signed in yesterday, and has a device cookie.
	first := a.signInAs(t, call{from: office})
	if first.status != http.StatusSeeOther || first.device == nil {
		t.Fatalf("sign-in = %d, device cookie %v; want 303 and a device cookie", first.status, first.device)
	}
	device := first.device
	nonce, signature, _ := strings.Cut(device.Value, ".")
	// So did another browser, elsewhere, that comes to the office later.
	other := a.signInAs(t, call{from: "127.0.4.2"}).device

	// Someone else at the office guesses until the address is limited.
	a.guessUntilLimited(t, call{from: office})

	for _, c := range []struct {
		name   string
		device *http.Cookie
		want   int
	}{
		{"without a device cookie the right password is limited", nil, http.StatusTooManyRequests},
		{"a made-up device cookie counts as none", &http.Cookie{Name: deviceCookieName, Value: "AAAAAAAAAAAAAAAAAAAAAAAAAA.forged"}, http.StatusTooManyRequests},
		{"a device cookie with another nonce under its signature counts as none", &http.Cookie{Name: deviceCookieName, Value: "BBBBBBBBBBBBBBBBBBBBBBBBBB." + signature}, http.StatusTooManyRequests},
		{"a device cookie without its signature counts as none", &http.Cookie{Name: deviceCookieName, Value: nonce}, http.StatusTooManyRequests},
		{"a device cookie signed with another key counts as none", signedElsewhere(t), http.StatusTooManyRequests},
		{"the known browser signs in", device, http.StatusSeeOther},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := a.signInAs(t, call{from: office, device: c.device})
			if r.status != c.want {
				t.Errorf("the right password = %d, want %d; body: %.200s", r.status, c.want, r.body)
			}
			if got := r.session != nil; got != (c.want == http.StatusSeeOther) {
				t.Errorf("a session cookie: %v, want %v", got, !got)
			}
		})
	}

	t.Run("the known browser's allowance is as strict as an address's", func(t *testing.T) {
		a.guessUntilLimited(t, call{from: office, device: device})
		r := a.signInAs(t, call{from: office, device: device})
		if r.status != http.StatusTooManyRequests || !strings.Contains(r.body, "Too many attempts from this browser") {
			t.Errorf("the right password after guessing as the known browser = %d, want 429 that names the browser", r.status)
		}
		// Its guessing did not spend another known browser's allowance.
		if r := a.signInAs(t, call{from: office, device: other}); r.status != http.StatusSeeOther {
			t.Errorf("another known browser at the office = %d, want 303", r.status)
		}
	})

	t.Run("the logs hold neither nonce nor password", func(t *testing.T) {
		out := logs.String()
		if !strings.Contains(out, "staff sign-in rate limited") {
			t.Fatal("nothing was logged; the test proves nothing")
		}
		for _, secret := range []string{nonce, signature, a.password, device.Value} {
			if strings.Contains(out, secret) {
				t.Errorf("the log holds %q", secret)
			}
		}
	})
}

// deviceKey gives key as the device cookie key.
func deviceKey(key string) func(context.Context) ([]byte, error) {
	return func(context.Context) ([]byte, error) { return []byte(key), nil }
}

// signedElsewhere is a well-formed device cookie signed with a key that is
// not the app's.
func signedElsewhere(t *testing.T) *http.Cookie {
	t.Helper()
	rec := httptest.NewRecorder()
	deviceCookies{key: deviceKey("a key of another deployment")}.issue(rec, httptest.NewRequest(http.MethodPost, "/staff/login", nil), accounts.BootstrapName)
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 {
		t.Fatalf("issue set %d cookies, want 1", len(cookies))
	}
	return cookies[0]
}

func TestStaffDeviceCookie(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		opts   staffOptions
		secure bool
	}{
		{"over plain HTTP", staffOptions{}, false},
		{"served over TLS", staffOptions{tls: true}, true},
		{"behind a proxy that ends TLS", staffOptions{secureCookie: true}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			a := newStaffApp(t, c.opts)
			r := a.signInAs(t, call{})
			d := r.device
			if d == nil {
				t.Fatal("sign-in set no device cookie")
			}
			if d.Path != "/staff/login" || !d.HttpOnly || d.SameSite != http.SameSiteStrictMode || d.Secure != c.secure {
				t.Errorf("device cookie %s: want Path=/staff/login, HttpOnly, SameSite=Strict, Secure %v", d, c.secure)
			}
			if got, want := time.Duration(d.MaxAge)*time.Second, deviceLifetime; got != want {
				t.Errorf("device cookie lasts %s, want %s", got, want)
			}
			if nonce, _, _ := strings.Cut(d.Value, "."); len(nonce) < 26 {
				t.Errorf("device nonce %d characters long, want at least 26 (128 bits)", len(nonce))
			}
			// Every sign-in gives a new one.
			again := a.signInAs(t, call{device: d})
			if again.device == nil || again.device.Value == d.Value {
				t.Error("signing in again as a known browser kept the old device cookie")
			}
		})
	}
	t.Run("a wrong password gives none", func(t *testing.T) {
		t.Parallel()
		a := newStaffApp(t, staffOptions{})
		if r := a.send(t, http.MethodPost, "/staff/login", call{form: url.Values{"password": {"guess"}}}); r.device != nil {
			t.Error("a refused sign-in set a device cookie")
		}
	})
}

// TestStaffDeviceCookieIsForItsAccount: a browser known for one account is
// unknown to the others, so a member of staff cannot guess a colleague's
// password at their own browser's allowance.
func TestStaffDeviceCookieIsForItsAccount(t *testing.T) {
	t.Parallel()
	a := newStaffApp(t, staffOptions{sessionCheck: hour})
	a.addAccount(t, "ada", "ada's own password")
	device := a.signInAs(t, call{from: "127.0.5.1"}).device
	if device == nil {
		t.Fatal("sign-in set no device cookie")
	}
	a.guessUntilLimited(t, call{from: "127.0.5.1"})
	ada := url.Values{"name": {"ada"}, "password": {"ada's own password"}}
	if r := a.send(t, http.MethodPost, "/staff/login", call{form: ada, from: "127.0.5.1", device: device}); r.status != http.StatusTooManyRequests {
		t.Errorf("staff's device cookie signing in as ada at a limited address = %d, want 429: it counts as none", r.status)
	}
	if r := a.signInAs(t, call{from: "127.0.5.1", device: device}); r.status != http.StatusSeeOther {
		t.Errorf("staff's device cookie signing in as staff = %d, want 303", r.status)
	}
}

// FuzzDeviceCookieNonce holds that only a cookie issue made is accepted,
// whatever else a client sends.
func FuzzDeviceCookieNonce(f *testing.F) {
	d := deviceCookies{key: deviceKey("fuzz key")}
	key := []byte("fuzz key")
	for _, seed := range []string{"", ".", "a.b", "AAAA.", ".sig", "a\r\nb.c", "\x00.\x00", "\xff\xfe.x", sign(key, "staff", "n") + ".n", "n." + sign(key, "staff", "n") + "."} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, value string) {
		// As a client sends it, unchecked.
		req := httptest.NewRequest(http.MethodPost, "/staff/login", nil)
		req.Header.Set("Cookie", deviceCookieName+"="+value)
		nonce, ok := d.nonce(req, "staff")
		if !ok {
			return
		}
		if c, _ := req.Cookie(deviceCookieName); nonce == "" || c.Value != nonce+"."+sign(key, "staff", nonce) {
			t.Errorf("accepted %q as nonce %q", value, nonce)
		}
	})
}
