package idp_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/idp"
	"github.com/idtx/idtx/idp/idptest"
	"github.com/idtx/idtx/oauth"
)

// pinnedSpec is a kind of IDP that exists only in this test: JWTs signed
// with the one RS256 key of its public_key_file (PEM). It proves the
// recipe of idp.Register: this file and its one Register line are all a
// new kind of IDP needs for config to decode and check its keys, the
// registry to build and route it, and idptest to run on it.
type pinnedSpec struct {
	PublicKeyFile string `yaml:"public_key_file"`
}

func init() { idp.Register("pinned", func() idp.Spec { return new(pinnedSpec) }) }

func (s *pinnedSpec) Validate(_ config.IDP, at config.Path, where string) config.Problems {
	if s.PublicKeyFile == "" {
		return config.Problems{at.Child("public_key_file").Problem("%s: public_key_file is required", where)}
	}
	return nil
}

func (s *pinnedSpec) Open(_ context.Context, d config.IDP, opts idp.Options) (idp.Validator, error) {
	raw, err := opts.ReadFile(s.PublicKeyFile)
	if err != nil {
		return nil, fmt.Errorf("idp %s: %w", d.Name, err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, fmt.Errorf("idp %s: public_key_file %s holds no PEM block", d.Name, s.PublicKeyFile)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("idp %s: public_key_file %s: %w", d.Name, s.PublicKeyFile, err)
	}
	jwk, err := idp.PublicJWK(pub)
	if err != nil {
		return nil, err
	}
	jwk["kid"], jwk["alg"] = idp.Thumbprint(jwk), "RS256"
	jwks, _ := json.Marshal(map[string]any{"keys": []any{jwk}})
	keys, err := idp.StaticKeys(jwks)
	if err != nil {
		return nil, err
	}
	v, err := idp.NewJWT(idp.JWTConfig{
		Name: d.Name, Issuer: d.Issuer, Audiences: d.Audiences, Algorithms: []string{"RS256"},
		ClockSkew: d.ClockSkew, Clock: opts.Clock, Keys: keys, Claims: d.Claims,
	})
	if err != nil {
		return nil, err
	}
	return pinned{v}, nil
}

// pinned is a JWT validator that names its own kind.
type pinned struct{ jwt *idp.JWT }

func (p pinned) Route() idp.Route {
	r := p.jwt.Route()
	r.Kind = "pinned"
	return r
}

func (p pinned) Validate(ctx context.Context, token, tokenType string) (*idp.Identity, error) {
	id, err := p.jwt.Validate(ctx, token, tokenType)
	if id != nil {
		id.Route = p.Route()
	}
	return id, err
}

// The recipe of idp.Register holds: a type defined and registered in one
// file is decoded, checked with lines, built and routed, and passes the
// conformance suite.
func TestNewIDPTypeRecipe(t *testing.T) {
	key := pooledSigner(0)
	der, err := x509.MarshalPKIXPublicKey(key.key.Public())
	if err != nil {
		t.Fatal(err)
	}
	readFile := func(name string) ([]byte, error) {
		if name != "key.pem" {
			return nil, fmt.Errorf("no file %s", name)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
	}
	const tail = `services:
  - {name: s, scopes: {r: {}}}
clients:
  - {id: c, secret: s, services: ["*"]}
`
	parse := func(t *testing.T, idps string) (*config.Config, config.Problems) {
		t.Helper()
		cfg, err := config.Parse([]byte("idps:\n"+idps+tail), "", readFile)
		var p config.Problems
		if err != nil && !errors.As(err, &p) {
			t.Fatal(err)
		}
		return cfg, p
	}
	const valid = `  - name: p
    type: pinned
    issuer: https://idp.test
    audiences: [sts]
    public_key_file: key.pem
`
	cfg, p := parse(t, valid)
	if len(p) > 0 {
		t.Fatalf("a valid pinned IDP: %v", p)
	}

	t.Run("registry", func(t *testing.T) {
		reg, err := idp.FromConfig(t.Context(), cfg.IDPs, idp.Options{Clock: func() time.Time { return now }, ReadFile: cfg.ReadFile})
		if err != nil {
			t.Fatal(err)
		}
		tok := idptest.Token{Subject: "alice", IssuedAt: now.Add(-time.Minute), Expiry: now.Add(time.Hour)}
		id, err := reg.Validate(t.Context(), key.sign(t, jwtClaims(tok, "sts")), oauth.TokenTypeJWT)
		if err != nil {
			t.Fatal(err)
		}
		if id.IDP != "p" || id.Subject != "alice" || id.Route.Kind != "pinned" || id.Route.By != idp.RouteJWT {
			t.Errorf("identity %s of %s, route %+v", id.Subject, id.IDP, id.Route)
		}
	})

	t.Run("conformance", func(t *testing.T) {
		idptest.Run(t, func(t *testing.T) *idptest.Kit {
			k := jwtKit(t, false) // the same key, and the same tokens
			v, err := cfg.IDPs[0].Spec.(idp.Spec).Open(t.Context(), cfg.IDPs[0], idp.Options{Clock: func() time.Time { return now }, ReadFile: cfg.ReadFile})
			if err != nil {
				t.Fatal(err)
			}
			k.Validator = v
			return k
		})
	})

	// Each problem is at the line of the key it is about.
	for _, tt := range []struct {
		name, idps string
		want       []string
	}{
		{"required key", `  - name: p
    type: pinned
    issuer: https://idp.test
    audiences: [sts]
`, []string{"line 2: idps[0] (p): public_key_file is required"}},
		{"typo in its key", `  - name: p
    type: pinned
    issuer: https://idp.test
    audiences: [sts]
    public_key_fil: key.pem
`, []string{
			`line 6: unknown key "public_key_fil" in idps[0] (p); did you mean public_key_file?`,
			"line 2: idps[0] (p): public_key_file is required",
		}},
		{"another type's keys", valid + `    jwks_file: k.json
    recipients: ["https://sts.example/token"]
`, []string{
			"line 7: idps[0] (p): jwks_uri, jwks_file, discovery, algorithms and access_token_typ are for jwt IDPs",
			"line 8: idps[0] (p): recipients and max_age are for saml IDPs",
		}},
		{"its key given to another type", `  - name: j
    type: jwt
    issuer: https://j.test
    audiences: [sts]
    jwks_file: k.json
    public_key_file: key.pem
`, []string{"line 7: idps[0] (j): public_key_file is for pinned IDPs"}},
		{"a value of the wrong shape", `  - name: p
    type: pinned
    issuer: https://idp.test
    audiences: [sts]
    public_key_file: [key.pem]
`, []string{`line 6: idps[0] (p).public_key_file: expected a single value, not a list`}},
		{"unknown type names it", `  - name: x
    type: pinnd
    issuer: https://idp.test
    audiences: [sts]
`, []string{`line 3: idps[0] (x): unknown type "pinnd" (jwt, saml, introspection, pinned)`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, p := parse(t, tt.idps)
			if got, want := strings.Join(p.Strings(), "\n"), strings.Join(tt.want, "\n"); got != want {
				t.Errorf("problems:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}
