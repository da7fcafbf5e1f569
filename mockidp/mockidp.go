// Package mockidp is the built-in mock identity provider of `idtx serve
// --mock` and `idtx mock token` (fixtures/mock.yaml; the serve --mock banner lists them): it signs subject tokens
// offline with the public fixture keys, and serves what an STS needs to
// validate them. Nothing it signs should be trusted outside a dev box.
package mockidp

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/consent"
	"github.com/idtx/idtx/fixtures"
	"github.com/idtx/idtx/idp"
)

// The mock's fixed names (fixtures/mock.yaml; the serve --mock banner lists them).
const (
	Name       = "mock"
	Issuer     = "https://mock-idp.idtx.test"
	Audience   = "idtx-sts"
	DemoClient = "demo-client"
	DemoSecret = "demo-secret"
	DefaultSub = "alice"
	DefaultTTL = time.Hour
)

// Config is the configuration `idtx serve --mock` runs.
func Config() (*config.Config, error) {
	return config.LoadFS(fixtures.FS, fixtures.MockConfig)
}

// SeedConsents grants the mock's fixture consents (alice of the mock JWT
// IDP and alice of the mock SAML IDP, each for billing-api billing:read);
// it is idempotent.
func SeedConsents(ctx context.Context, s consent.Granter) error {
	data, err := fixtures.FS.ReadFile(fixtures.MockConsents)
	if err != nil {
		return err
	}
	list, err := consent.ParseSeed(data)
	if err != nil {
		return err
	}
	return consent.Seed(ctx, s, list)
}

// Handler serves the mock IDP's endpoints under /mock/; clock (nil:
// time.Now) is the time the internal IDP's introspection endpoint checks
// tokens at.
func Handler(clock func() time.Time) http.Handler {
	if clock == nil {
		clock = time.Now
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /mock/jwks", func(w http.ResponseWriter, _ *http.Request) {
		data, _ := fixtures.FS.ReadFile(fixtures.MockIDPJWKS)
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Write(data)
	})
	mux.HandleFunc("GET /mock/saml/metadata", samlMetadata)
	mux.HandleFunc("POST "+IntrospectPath, introspect(clock))
	mux.HandleFunc("GET "+GitHubActionsTokenPath, gitHubActionsToken(clock))
	return mux
}

// TokenOptions shape a mock subject token.
type TokenOptions struct {
	// Issuer overrides the mock IDP's issuer (JWT iss, SAML Issuer,
	// opaque iss), to mint tokens of an untrusted issuer in tests.
	Issuer string
	Sub    string
	Aud    string
	Scope  string
	TTL    time.Duration
	MayAct string         // adds may_act {"sub": MayAct} (RFC 8693 §4.4)
	Claims map[string]any // set last: they may override any claim
	Now    time.Time
	// Breaks are named failure scenarios (Breaks lists them): each
	// yields a token the mock STS refuses, with the refusal its docs
	// promise (docs/testing.md).
	Breaks []Break
}

func (o TokenOptions) withDefaults() TokenOptions {
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.Sub == "" {
		o.Sub = DefaultSub
	}
	if o.Aud == "" {
		o.Aud = Audience
	}
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	return o
}

var signer = sync.OnceValues(func() (*jwtSigner, error) {
	data, err := fixtures.FS.ReadFile(fixtures.MockIDPKey)
	if err != nil {
		return nil, err
	}
	key, err := idp.ParsePrivateKey(data)
	if err != nil {
		return nil, err
	}
	jwk, err := idp.PublicJWK(key.Public())
	if err != nil {
		return nil, err
	}
	return &jwtSigner{key: key, kid: idp.Thumbprint(jwk)}, nil
})

// claims are the claims of a mock subject token issued by iss (unless the
// options name another issuer): the JWT and the opaque token carry the same.
func (o TokenOptions) claims(iss string) map[string]any {
	o = o.withDefaults()
	if o.Issuer != "" {
		iss = o.Issuer
	}
	claims := map[string]any{
		"iss": iss,
		"sub": o.Sub,
		"aud": o.Aud,
		"iat": o.Now.Unix(),
		"exp": o.Now.Add(o.TTL).Unix(),
		"jti": randomID(),
	}
	if o.Scope != "" {
		claims["scope"] = strings.Join(strings.Fields(o.Scope), " ")
	}
	if o.MayAct != "" {
		claims["may_act"] = map[string]any{"sub": o.MayAct}
	}
	for k, v := range o.Claims {
		claims[k] = v
	}
	return claims
}

type jwtSigner struct {
	key crypto.Signer
	kid string
}

// JWT signs a mock subject token, RS256 with the fixture key, typ at+jwt
// (RFC 9068: an access token for the STS), unless o.Breaks asks for a
// broken one.
func JWT(o TokenOptions) (string, error) {
	s, err := signer()
	if err != nil {
		return "", fmt.Errorf("mock idp key: %w", err)
	}
	return signJWT(o, s.key, jwt.SigningMethodRS256, s.kid, s.key.Public())
}

func randomID() string {
	var b [12]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
