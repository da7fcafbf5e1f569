package config_test

import (
	"strings"
	"testing"
	"time"
)

const minimal = `
services:
  - name: svc
    scopes: {read: {}}
    token_lifetime: 2h
`

// signing.rotate_every and signing.kek_file: keys from a key_file neither
// rotate nor are sealed, and a schedule shorter than an hour is refused.
func TestSigningRotation(t *testing.T) {
	for _, c := range []struct{ signing, want string }{
		{`{rotate_every: 720h, key_file: k.pem}`, "signing.rotate_every: a key_file does not rotate; remove key_file to keep the signing keys in the store"},
		{`{rotate_every: 10m}`, "signing.rotate_every: 10m0s is shorter than 1h0m0s"},
		{`{kek_file: kek, key_file: k.pem}`, "signing.kek_file: seals keys kept in the store, and key_file names a key outside it; remove one"},
		{`{rotate_every: 720h, kek_file: kek}`, ""},
	} {
		cfg, p := parse(t, "signing: "+c.signing+minimal)
		got := strings.Join(p.Messages(), "\n")
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("signing %s: problems %q, want %q", c.signing, got, c.want)
		}
		if c.want == "" && (cfg.Signing.RotateEvery != 720*time.Hour || cfg.MaxTokenLifetime() != 2*time.Hour) {
			t.Errorf("rotate_every %s, longest lifetime %s", cfg.Signing.RotateEvery, cfg.MaxTokenLifetime())
		}
	}
}
