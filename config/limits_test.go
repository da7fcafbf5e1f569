package config_test

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/idtx/idtx/config"
)

func TestRateLimitAndMaxInFlight(t *testing.T) {
	cfg, p := parse(t, `
rate_limit: {rate: 6000/m}
max_in_flight: 64
services:
  - {name: s, scopes: {r: {}}}
clients:
  - {id: a, secret: x, services: ["*"]}
  - {id: b, secret: x, services: ["*"], rate_limit: {rate: 2.5/s, burst: 10}}
  - {id: c, secret: x, services: ["*"], rate_limit: {rate: unlimited}}
`)
	if len(p) > 0 {
		t.Fatal(p)
	}
	if cfg.MaxInFlight != 64 {
		t.Errorf("max_in_flight %d", cfg.MaxInFlight)
	}
	for _, tc := range []struct {
		r     *config.RateLimit
		rate  float64
		burst int
	}{
		{cfg.RateLimit, 100, 100},
		{cfg.Clients[1].RateLimit, 2.5, 10},
		{cfg.Clients[2].RateLimit, math.Inf(1), 1},
		{&config.RateLimit{Rate: "1/h"}, 1.0 / 3600, 1},
	} {
		got, err := tc.r.PerSecond()
		if err != nil || got != tc.rate || tc.r.BurstOrDefault() != tc.burst {
			t.Errorf("%+v: rate %v (%v), burst %d; want %v, %d", tc.r, got, err, tc.r.BurstOrDefault(), tc.rate, tc.burst)
		}
	}
	for _, size := range []int{-1, 1, 1_000_000} {
		cfg, p := parse(t, fmt.Sprintf("validation_cache_size: %d\nservices:\n  - {name: s, scopes: {r: {}}}\n", size))
		if len(p) > 0 || cfg.ValidationCacheSize != size {
			t.Errorf("validation_cache_size %d: got %d, problems %q", size, cfg.ValidationCacheSize, p)
		}
	}
	cfg, p = parse(t, "services:\n  - {name: s, scopes: {r: {}}}\n")
	if len(p) > 0 || cfg.MaxInFlight != config.DefaultMaxInFlight || cfg.RateLimit != nil {
		t.Errorf("defaults: max_in_flight %d, rate_limit %v, problems %q", cfg.MaxInFlight, cfg.RateLimit, p)
	}

	for _, tc := range []struct{ yaml, want string }{
		{"max_in_flight: -1\n", "max_in_flight: -1 is not a positive number of exchanges"},
		{"validation_cache_size: -2\n", "validation_cache_size: -2 is outside -1..1000000 (-1 turns the cache off, 0 is the default 4096)"},
		{"validation_cache_size: 1000001\n", "validation_cache_size: 1000001 is outside -1..1000000"},
		{"rate_limit: {rate: 100}\n", `rate_limit: rate "100" is not N/s, N/m, N/h with N > 0, or unlimited`},
		{"rate_limit: {rate: 0/s}\n", `rate_limit: rate "0/s" is not N/s`},
		{"rate_limit: {rate: 5/d}\n", `rate_limit: rate "5/d" is not N/s`},
		{"rate_limit: {rate: 5/s, burst: -2}\n", "rate_limit: burst -2 is negative"},
		{"rate_limit: {rate: 5/s, brust: 2}\n", `unknown key "brust" in rate_limit; did you mean burst?`},
		{"clients:\n  - {id: c, secret: s, services: [\"*\"], rate_limit: {rate: fast}}\n", `clients[0] (c): rate_limit: rate "fast" is not N/s`},
	} {
		_, p := parse(t, "services:\n  - {name: s, scopes: {r: {}}}\n"+tc.yaml)
		if len(p) != 1 || !strings.Contains(p[0].Message, tc.want) {
			t.Errorf("%q: problems %q, want exactly one with %q", tc.yaml, p, tc.want)
		}
	}
}
