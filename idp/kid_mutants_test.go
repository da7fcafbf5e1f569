package idp_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/idtx/idtx/idp"
	"github.com/idtx/idtx/oauth"
)

// A token whose kid names a key under 2048 bits is refused (RFC 7518
// §3.3), though it verifies with that key. Mutation testing found that
// dropping this check on the kid path passed every test (the kid-less
// path is TestNoKidWeakKeyRefused).
func TestKidWeakKeyRefused(t *testing.T) {
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	jwk, err := idp.PublicJWK(weak.Public())
	if err != nil {
		t.Fatal(err)
	}
	jwk["alg"], jwk["kid"] = "RS256", "weak"
	jwks, _ := json.Marshal(map[string]any{"keys": []any{jwk}})
	keys, err := idp.StaticKeys(jwks)
	if err != nil {
		t.Fatal(err)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": "https://idp.test", "sub": "alice", "aud": "sts", "exp": now.Add(time.Hour).Unix(),
	})
	tok.Header["kid"] = "weak"
	s, err := tok.SignedString(weak)
	if err != nil {
		t.Fatal(err)
	}
	_, err = validator(t, keys).Validate(t.Context(), s, oauth.TokenTypeJWT)
	const want = "invalid token: no usable key: RSA key of 1024 bits is under 2048"
	if err == nil || err.Error() != want || !errors.Is(err, idp.ErrInvalid) {
		t.Fatalf("got %v, want %q", err, want)
	}
}
