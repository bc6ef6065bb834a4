package main

import (
	"strings"
	"testing"
	"time"

	"github.com/ordertracker/ordertracker/internal/ratelimit"
)

func TestConnectionLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		vars      map[string]string
		fileLimit int
		streams   int
		conns     int
		perClient int
		err       string // a word of the error; empty: none
	}{
		{"the defaults share 20,000 files", nil, 20000, 18800, 1000, 64, ""},
		{"a small limit still leaves room", nil, 1024, 760, 64, 64, ""},
		{"no limit to speak of", nil, 0, 100_000 - 4096, 4096, 64, ""},
		{"MAX_STREAMS set leaves the rest to connections", map[string]string{"MAX_STREAMS": "19500"}, 20000, 19500, 300, 64, ""},
		{"MAX_CONNS set leaves the rest to streams", map[string]string{"MAX_CONNS": "200"}, 20000, 19600, 200, 64, ""},
		{"the per-client cap is at most MAX_CONNS", map[string]string{"MAX_CONNS": "50", "MAX_CONNS_PER_CLIENT": "100"}, 20000, 19750, 50, 50, ""},
		{"MAX_CONNS_PER_CLIENT set", map[string]string{"MAX_CONNS_PER_CLIENT": "8"}, 20000, 18800, 1000, 8, ""},
		{"both set and too many together", map[string]string{"MAX_STREAMS": "19000", "MAX_CONNS": "1000"}, 20000, 0, 0, 0, "open-file limit"},
		{"streams alone past the limit", map[string]string{"MAX_STREAMS": "19900"}, 20000, 0, 0, 0, "MAX_STREAMS=19900"},
		{"a bad MAX_CONNS", map[string]string{"MAX_CONNS": "lots"}, 20000, 0, 0, 0, "MAX_CONNS"},
		{"a bad MAX_CONNS_PER_CLIENT", map[string]string{"MAX_CONNS_PER_CLIENT": "0"}, 20000, 0, 0, 0, "MAX_CONNS_PER_CLIENT"},
		{"a bad MAX_STREAMS", map[string]string{"MAX_STREAMS": "-1"}, 20000, 0, 0, 0, "MAX_STREAMS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c config
			err := c.connectionLimits(env(tt.vars), tt.fileLimit)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one naming %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.maxStreams != tt.streams || c.maxConns != tt.conns || c.maxConnsPerClient != tt.perClient {
				t.Errorf("streams %d, conns %d, per client %d; want %d, %d, %d", c.maxStreams, c.maxConns, c.maxConnsPerClient, tt.streams, tt.conns, tt.perClient)
			}
			if tt.fileLimit > 0 && c.maxStreams+c.maxConns > tt.fileLimit-reservedFiles {
				t.Errorf("%d streams and %d connections leave fewer than %d of %d files", c.maxStreams, c.maxConns, reservedFiles, tt.fileLimit)
			}
		})
	}
}

func TestConfigReadsProxiesAndTheOrderLimit(t *testing.T) {
	t.Parallel()
	c, err := loadConfig(env(map[string]string{"TRUSTED_PROXIES": "127.0.0.1/32, 10.0.0.0/8", "ORDER_LIMIT": "5/min,burst=2"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.trustedProxies.Len() != 2 {
		t.Errorf("%d trusted prefixes, want 2", c.trustedProxies.Len())
	}
	if want := (ratelimit.Rate{Burst: 2, Every: 12 * time.Second}); c.orderLimit != want {
		t.Errorf("order limit %+v, want %+v", c.orderLimit, want)
	}
	c, err = loadConfig(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.trustedProxies.Len() != 0 || c.orderLimit != defaultOrderLimit {
		t.Errorf("defaults: %d trusted prefixes and order limit %v; want none and %v", c.trustedProxies.Len(), c.orderLimit, defaultOrderLimit)
	}
	_, err = loadConfig(env(map[string]string{"TRUSTED_PROXIES": "10.0.0.0/40", "ORDER_LIMIT": "lots"}))
	for _, name := range []string{"TRUSTED_PROXIES", "ORDER_LIMIT"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("bad values: error %v, want one naming %s", err, name)
		}
	}
}

func TestConfigReadsDemoControls(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		value string
		want  bool
		err   bool
	}{
		{"", false, false},
		{"true", true, false},
		{"false", false, false},
		{"1", true, false},
		{"yes please", false, true},
	} {
		t.Run("DEMO_CONTROLS="+tt.value, func(t *testing.T) {
			c, err := loadConfig(env(map[string]string{"DEMO_CONTROLS": tt.value}))
			if tt.err {
				if err == nil || !strings.Contains(err.Error(), "DEMO_CONTROLS") {
					t.Fatalf("error %v, want one naming DEMO_CONTROLS", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.demoControls != tt.want {
				t.Errorf("demo controls %v, want %v", c.demoControls, tt.want)
			}
		})
	}
}

func TestConfigRefusesAStaffPasswordTooShortWithoutRepeatingIt(t *testing.T) {
	t.Parallel()
	_, err := loadConfig(env(map[string]string{"STAFF_PASSWORD": "sesame"}))
	if err == nil || !strings.Contains(err.Error(), "STAFF_PASSWORD") {
		t.Fatalf("error %v, want one naming STAFF_PASSWORD", err)
	}
	if strings.Contains(err.Error(), "sesame") {
		t.Errorf("the error %q repeats the password", err)
	}
	if c, err := loadConfig(env(map[string]string{"STAFF_PASSWORD": "open sesame"})); err != nil || c.staffPassword != "open sesame" {
		t.Errorf("a good password: %v, %q", err, c.staffPassword)
	}
}
