package idp_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/idtx/idtx/idp"
	"github.com/idtx/idtx/oauth"
)

// Tests that kill mutants of the JWT checks which the rest of the suite
// let live: each sends the input the check exists for.

// NewJWT refuses none and every HS* algorithm itself, not only through
// config.Parse: a caller that builds a validator directly (a test, an
// embedder) cannot open the RS256 → HS256 key confusion (RFC 8725 §3.1).
func TestNewJWTRefusesSymmetricAlgorithms(t *testing.T) {
	keys, err := idp.StaticKeys(newSigner(t).jwks)
	if err != nil {
		t.Fatal(err)
	}
	for _, alg := range []string{"HS256", "hs384", "HS512", "none", "NONE"} {
		t.Run(alg, func(t *testing.T) {
			_, err := idp.NewJWT(idp.JWTConfig{Name: "corp", Issuer: "https://idp.test", Audiences: []string{"sts"},
				Algorithms: []string{"RS256", alg}, Keys: keys})
			want := "idp corp: algorithm " + alg + " is never accepted from an IDP"
			if err == nil || err.Error() != want {
				t.Fatalf("got %v, want %q", err, want)
			}
		})
	}
	t.Run("control: RS256 and ES256", func(t *testing.T) {
		if _, err := idp.NewJWT(idp.JWTConfig{Name: "corp", Issuer: "https://idp.test", Audiences: []string{"sts"},
			Algorithms: []string{"RS256", "ES256"}, Keys: keys}); err != nil {
			t.Fatal(err)
		}
	})
}

// A token without kid is checked against every key of the set; a key
// under 2048 bits is never one of them (RFC 7518 §3.3), even when it is
// the only one and the token verifies with it.
func TestNoKidWeakKeyRefused(t *testing.T) {
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	jwk, err := idp.PublicJWK(weak.Public())
	if err != nil {
		t.Fatal(err)
	}
	jwk["alg"] = "RS256" // no kid in the set either
	jwks, _ := json.Marshal(map[string]any{"keys": []any{jwk}})
	keys, err := idp.StaticKeys(jwks)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(key *rsa.PrivateKey) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
			"iss": "https://idp.test", "sub": "alice", "aud": "sts", "exp": now.Add(time.Hour).Unix(),
		})
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	_, err = validator(t, keys).Validate(t.Context(), sign(weak), oauth.TokenTypeJWT)
	const want = "invalid token: no usable key: no key of sufficient strength in the IDP's key set"
	if err == nil || err.Error() != want || !errors.Is(err, idp.ErrInvalid) {
		t.Fatalf("got %v, want %q", err, want)
	}

	// Control: the same set with a strong key beside the weak one takes
	// a kid-less token signed by the strong key.
	strong := newSigner(t)
	sjwk, _ := idp.PublicJWK(strong.key.Public())
	sjwk["alg"] = "RS256"
	both, _ := json.Marshal(map[string]any{"keys": []any{jwk, sjwk}})
	keys, err = idp.StaticKeys(both)
	if err != nil {
		t.Fatal(err)
	}
	v := validator(t, keys)
	if id, err := v.Validate(t.Context(), sign(strong.key), oauth.TokenTypeJWT); err != nil || id.Subject != "alice" {
		t.Fatalf("strong key: %v %+v", err, id)
	}
	if _, err := v.Validate(t.Context(), sign(weak), oauth.TokenTypeJWT); err == nil || !strings.Contains(err.Error(), "invalid token: ") {
		t.Fatalf("weak key beside a strong one: %v", err)
	}
}
