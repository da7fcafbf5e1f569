package idp

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/idtx/idtx/oauth"
)

// These tests kill mutants of peekJWT, the first look at a subject
// token, that the other tests let live because a later check (the JWT
// library, the key lookup) refused the token too: each asserts
// peekJWT's own refusal.

func seg(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestPeekJWTRefusals(t *testing.T) {
	const claims = `{"iss":"https://idp.test","sub":"alice"}`
	tok := func(header string) string { return seg(header) + "." + seg(claims) + ".c2ln" }
	for _, tc := range []struct {
		name, token, typ string
		is               error
		want             string
	}{
		{"five parts", "a.b.c.d.e", oauth.TokenTypeJWT, ErrMalformed, "malformed token: five-part JWE tokens are refused"},
		{"four parts", tok(`{"alg":"RS256"}`) + ".x", oauth.TokenTypeJWT, ErrMalformed, "malformed token: not a compact JWT (expected three dot-separated parts)"},
		{"two parts", "a.b", oauth.TokenTypeJWT, ErrMalformed, "malformed token: not a compact JWT (expected three dot-separated parts)"},
		{"no alg", tok(`{"typ":"JWT"}`), oauth.TokenTypeJWT, ErrMalformed, "malformed token: header has no alg"},
		{"alg not a string", tok(`{"alg":1}`), oauth.TokenTypeJWT, ErrMalformed, "malformed token: header: alg is not a string"},
		{"alg NONE", tok(`{"alg":"NONE"}`), anyTyp, ErrInvalid, `invalid token: alg "NONE" is refused: tokens must be signed`},
		{"alg nOnE", tok(`{"alg":"nOnE"}`), oauth.TokenTypeJWT, ErrInvalid, `invalid token: alg "nOnE" is refused: tokens must be signed`},
		{"non-canonical base64", "eyJhbGciOiJSUzI1NiJ9" + "." + seg(claims)[:len(seg(claims))-1] + "f.c2ln", oauth.TokenTypeJWT, ErrMalformed,
			"malformed token: claims: not strict base64url"},
		{"typ JOSE", tok(`{"alg":"RS256","typ":"JOSE"}`), oauth.TokenTypeJWT, ErrInvalid, `invalid token: typ "JOSE" is not a subject token type (at+jwt, JWT or none)`},
		{"typ at+jwt as id_token", tok(`{"alg":"RS256","typ":"at+jwt"}`), oauth.TokenTypeIDToken, ErrInvalid, "invalid token: typ at+jwt is an access token, presented as an id_token"},
		{"no iss", seg(`{"alg":"RS256"}`) + "." + seg(`{"sub":"alice"}`) + ".c2ln", oauth.TokenTypeJWT, ErrUntrusted, "untrusted issuer: token has no iss claim"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := peekJWT(tc.token, tc.typ)
			if !errors.Is(err, tc.is) || err.Error() != tc.want {
				t.Fatalf("peekJWT = %+v, %v; want %q", p, err, tc.want)
			}
		})
	}
	// Every header that would take keys or content from the token is
	// refused by name.
	for h, why := range refusedHeaders {
		_, err := peekJWT(tok(`{"alg":"RS256","`+h+`":"x"}`), oauth.TokenTypeJWT)
		if want := `invalid token: header "` + h + `" is refused: ` + why; !errors.Is(err, ErrInvalid) || err.Error() != want {
			t.Errorf("header %s: %v, want %q", h, err, want)
		}
	}
	for _, h := range []string{"jku", "x5u", "jwk", "x5c", "crit", "cty", "enc", "zip"} {
		if _, ok := refusedHeaders[h]; !ok {
			t.Errorf("header %s is not refused", h)
		}
	}
	// What peekJWT lets through: a typ of JWT, at+jwt or none as an
	// access token; no typ; at+jwt as a plain JWT.
	for _, c := range [][2]string{{`{"alg":"RS256","typ":"JWT"}`, oauth.TokenTypeAccessToken}, {`{"alg":"RS256","typ":"at+jwt"}`, oauth.TokenTypeAccessToken},
		{`{"alg":"RS256"}`, oauth.TokenTypeIDToken}, {`{"alg":"RS256","typ":"at+jwt"}`, oauth.TokenTypeJWT}, {`{"alg":"RS256","typ":"application/at+jwt"}`, oauth.TokenTypeAccessToken}} {
		if p, err := peekJWT(tok(c[0]), c[1]); err != nil || p.iss != "https://idp.test" || !strings.HasPrefix(p.alg, "RS") {
			t.Errorf("%s as %s: %+v, %v; want it through", c[0], c[1], p, err)
		}
	}
}
