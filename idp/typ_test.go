package idp_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/idtx/idtx/idp"
	"github.com/idtx/idtx/oauth"
)

// Access tokens as real IDPs issue them: typ at+jwt (RFC 9068), JWT
// (Keycloak, Entra ID, Auth0) or none (Dex), compared as RFC 7515 §4.1.9
// says; access_token_typ makes an IDP strict. Every combination, with the
// exact reason.
func TestAccessTokenTyp(t *testing.T) {
	s := pooledSigner(0)
	keys, err := idp.StaticKeys(s.jwks)
	if err != nil {
		t.Fatal(err)
	}
	build := func(strict []string) *idp.JWT {
		v, err := idp.NewJWT(idp.JWTConfig{Name: "corp", Issuer: confIssuer, Audiences: []string{"sts"}, Algorithms: []string{"RS256"},
			Clock: func() time.Time { return now }, Keys: keys, AccessTokenTyp: strict})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	const (
		otherTyp = `invalid token: typ "logout+jwt" is not a subject token type (at+jwt, JWT or none)`
		atAsID   = `invalid token: typ at+jwt is an access token, presented as an id_token`
	)
	strictWant := func(typ, list string) string {
		return fmt.Sprintf(`invalid token: typ %q is not one of IDP corp's access_token_typ [%s] for subject_token_type access_token (RFC 9068 §2.1)`, typ, list)
	}
	AT, ID, JWT := oauth.TokenTypeAccessToken, oauth.TokenTypeIDToken, oauth.TokenTypeJWT
	tests := []struct {
		strict    []string
		typ       any // nil: no typ header
		tokenType string
		want      string
	}{
		// Default: at+jwt, JWT or none as an access token.
		{nil, "at+jwt", AT, ""},
		{nil, "JWT", AT, ""},
		{nil, nil, AT, ""},
		{nil, "application/AT+JWT", AT, ""},
		{nil, "application/jwt", AT, ""},
		{nil, "logout+jwt", AT, otherTyp},
		// As an ID token: never at+jwt.
		{nil, "JWT", ID, ""},
		{nil, nil, ID, ""},
		{nil, "at+jwt", ID, atAsID},
		{nil, "Application/At+Jwt", ID, atAsID},
		{nil, "logout+jwt", ID, otherTyp},
		// As a jwt: any of the three.
		{nil, "at+jwt", JWT, ""},
		{nil, "JWT", JWT, ""},
		{nil, nil, JWT, ""},
		{nil, "logout+jwt", JWT, otherTyp},
		// Strict RFC 9068.
		{[]string{"at+jwt"}, "at+jwt", AT, ""},
		{[]string{"at+jwt"}, "application/at+jwt", AT, ""},
		{[]string{"at+jwt"}, "JWT", AT, strictWant("JWT", "at+jwt")},
		{[]string{"at+jwt"}, nil, AT, strictWant("", "at+jwt")},
		{[]string{"at+jwt"}, "logout+jwt", AT, otherTyp},
		{[]string{"at+jwt"}, "JWT", ID, ""},
		{[]string{"at+jwt"}, "at+jwt", ID, atAsID},
		{[]string{"at+jwt"}, "JWT", JWT, ""},
		// A list: at+jwt or JWT, but not none.
		{[]string{"AT+JWT", "JWT"}, "jwt", AT, ""},
		{[]string{"AT+JWT", "JWT"}, nil, AT, strictWant("", "at+jwt JWT")},
		{[]string{""}, nil, AT, ""},
		{[]string{""}, "at+jwt", AT, strictWant("at+jwt", `""`)},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v/%v/%s", tt.strict, tt.typ, tt.tokenType[len("urn:ietf:params:oauth:token-type:"):]), func(t *testing.T) {
			tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
				"iss": confIssuer, "sub": "alice", "aud": "sts", "exp": now.Unix() + 3600,
			})
			tok.Header["kid"] = s.kid
			if tt.typ == nil {
				delete(tok.Header, "typ")
			} else {
				tok.Header["typ"] = tt.typ
			}
			raw, err := tok.SignedString(s.key)
			if err != nil {
				t.Fatal(err)
			}
			_, err = build(tt.strict).Validate(t.Context(), raw, tt.tokenType)
			if got := fmt.Sprint(err); (tt.want == "" && err != nil) || (tt.want != "" && got != tt.want) {
				t.Fatalf("Validate = %v\nwant     %s", err, tt.want)
			}
		})
	}
}
