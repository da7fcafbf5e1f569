package idp_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/idtx/idtx/idp"
	"github.com/idtx/idtx/oauth"
)

// fuzzKey is generated once: FuzzJWT's body runs millions of times.
var fuzzKey, _ = rsa.GenerateKey(rand.Reader, 2048)

// FuzzJWT feeds the JWT pre-checks and validation arbitrary tokens, and holds
// the result to golang-jwt used plainly: whatever idtx accepts, a strict
// golang-jwt parse with the same key, algorithm, issuer and audience accepts
// too, with the same subject. idtx may refuse more (duplicate members, crit,
// typ), never less. Every error wraps exactly one category of package idp.
func FuzzJWT(f *testing.F) {
	jwk, _ := idp.PublicJWK(fuzzKey.Public())
	kid := idp.Thumbprint(jwk)
	jwk["kid"], jwk["alg"] = kid, "RS256"
	jwks, _ := json.Marshal(map[string]any{"keys": []any{jwk}})
	keys, err := idp.StaticKeys(jwks)
	if err != nil {
		f.Fatal(err)
	}
	sign := func(header map[string]any, claims jwt.MapClaims) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
		tok.Header["kid"] = kid
		for k, v := range header {
			tok.Header[k] = v
		}
		s, _ := tok.SignedString(fuzzKey)
		return s
	}
	base := func() jwt.MapClaims {
		return jwt.MapClaims{"iss": "https://idp.test", "sub": "alice", "aud": "sts", "exp": now.Add(time.Hour).Unix()}
	}
	valid := sign(nil, base())
	f.Add(valid, uint8(0))
	f.Add(sign(map[string]any{"typ": "at+jwt"}, base()), uint8(1))
	f.Add(sign(map[string]any{"crit": []string{"exp"}}, base()), uint8(0))
	h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","alg":"RS256","kid":"` + kid + `"}`))
	f.Add(h+"."+strings.Split(valid, ".")[1]+"."+strings.Split(valid, ".")[2], uint8(0))
	f.Add(strings.Replace(valid, ".", "..", 1), uint8(2))
	f.Add("a.b.c.d.e", uint8(3))

	v, err := idp.NewJWT(idp.JWTConfig{
		Name: "corp", Issuer: "https://idp.test", Audiences: []string{"sts"}, Algorithms: []string{"RS256"},
		ClockSkew: 30 * time.Second, Clock: func() time.Time { return now }, Keys: keys,
	})
	if err != nil {
		f.Fatal(err)
	}
	types := []string{oauth.TokenTypeJWT, oauth.TokenTypeAccessToken, oauth.TokenTypeIDToken, oauth.TokenTypeSAML2}
	f.Fuzz(func(t *testing.T, token string, which uint8) {
		tokenType := types[int(which)%len(types)]
		id, err := v.Validate(context.Background(), token, tokenType)
		if err != nil {
			n := 0
			for _, cat := range []error{idp.ErrMalformed, idp.ErrUntrusted, idp.ErrInvalid, idp.ErrUnavailable} {
				if errors.Is(err, cat) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("error %q wraps %d categories, want exactly 1", err, n)
			}
			return
		}
		claims := jwt.MapClaims{}
		_, perr := jwt.NewParser(
			jwt.WithValidMethods([]string{"RS256"}), jwt.WithStrictDecoding(), jwt.WithExpirationRequired(),
			jwt.WithIssuer("https://idp.test"), jwt.WithAudience("sts"), jwt.WithTimeFunc(func() time.Time { return now }),
		).ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return &fuzzKey.PublicKey, nil })
		if perr != nil {
			t.Fatalf("idtx accepted a token golang-jwt refuses (%v): %q", perr, token)
		}
		if sub, _ := claims["sub"].(string); sub != id.Subject || sub == "" {
			t.Fatalf("subject %q, golang-jwt reads %q", id.Subject, sub)
		}
	})
}
