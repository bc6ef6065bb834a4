package clientaddr

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func mustProxies(t testing.TB, list string) Proxies {
	t.Helper()
	p, err := ParseProxies(list)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestClient(t *testing.T) {
	t.Parallel()
	proxies := mustProxies(t, "127.0.0.1/32, 10.0.0.0/8, 2001:db8:aaaa::/48")
	tests := []struct {
		name string
		peer string
		xff  []string
		want string
	}{
		{"a peer that is no proxy is the client", "192.0.2.7", nil, "192.0.2.7"},
		{"a peer that is no proxy cannot forge a header", "192.0.2.7", []string{"203.0.113.9"}, "192.0.2.7"},
		{"a proxy without a header is its own client", "10.1.2.3", nil, "10.1.2.3"},
		{"a proxy with an empty header is its own client", "10.1.2.3", []string{""}, "10.1.2.3"},
		{"a proxy with a header of commas is its own client", "10.1.2.3", []string{" , ,"}, "10.1.2.3"},
		{"one hop through a proxy", "127.0.0.1", []string{"203.0.113.9"}, "203.0.113.9"},
		{"the rightmost untrusted entry wins over what the client wrote", "127.0.0.1", []string{"198.51.100.1, 203.0.113.9"}, "203.0.113.9"},
		{"trusted hops are skipped", "127.0.0.1", []string{"198.51.100.1, 203.0.113.9, 10.0.0.5, 10.9.9.9"}, "203.0.113.9"},
		{"several field lines read as one list, the last line rightmost", "127.0.0.1", []string{"198.51.100.1", "203.0.113.9, 10.0.0.5"}, "203.0.113.9"},
		{"spaces and tabs around entries", "127.0.0.1", []string{"  198.51.100.1 ,\t203.0.113.9\t"}, "203.0.113.9"},
		{"empty elements are ignored", "127.0.0.1", []string{"203.0.113.9,,  ,"}, "203.0.113.9"},
		{"an entry with a port", "127.0.0.1", []string{"203.0.113.9:4711"}, "203.0.113.9"},
		{"IPv6 plain", "127.0.0.1", []string{"2001:db8:1:2::7"}, "2001:db8:1:2::7"},
		{"IPv6 in brackets", "127.0.0.1", []string{"[2001:db8:1:2::7]"}, "2001:db8:1:2::7"},
		{"IPv6 in brackets with a port", "127.0.0.1", []string{"[2001:db8:1:2::7]:443"}, "2001:db8:1:2::7"},
		{"IPv6 with a zone loses it", "127.0.0.1", []string{"fe80::1%eth0"}, "fe80::1"},
		{"IPv4 written in IPv6 is IPv4", "127.0.0.1", []string{"::ffff:203.0.113.9"}, "203.0.113.9"},
		{"an IPv6 proxy is trusted too", "2001:db8:aaaa:1::1", []string{"203.0.113.9, 2001:db8:aaaa:2::2"}, "203.0.113.9"},
		{"a mapped peer is its IPv4 self", "::ffff:127.0.0.1", []string{"203.0.113.9"}, "203.0.113.9"},
		{"a malformed rightmost entry leaves the proxy as the client", "127.0.0.1", []string{"203.0.113.9, unknown"}, "127.0.0.1"},
		{"a malformed entry stops the walk at the last trusted hop", "127.0.0.1", []string{"203.0.113.9, garbage, 10.0.0.5"}, "10.0.0.5"},
		{"a malformed entry left of the client does not matter", "127.0.0.1", []string{"garbage, 203.0.113.9"}, "203.0.113.9"},
		{"brackets around IPv4 are malformed", "127.0.0.1", []string{"[203.0.113.9]"}, "127.0.0.1"},
		{"an unclosed bracket is malformed", "127.0.0.1", []string{"[2001:db8::1"}, "127.0.0.1"},
		{"a hostname is malformed", "127.0.0.1", []string{"example.com"}, "127.0.0.1"},
		{"only trusted hops yield the leftmost", "127.0.0.1", []string{"10.0.0.1, 10.0.0.2"}, "10.0.0.1"},
		{"many hops", "127.0.0.1", []string{strings.Repeat("198.51.100.1, ", 500) + "203.0.113.9" + strings.Repeat(", 10.0.0.1", 500)}, "203.0.113.9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := proxies.Client(netip.MustParseAddr(tt.peer), tt.xff)
			if got != netip.MustParseAddr(tt.want) {
				t.Errorf("Client(%s, %q) = %s, want %s", tt.peer, tt.xff, got, tt.want)
			}
		})
	}
}

func TestNoProxiesTrustsNoHeader(t *testing.T) {
	t.Parallel()
	var none Proxies
	if got := none.Client(netip.MustParseAddr("127.0.0.1"), []string{"203.0.113.9"}); got != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("with no trusted proxies the client is %s, want the peer 127.0.0.1", got)
	}
}

func TestParseProxies(t *testing.T) {
	t.Parallel()
	p := mustProxies(t, " 10.0.0.0/8 ,192.0.2.1, ::ffff:198.51.100.0/120, 2001:db8::/32,")
	for _, tt := range []struct {
		addr string
		want bool
	}{
		{"10.255.0.1", true},
		{"11.0.0.1", false},
		{"192.0.2.1", true},
		{"192.0.2.2", false},
		{"198.51.100.200", true},
		{"::ffff:10.0.0.1", true},
		{"2001:db8:ffff::1", true},
		{"2001:db9::1", false},
	} {
		if got := p.Trusts(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("Trusts(%s) = %v, want %v", tt.addr, got, tt.want)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "nonsense", "10.0.0.1/8/8", "fe80::1%eth0", "::ffff:0.0.0.0/90"} {
		if _, err := ParseProxies(bad); err == nil {
			t.Errorf("ParseProxies(%q) accepted it", bad)
		}
	}
	if p, err := ParseProxies(""); err != nil || p.Len() != 0 {
		t.Errorf("ParseProxies(\"\") = %d prefixes, %v; want none", p.Len(), err)
	}
}

func TestKeyOf(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ addr, want string }{
		{"192.0.2.7", "192.0.2.7"},
		{"::ffff:192.0.2.7", "192.0.2.7"},
		{"2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"},
		{"2001:db8:1:2::1", "2001:db8:1:2::/64"},
		{"fe80::1%eth0", "fe80::/64"},
	} {
		if got := KeyOf(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("KeyOf(%s) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}

func TestMiddlewarePutsTheClientInTheContext(t *testing.T) {
	t.Parallel()
	proxies := mustProxies(t, "127.0.0.1/32")
	var got, key, text string
	h := Middleware(proxies)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, key, text = From(r).String(), Key(r), String(r)
	}))
	for _, tt := range []struct {
		name, remote, xff, want, wantKey string
	}{
		{"through the trusted proxy", "127.0.0.1:5555", "2001:db8:1:2::9", "2001:db8:1:2::9", "2001:db8:1:2::/64"},
		{"from an untrusted peer", "127.0.0.2:5555", "2001:db8:1:2::9", "127.0.0.2", "127.0.0.2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.remote
			r.Header.Set("X-Forwarded-For", tt.xff)
			h.ServeHTTP(httptest.NewRecorder(), r)
			if got != tt.want || text != tt.want || key != tt.wantKey {
				t.Errorf("From = %s, String = %s, Key = %s; want %s, %s, %s", got, text, key, tt.want, tt.want, tt.wantKey)
			}
		})
	}
	t.Run("without the middleware the client is the peer", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = "[2001:db8::5]:80"
		r.Header.Set("X-Forwarded-For", "203.0.113.9")
		if got, want := From(r), netip.MustParseAddr("2001:db8::5"); got != want {
			t.Errorf("From = %s, want %s", got, want)
		}
	})
	t.Run("a peer that is no IP address is its own key", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = "@"
		if got := Key(r); got != "@" {
			t.Errorf("Key = %q, want the RemoteAddr %q", got, "@")
		}
	})
}

// FuzzClient checks what holds for any header: the answer is a valid
// address; an untrusted peer is always the answer; and behind a trusted
// peer it is the peer or an address that the header holds.
func FuzzClient(f *testing.F) {
	for _, seed := range []string{
		"", ",", " , ", "203.0.113.9", "198.51.100.1, 203.0.113.9, 10.0.0.5",
		"[2001:db8::1]:443", "2001:db8::1", "fe80::1%eth0", "unknown", "\x00", "\r\n",
		"203.0.113.9\r\nX-Evil: 1", "\xff\xfe", "[", "]:80", "1.2.3.4:99999", "::ffff:10.0.0.1",
	} {
		f.Add("127.0.0.1", seed)
		f.Add("192.0.2.7", seed)
	}
	proxies := mustProxies(f, "127.0.0.0/8, 10.0.0.0/8, ::1/128")
	f.Fuzz(func(t *testing.T, peerText, header string) {
		peer := PeerOf(peerText)
		if !peer.IsValid() {
			peer = netip.MustParseAddr("192.0.2.1")
		}
		got := proxies.Client(peer, []string{header})
		if !got.IsValid() {
			t.Fatalf("Client(%s, %q) = an invalid address", peer, header)
		}
		if !proxies.Trusts(peer) {
			if got != peer {
				t.Fatalf("an untrusted peer %s was replaced by %s from %q", peer, got, header)
			}
			return
		}
		if got == peer {
			return
		}
		found := false
		for entry := range strings.SplitSeq(header, ",") {
			if a, ok := parseEntry(strings.TrimSpace(entry)); ok && a == got {
				found = true
			}
		}
		if !found {
			t.Fatalf("Client(%s, %q) = %s, which the header does not hold", peer, header, got)
		}
	})
}
