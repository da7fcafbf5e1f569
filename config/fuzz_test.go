package config_test

import (
	"errors"
	"os"
	"testing"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/idp"
)

// FuzzParse feeds the config loader arbitrary YAML. It never panics; a
// config it accepts holds the invariants the engine relies on, and one it
// refuses says why in at least one problem.
func FuzzParse(f *testing.F) {
	if seed, err := os.ReadFile("../fixtures/mock.yaml"); err == nil {
		f.Add(seed)
	}
	f.Add([]byte("issuer: http://x\nservices: [{name: a, scopes: {r: {}}}]\nclients: [{id: c, secret: s, services: ['*']}]\n"))
	f.Add([]byte("idps: [{name: a, type: jwt, issuer: i, jwks_file: f, audiences: [x], algorithms: [none]}]"))
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Add([]byte("services: [{name: a, token_lifetime: 10y}]"))
	readFile := func(string) ([]byte, error) { return nil, os.ErrNotExist }
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := config.Parse(data, "", readFile)
		if err != nil {
			var p config.Problems
			if errors.As(err, &p) && len(p) == 0 {
				t.Fatal("refused with no problem named")
			}
			return
		}
		for _, s := range cfg.Services {
			if s.Name == "" || s.Audience == "" || len(s.Scopes) == 0 || s.TokenLifetime <= 0 {
				t.Fatalf("accepted service %+v", s)
			}
		}
		for _, d := range cfg.IDPs {
			if d.Name == "" || d.Issuer == "" || len(d.Audiences) == 0 {
				t.Fatalf("accepted IDP %+v", d)
			}
			if s, ok := d.Spec.(*idp.JWTSpec); ok {
				for _, a := range s.Algorithms {
					if a == "none" || len(a) > 1 && (a[:2] == "HS" || a[:2] == "hs") {
						t.Fatalf("accepted algorithm %q", a)
					}
				}
			}
		}
		for _, c := range cfg.Clients {
			if c.ID == "" || len(c.Modes) == 0 {
				t.Fatalf("accepted client %+v", c)
			}
		}
	})
}
