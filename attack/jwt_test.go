package attack

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// subjectReq exchanges a subject token for orders-api as demo-client.
func subjectReq(token string, kv ...string) *request {
	return &request{form: exchangeForm(token, kv...)}
}

// jwtRow is a row whose subject token is made by tok.
func jwtRow(name string, tok func(t testing.TB, e *env) string, reason string) row {
	return row{
		name:       name,
		build:      func(t testing.TB, e *env) *request { return subjectReq(tok(t, e)) },
		wantStatus: http.StatusBadRequest, wantCode: "invalid_request", wantReason: reason,
	}
}

// unsigned is a JWT with alg as written and no signature.
func unsigned(alg string) func(testing.TB, *env) string {
	return func(t testing.TB, e *env) string {
		h := fmt.Sprintf(`{"alg":%q,"typ":"JWT"}`, alg)
		c := mustJSON(claims(nil))
		return b64([]byte(h)) + "." + b64([]byte(c)) + "."
	}
}

// hs256WithPublicKey signs with HS256 keyed by the IDP's public key, the
// classic RS256 → HS256 confusion.
func hs256WithPublicKey(t testing.TB, e *env) string {
	der, err := x509.MarshalPKIXPublicKey(e.corp.key.Public())
	if err != nil {
		t.Fatal(err)
	}
	secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(claims(nil)))
	tok.Header["kid"] = e.corp.kid
	s, err := tok.SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// corpWith is a corp token with claims and header changed.
func corpWith(over, header map[string]any) func(testing.TB, *env) string {
	return func(t testing.TB, e *env) string { return e.corp.sign(t, claims(over), header) }
}

// paddedClaims re-encodes a valid token's claims with base64 padding, which
// RFC 7515 §2 forbids; the claims are grown until padding is needed.
func paddedClaims(t testing.TB, e *env) string {
	c := claims(nil)
	for i := 0; ; i++ {
		c["x"] = strings.Repeat("a", i)
		if len(mustJSON(c))%3 != 0 {
			break
		}
	}
	h := fmt.Sprintf(`{"alg":"RS256","kid":%q,"typ":"JWT"}`, e.corp.kid)
	input := b64([]byte(h)) + "." + base64.URLEncoding.EncodeToString([]byte(mustJSON(c)))
	sig, err := jwt.SigningMethodRS256.Sign(input, e.corp.key)
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + b64(sig)
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// jwtRows are the JWT subject token attacks (RFC 8725, RFC 9700, RFC
// 8693 §5) sent to a server trusting the IDPs of fixtureConfig.
func jwtRows() []row {
	future := time.Now().Add(time.Hour).Unix()
	rows := []row{}
	for _, alg := range []string{"none", "None", "NONE", "nOnE"} {
		rows = append(rows, jwtRow("alg "+alg, unsigned(alg), "tokens must be signed"))
	}
	rows = append(rows,
		jwtRow("RS256 to HS256 key confusion", hs256WithPublicKey, `alg "HS256" is not allowed for IDP corp`),
	)
	for _, kid := range []string{"../../../../dev/null", "' OR '1'='1", "$(touch /tmp/pwned)", "corp|x", ""} {
		rows = append(rows, jwtRow("kid injection "+kid, corpWith(nil, map[string]any{"kid": kid}), "is not in the IDP's key set"))
	}
	jku := map[string]any{
		"jku": "http://127.0.0.1:1/jwks",
		"x5u": "http://127.0.0.1:1/cert.pem",
		"jwk": map[string]any{"kty": "oct", "k": "c2VjcmV0"},
		"x5c": []string{"MIIB"},
	}
	for _, h := range []string{"jku", "x5u", "jwk", "x5c"} {
		rows = append(rows, jwtRow("header "+h, corpWith(nil, map[string]any{h: jku[h]}), fmt.Sprintf("header %q is refused: keys come from config only", h)))
	}
	rows = append(rows,
		jwtRow("crit header", corpWith(nil, map[string]any{"crit": []string{"urn:example:must-understand"}, "urn:example:must-understand": true}), `header "crit" is refused`),
		jwtRow("duplicate alg in header", func(t testing.TB, e *env) string {
			return e.corp.signRaw(t, fmt.Sprintf(`{"alg":"none","kid":%q,"alg":"RS256"}`, e.corp.kid), mustJSON(claims(nil)))
		}, `header: duplicate member "alg"`),
		jwtRow("alg and ALG in header", func(t testing.TB, e *env) string {
			return e.corp.signRaw(t, fmt.Sprintf(`{"alg":"RS256","kid":%q,"ALG":"none"}`, e.corp.kid), mustJSON(claims(nil)))
		}, `malformed token: header: duplicate member "ALG"`),
		jwtRow("sub and SUB after an object in an array", func(t testing.TB, e *env) string {
			c := mustJSON(claims(nil))
			return e.corp.signRaw(t, fmt.Sprintf(`{"alg":"RS256","kid":%q}`, e.corp.kid), strings.TrimSuffix(c, "}")+`,"x":[{"a":1}],"SUB":"admin","y":""}`)
		}, `malformed token: claims: duplicate member "SUB"`),
		jwtRow("duplicate sub in claims", func(t testing.TB, e *env) string {
			c := mustJSON(claims(nil))
			return e.corp.signRaw(t, fmt.Sprintf(`{"alg":"RS256","kid":%q}`, e.corp.kid), strings.TrimSuffix(c, "}")+`,"sub":"admin"}`)
		}, `claims: duplicate member "sub"`),
		jwtRow("aud and AUD in claims", func(t testing.TB, e *env) string {
			c := mustJSON(claims(map[string]any{"aud": "other-rp"}))
			return e.corp.signRaw(t, fmt.Sprintf(`{"alg":"RS256","kid":%q}`, e.corp.kid), strings.TrimSuffix(c, "}")+`,"AUD":"idtx-sts"}`)
		}, `claims: duplicate member "AUD"`),
		jwtRow("duplicate sub inside may_act", func(t testing.TB, e *env) string {
			c := mustJSON(claims(nil))
			return e.corp.signRaw(t, fmt.Sprintf(`{"alg":"RS256","kid":%q}`, e.corp.kid), strings.TrimSuffix(c, "}")+`,"may_act":{"sub":"svc-bot","sub":"admin"}}`)
		}, `claims: duplicate member "sub"`),
		jwtRow("escaped duplicate iss", func(t testing.TB, e *env) string {
			c := mustJSON(claims(nil))
			return e.corp.signRaw(t, fmt.Sprintf(`{"alg":"RS256","kid":%q}`, e.corp.kid), strings.TrimSuffix(c, "}")+`,"\u0069ss":"https://partner.idp.test"}`)
		}, `duplicate member "iss"`),
		jwtRow("missing exp", corpWith(map[string]any{"exp": nil}, nil), "exp is required"),
		jwtRow("expired", corpWith(map[string]any{"exp": time.Now().Add(-time.Minute).Unix()}, nil), "expired at"),
		jwtRow("nbf in the future", corpWith(map[string]any{"nbf": future}, nil), "not valid before"),
		jwtRow("iat in the future", corpWith(map[string]any{"iat": future}, nil), "issued in the future"),
		jwtRow("token for another audience", corpWith(map[string]any{"aud": "billing-api"}, nil), "contains none of IDP corp's audiences"),
		jwtRow("audience list without the STS", corpWith(map[string]any{"aud": []string{"orders-api", "https://evil.test"}}, nil), "contains none of IDP corp's audiences"),
		jwtRow("missing aud", corpWith(map[string]any{"aud": nil}, nil), "aud is required"),
		jwtRow("untrusted issuer", corpWith(map[string]any{"iss": "https://evil.test"}, nil), `iss "https://evil.test" is not a trusted IDP`),
		jwtRow("missing iss", corpWith(map[string]any{"iss": nil}, nil), "token has no iss claim"),
		jwtRow("issuer mix-up: corp's key under partner's iss", corpWith(map[string]any{"iss": partnerIssuer}, nil), "is not in the IDP's key set"),
		jwtRow("second IDP's key with the first IDP's kid and iss", func(t testing.TB, e *env) string {
			return e.partner.sign(t, claims(nil), map[string]any{"kid": e.corp.kid})
		}, "signature does not verify with IDP corp's key"),
		jwtRow("untrusted key with corp's kid", func(t testing.TB, e *env) string {
			return e.impostor.sign(t, claims(nil), map[string]any{"kid": e.corp.kid})
		}, "signature does not verify with IDP corp's key"),
		jwtRow("no kid, untrusted key", func(t testing.TB, e *env) string {
			return e.impostor.sign(t, claims(nil), map[string]any{"kid": nil})
		}, "signature does not verify"),
		jwtRow("tampered claims", func(t testing.TB, e *env) string {
			parts := strings.Split(e.corp.sign(t, claims(nil), nil), ".")
			parts[1] = b64([]byte(mustJSON(claims(map[string]any{"sub": "admin"}))))
			return strings.Join(parts, ".")
		}, "signature does not verify with IDP corp's key"),
		row{
			// Keycloak, Entra ID and Auth0 type their access tokens JWT: taken
			// by default...
			name: "typ JWT presented as access_token, lenient IDP",
			build: func(t testing.TB, e *env) *request {
				return subjectReq(e.corp.sign(t, claims(nil), map[string]any{"typ": "JWT"}), "subject_token_type", tokenTypeAccessToken)
			},
			wantStatus: http.StatusOK,
		},
		row{
			// ...and refused by an IDP held to RFC 9068 (access_token_typ).
			name: "typ JWT presented as access_token, strict IDP",
			build: func(t testing.TB, e *env) *request {
				return subjectReq(e.partner.sign(t, claims(map[string]any{"iss": partnerIssuer}), map[string]any{"typ": "JWT"}), "subject_token_type", tokenTypeAccessToken)
			},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_request", wantReason: `typ "JWT" is not one of IDP partner's access_token_typ [at+jwt] for subject_token_type access_token (RFC 9068 §2.1)`,
		},
		row{
			name: "access token presented as id_token",
			build: func(t testing.TB, e *env) *request {
				return subjectReq(e.corp.sign(t, claims(nil), map[string]any{"typ": "at+jwt"}), "subject_token_type", tokenTypeIDToken)
			},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_request", wantReason: "typ at+jwt is an access token, presented as an id_token",
		},
		jwtRow("foreign typ", corpWith(nil, map[string]any{"typ": "secevent+jwt"}), `typ "secevent+jwt" is not a subject token type`),
		jwtRow("nested JWT (cty)", corpWith(nil, map[string]any{"cty": "JWT"}), `header "cty" is refused: nested JWTs are refused`),
		jwtRow("JWE header enc", corpWith(nil, map[string]any{"enc": "A256GCM"}), `header "enc" is refused`),
		jwtRow("five-part JWE", func(testing.TB, *env) string {
			return b64([]byte(`{"alg":"RSA-OAEP","enc":"A256GCM"}`)) + ".a.b.c.d"
		}, "five-part JWE tokens are refused"),
		jwtRow("weak RSA key in the IDP's JWKS", func(t testing.TB, e *env) string {
			return e.weak.sign(t, claims(map[string]any{"iss": weakIssuer}), nil)
		}, "RSA key of 1024 bits is under 2048"),
		jwtRow("non-strict base64 (padding)", paddedClaims, "not strict base64url"),
		jwtRow("no sub", corpWith(map[string]any{"sub": nil}, nil), "token has no sub claim"),
		row{
			name: "huge subject token",
			build: func(t testing.TB, e *env) *request {
				return subjectReq(e.corp.sign(t, claims(map[string]any{"pad": strings.Repeat("x", 20<<10)}), nil))
			},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_request", wantReason: "subject_token is longer than 16384 bytes",
		},
		row{
			name: "huge request body",
			build: func(t testing.TB, e *env) *request {
				return subjectReq(e.corp.sign(t, claims(nil), nil), "padding", strings.Repeat("x", 70<<10))
			},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_request", wantReason: "request body exceeds 65536 bytes",
		},
		row{
			name: "deeply nested claims",
			build: func(t testing.TB, e *env) *request {
				c := mustJSON(claims(nil))
				deep := strings.Repeat(`{"a":`, 40) + "1" + strings.Repeat("}", 40)
				return subjectReq(e.corp.signRaw(t, fmt.Sprintf(`{"alg":"RS256","kid":%q}`, e.corp.kid), strings.TrimSuffix(c, "}")+`,"deep":`+deep+`}`))
			},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_request", wantReason: "nested deeper than",
		},
	)
	return rows
}

// TestJWTAttacks sends every JWT subject token attack to a running server.
func TestJWTAttacks(t *testing.T) {
	runRows(t, newEnv(t), jwtRows())
}
