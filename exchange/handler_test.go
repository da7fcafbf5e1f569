package exchange_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/idtx/idtx/exchange"
	"github.com/idtx/idtx/oauth"
	"github.com/idtx/idtx/store"
)

func TestExchangeSuccess(t *testing.T) {
	e := newEnv(t)
	r := e.post("/token", e.form(e.subject(nil), "audience", "billing-api", "scope", "billing:read"))
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %v", r.status, r.body)
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control = %q", r.header.Get("Cache-Control"))
	}
	if r.str("issued_token_type") != oauth.TokenTypeAccessToken || r.str("token_type") != "Bearer" || r.str("scope") != "billing:read" {
		t.Errorf("response %v", r.body)
	}
	if r.body["expires_in"] != float64(300) {
		t.Errorf("expires_in = %v, want 300", r.body["expires_in"])
	}
	claims, header := e.issued(r.str("access_token"))
	if header["typ"] != "at+jwt" || header["kid"] != e.sts.KeyID() || header["alg"] != "ES256" {
		t.Errorf("header %v", header)
	}
	want := map[string]any{
		"iss": "https://sts.test", "sub": "alice", "client_id": "demo-client", "scope": "billing:read", "idp": "corp",
		"iat": float64(t0.Unix()), "exp": float64(t0.Add(5 * time.Minute).Unix()),
	}
	for k, v := range want {
		if claims[k] != v {
			t.Errorf("claim %s = %v, want %v", k, claims[k], v)
		}
	}
	if aud, _ := claims.GetAudience(); len(aud) != 1 || aud[0] != "billing-api" {
		t.Errorf("aud = %v", aud)
	}
	if jti, _ := claims["jti"].(string); len(jti) < 16 {
		t.Errorf("jti = %q", jti)
	}
	if _, ok := claims["act"]; ok {
		t.Errorf("impersonation carries act: %v", claims["act"])
	}
}

func TestExchangeDefaultsAndTargets(t *testing.T) {
	e := newEnv(t)
	t.Run("default scopes", func(t *testing.T) {
		r := e.post("/token", e.form(e.subject(nil)))
		if r.status != 200 || r.str("scope") != "orders:read" {
			t.Fatalf("%d %v", r.status, r.body)
		}
	})
	t.Run("resource names the service", func(t *testing.T) {
		r := e.post("/token", e.form(e.subject(nil), "audience", "", "resource", "http://orders.localhost", "scope", "orders:write"))
		if r.status != 200 || r.str("scope") != "orders:write" {
			t.Fatalf("%d %v", r.status, r.body)
		}
	})
	t.Run("short names and requested jwt", func(t *testing.T) {
		f := e.form(e.subject(nil), "requested_token_type", oauth.TokenTypeJWT)
		r := e.post("/token", f)
		if r.status != 200 || r.str("issued_token_type") != oauth.TokenTypeJWT {
			t.Fatalf("%d %v", r.status, r.body)
		}
	})
	t.Run("client_secret_post", func(t *testing.T) {
		f := e.form(e.subject(nil), "client_id", "restricted-client", "client_secret", "restricted-secret")
		if r := e.post("/token", f); r.status != 200 {
			t.Fatalf("%d %v", r.status, r.body)
		}
	})
	t.Run("secret_hash bcrypt and argon2id", func(t *testing.T) {
		for _, c := range [][2]string{{"bcrypt-client", "bcrypt-secret"}, {"argon-client", "argon-secret"}} {
			for range 2 { // the second time from the verified cache
				if r := e.post("/token", e.form(e.subject(nil)), c[0], c[1]); r.status != 200 {
					t.Fatalf("%s: %d %v", c[0], r.status, r.body)
				}
			}
			r := e.post("/token", e.form(e.subject(nil)), c[0], c[1]+"x")
			expectError(t, r, 401, "invalid_client", "wrong secret")
		}
	})
}

// Every row of the error table: each OAuth error of RFC 6749 §5.2 and
// RFC 8693 §2.2.2 the flowchart gives (docs/flowchart.md).
func TestErrorTable(t *testing.T) {
	e := newEnv(t)
	good := e.subject(nil)
	tests := []struct {
		name   string
		form   url.Values
		basic  []string
		status int
		code   string
		desc   string
	}{
		{"missing subject_token", e.form("", "subject_token", ""), nil, 400, "invalid_request", "subject_token is missing"},
		{"missing subject_token_type", e.form(good, "subject_token_type", ""), nil, 400, "invalid_request", "subject_token_type is missing"},
		{"missing grant_type", e.form(good, "grant_type", ""), nil, 400, "invalid_request", "grant_type is missing"},
		{"duplicated parameter", func() url.Values {
			f := e.form(good)
			f.Add("subject_token", good)
			return f
		}(), nil, 400, "invalid_request", `parameter "subject_token" is repeated`},
		{"unknown token type URN", e.form(good, "subject_token_type", "urn:ietf:params:oauth:token-type:banana"), nil, 400, "invalid_request", "not a known token type URN"},
		{"short name is not a URN on the wire", e.form(good, "subject_token_type", "jwt"), nil, 400, "invalid_request", "not a known token type URN"},
		{"actor_token without type", e.form(good, "actor_token", good), nil, 400, "invalid_request", "actor_token_type is missing"},
		{"unsupported requested_token_type", e.form(good, "requested_token_type", oauth.TokenTypeSAML2), nil, 400, "invalid_request", "requested_token_type"},
		{"wrong grant type", e.form(good, "grant_type", "client_credentials"), nil, 400, "unsupported_grant_type", "client_credentials"},
		{"unknown client", e.form(good), []string{"nobody", "x"}, 401, "invalid_client", "client authentication failed"},
		{"wrong secret", e.form(good), []string{"demo-client", "wrong"}, 401, "invalid_client", "wrong secret"},
		{"no client authentication", e.form(good), []string{"-"}, 401, "invalid_client", "client authentication is required"},
		{"public client", e.form(good, "client_id", "demo-client"), []string{"-"}, 401, "invalid_client", "sent no credentials"},
		{"two authentication methods", e.form(good, "client_id", "demo-client", "client_secret", "demo-secret"), []string{"demo-client", "demo-secret"}, 400, "invalid_request", "more than one client authentication method"},
		{"client may not delegate", e.form(good, "actor_token", good, "actor_token_type", oauth.TokenTypeJWT), []string{"restricted-client", "restricted-secret"}, 400, "unauthorized_client", "may not use delegation"},
		{"untrusted issuer", e.form(e.subject(jwt.MapClaims{"iss": "https://evil.test"})), nil, 400, "invalid_request", `iss "https://evil.test" is not a trusted IDP`},
		{"expired subject", e.form(e.subject(jwt.MapClaims{"exp": t0.Add(-time.Second).Unix()})), nil, 400, "invalid_request", "expired at 2026-03-04T05:06:06Z"},
		{"bad signature", e.form(e.other.sign(t, e.claims(nil), map[string]any{"kid": e.corp.kid})), nil, 400, "invalid_request", "signature does not verify"},
		{"wrong audience", e.form(e.subject(jwt.MapClaims{"aud": "billing-api"})), nil, 400, "invalid_request", `aud ["billing-api"] contains none of IDP corp's audiences`},
		{"no audience or resource", e.form(good, "audience", ""), nil, 400, "invalid_request", "audience or resource is required"},
		{"unknown audience", e.form(good, "audience", "x"), nil, 400, "invalid_target", `audience "x" is not a registered service`},
		{"unknown resource", e.form(good, "audience", "", "resource", "https://nowhere.test/api"), nil, 400, "invalid_target", `resource "https://nowhere.test/api" is not a registered service`},
		{"resource not absolute", e.form(good, "audience", "", "resource", "orders"), nil, 400, "invalid_target", "not an absolute URI"},
		{"audience not allowed for client", e.form(good, "audience", "billing-api"), []string{"restricted-client", "restricted-secret"}, 400, "invalid_target", "restricted-client may not exchange for service billing-api"},
		{"scope unknown for service", e.form(good, "scope", "billing:read"), nil, 400, "invalid_scope", `scope "billing:read" is not offered by orders-api`},
		{"scope beyond the subject's", e.form(good, "audience", "narrow-api", "scope", "narrow:b"), nil, 400, "invalid_scope", "not among the subject token's scopes"},
		{"consent missing", e.form(good, "audience", "billing-api", "scope", "billing:write"), nil, 400, "consent_required", "alice of IDP corp has not consented to billing:write for billing-api"},
		{"consent missing for another user", e.form(e.subject(jwt.MapClaims{"sub": "bob"}), "audience", "billing-api"), nil, 400, "consent_required", "bob of IDP corp has not consented to billing:read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.post("/token", tt.form, tt.basic...) // basic "-": no Basic header
			expectError(t, r, tt.status, tt.code, tt.desc)
			if tt.status == 401 && len(tt.basic) == 2 && r.header.Get("WWW-Authenticate") == "" {
				t.Error("401 after Basic without WWW-Authenticate")
			}
		})
	}
}

func TestRequestLimits(t *testing.T) {
	e := newEnv(t)
	t.Run("content type", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(`{"grant_type":"x"}`))
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth("demo-client", "demo-secret")
		expectError(t, e.do(req), 400, "invalid_request", "Content-Type must be application/x-www-form-urlencoded")
	})
	t.Run("body over 64 KiB", func(t *testing.T) {
		f := e.form(e.subject(nil), "padding", strings.Repeat("a", exchange.MaxBodyBytes))
		expectError(t, e.post("/token", f), 400, "invalid_request", "request body exceeds 65536 bytes")
	})
	t.Run("token over 16 KiB", func(t *testing.T) {
		big := e.subject(jwt.MapClaims{"pad": strings.Repeat("a", exchange.MaxTokenBytes)})
		expectError(t, e.post("/token", e.form(big)), 400, "invalid_request", "subject_token is longer than 16384 bytes")
	})
	t.Run("GET is not allowed", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodGet, "/token", nil)
		if r := e.do(req); r.status != http.StatusMethodNotAllowed {
			t.Fatalf("GET /token = %d", r.status)
		}
	})
}

// rawJWT assembles a token from literal JSON, signed RS256 by kp, for
// inputs golang-jwt would never produce (duplicate members).
func rawJWT(t *testing.T, kp *keyPair, header, claims string) string {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	signing := b64([]byte(header)) + "." + b64([]byte(claims))
	sig, err := jwt.SigningMethodRS256.Sign(signing, kp.key)
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + b64(sig)
}

// Every JWT attack of docs/security.md, sent as a subject token.
func TestJWTAttacks(t *testing.T) {
	e := newEnv(t)
	c := e.claims(nil)
	b64 := base64.RawURLEncoding.EncodeToString
	unsigned := func(alg string) string {
		return b64([]byte(`{"alg":"`+alg+`","typ":"JWT"}`)) + "." + strings.Split(e.subject(nil), ".")[1] + "."
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(e.corp.key.Public()))})
	hs256 := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
		tok.Header["kid"] = e.corp.kid
		s, _ := tok.SignedString(pubPEM)
		return s
	}()
	kidTok := func(kid string) string { return e.corp.sign(t, c, map[string]any{"kid": kid}) }
	validParts := strings.Split(e.subject(nil), ".")
	claimsJSON := `{"iss":"https://idp.test","sub":"alice","aud":"idtx-sts","exp":` + itoa(t0.Add(time.Hour).Unix()) + `}`
	hdr := `{"alg":"RS256","kid":"` + e.corp.kid + `"}`
	otherClaims := e.claims(jwt.MapClaims{"iss": "https://other.test"})

	tests := []struct {
		name, token, tokenType, desc string
	}{
		{"alg none", unsigned("none"), "", `alg "none" is refused`},
		{"alg None", unsigned("None"), "", `alg "None" is refused`},
		{"alg NONE", unsigned("NONE"), "", `alg "NONE" is refused`},
		{"alg nOnE", unsigned("nOnE"), "", `alg "nOnE" is refused`},
		{"RS256 to HS256 key confusion", hs256, "", `alg "HS256" is not allowed for IDP corp`},
		{"kid path traversal", kidTok("../../dev/null"), "", `kid "../../dev/null" is not in the IDP's key set`},
		{"kid SQL injection", kidTok("' OR '1'='1"), "", `is not in the IDP's key set`},
		{"kid shell injection", kidTok("$(touch /tmp/pwned)"), "", `is not in the IDP's key set`},
		{"jku header", e.corp.sign(t, c, map[string]any{"jku": "https://evil.test/jwks"}), "", `header "jku" is refused`},
		{"x5u header", e.corp.sign(t, c, map[string]any{"x5u": "https://evil.test/cert"}), "", `header "x5u" is refused`},
		{"embedded jwk", e.corp.sign(t, c, map[string]any{"jwk": map[string]any{"kty": "RSA"}}), "", `header "jwk" is refused`},
		{"embedded x5c", e.corp.sign(t, c, map[string]any{"x5c": []string{"MIIB"}}), "", `header "x5c" is refused`},
		{"crit header", e.corp.sign(t, c, map[string]any{"crit": []string{"exp"}, "exp": 1}), "", `header "crit" is refused`},
		{"duplicate alg in header", rawJWT(t, e.corp, `{"alg":"none","alg":"RS256","kid":"`+e.corp.kid+`"}`, claimsJSON), "", `header: duplicate member "alg"`},
		{"duplicate aud in claims", rawJWT(t, e.corp, hdr, strings.TrimSuffix(claimsJSON, "}")+`,"AUD":"billing-api"}`), "", `claims: duplicate member "AUD"`},
		{"duplicate nested member", rawJWT(t, e.corp, hdr, strings.TrimSuffix(claimsJSON, "}")+`,"act":{"sub":"a","sub":"b"}}`), "", `duplicate member "sub"`},
		{"missing exp", e.subject(jwt.MapClaims{"exp": nil}), "", "exp is required"},
		{"nbf in the future", e.subject(jwt.MapClaims{"nbf": t0.Add(time.Minute).Unix()}), "", "not valid before 2026-03-04T05:07:07Z"},
		{"iat in the future", e.subject(jwt.MapClaims{"iat": t0.Add(time.Minute).Unix()}), "", "issued in the future"},
		{"token for another service", e.subject(jwt.MapClaims{"aud": []string{"orders-api", "billing-api"}}), "", "contains none of IDP corp's audiences"},
		{"no aud", e.subject(jwt.MapClaims{"aud": nil}), "", "aud is required"},
		{"issuer mix-up: other IDP's key", e.other.sign(t, c, nil), "", "is not in the IDP's key set"},
		{"issuer mix-up: other IDP's key under corp's kid", e.other.sign(t, c, map[string]any{"kid": e.corp.kid}), "", "signature does not verify with IDP corp's key"},
		{"typ JWT as access token, IDP strict", e.other.sign(t, otherClaims, nil), oauth.TokenTypeAccessToken, `typ "JWT" is not one of IDP other's access_token_typ [at+jwt] for subject_token_type access_token`},
		{"no typ as access token, IDP strict", e.other.sign(t, otherClaims, map[string]any{"typ": nil}), oauth.TokenTypeAccessToken, `typ "" is not one of IDP other's access_token_typ [at+jwt]`},
		{"access token as ID token", e.corp.sign(t, c, map[string]any{"typ": "at+jwt"}), oauth.TokenTypeIDToken, "typ at+jwt is an access token, presented as an id_token"},
		{"unknown typ", e.corp.sign(t, c, map[string]any{"typ": "logout+jwt"}), "", `typ "logout+jwt" is not a subject token type`},
		{"nested JWT", e.corp.sign(t, c, map[string]any{"cty": "JWT"}), "", `header "cty" is refused`},
		{"five-part JWE", "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d", "", "five-part JWE tokens are refused"},
		{"padded base64", validParts[0] + "=." + validParts[1] + "." + validParts[2], "", "not strict base64url"},
		{"standard base64 alphabet", strings.NewReplacer("-", "+", "_", "/").Replace(validParts[0]) + "+." + validParts[1] + "." + validParts[2], "", "not strict base64url"},
		{"not a JWT", "opaque-token-value", "", "not a compact JWT"},
		{"no sub", e.subject(jwt.MapClaims{"sub": nil}), "", "token has no sub claim"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := e.form(tt.token)
			if tt.tokenType != "" {
				f.Set("subject_token_type", tt.tokenType)
			}
			expectError(t, e.post("/token", f), 400, "invalid_request", tt.desc)
		})
	}

	t.Run("leeway of 30s for nbf and iat", func(t *testing.T) {
		tok := e.subject(jwt.MapClaims{"nbf": t0.Add(20 * time.Second).Unix(), "iat": t0.Add(20 * time.Second).Unix()})
		if r := e.post("/token", e.form(tok)); r.status != 200 {
			t.Fatalf("%d %v", r.status, r.body)
		}
	})
	t.Run("no leeway for exp", func(t *testing.T) {
		tok := e.subject(jwt.MapClaims{"exp": t0.Add(-5 * time.Second).Unix()})
		expectError(t, e.post("/token", e.form(tok)), 400, "invalid_request", "expired at")
	})
	// Real IDPs' access tokens: at+jwt (RFC 9068), JWT (Keycloak, Entra
	// ID, Auth0), none (Dex); typ compared as RFC 7515 §4.1.9 says.
	for _, typ := range []any{"at+jwt", "JWT", nil, "application/AT+JWT", "jwt"} {
		t.Run(fmt.Sprintf("typ %v as access_token is accepted", typ), func(t *testing.T) {
			tok := e.corp.sign(t, c, map[string]any{"typ": typ})
			if r := e.post("/token", e.form(tok, "subject_token_type", oauth.TokenTypeAccessToken)); r.status != 200 {
				t.Fatalf("%d %v", r.status, r.body)
			}
		})
	}
	t.Run("at+jwt as access_token, IDP strict", func(t *testing.T) {
		tok := e.other.sign(t, otherClaims, map[string]any{"typ": "at+jwt"})
		if r := e.post("/token", e.form(tok, "subject_token_type", oauth.TokenTypeAccessToken)); r.status != 200 {
			t.Fatalf("%d %v", r.status, r.body)
		}
	})
}

func TestWeakRSAKeyRefused(t *testing.T) {
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	var weakPair *keyPair
	e := newEnvWith(t, store.NewMemory(), func(yaml string, files map[string][]byte) string {
		weakPair = newKeyPair(t, "RS256", weak)
		files["corp.jwks"] = weakPair.jwks
		return yaml
	})
	tok := weakPair.sign(t, e.claims(nil), nil)
	expectError(t, e.post("/token", e.form(tok)), 400, "invalid_request", "RSA key of 1024 bits is under 2048")
}

func TestLifetimeNeverExceedsSubject(t *testing.T) {
	e := newEnv(t)
	exp := t0.Add(90 * time.Second)
	r := e.post("/token", e.form(e.subject(jwt.MapClaims{"exp": exp.Unix()})))
	if r.status != 200 || r.body["expires_in"] != float64(90) {
		t.Fatalf("%d %v", r.status, r.body)
	}
	claims, _ := e.issued(r.str("access_token"))
	if claims["exp"] != float64(exp.Unix()) {
		t.Fatalf("exp = %v, want the subject's %d", claims["exp"], exp.Unix())
	}
}

func TestScopeWithinSubject(t *testing.T) {
	e := newEnv(t)
	r := e.post("/token", e.form(e.subject(nil), "audience", "narrow-api", "scope", "narrow:a"))
	if r.status != 200 || r.str("scope") != "narrow:a" {
		t.Fatalf("%d %v", r.status, r.body)
	}
	claims, _ := e.issued(r.str("access_token"))
	if claims["exp"] != float64(t0.Add(time.Hour).Unix()) {
		t.Fatalf("exp = %v: the subject's exp bounds the 1h lifetime", claims["exp"])
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
