package idp_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/golang-jwt/jwt/v5"

	"github.com/idtx/idtx/idp"
	"github.com/idtx/idtx/idp/idptest"
	"github.com/idtx/idtx/mockidp"
	"github.com/idtx/idtx/oauth"
)

const confIssuer = "https://idp.test"

func jwtClaims(tok idptest.Token, aud string) jwt.MapClaims {
	c := jwt.MapClaims{"iss": confIssuer, "sub": tok.Subject, "aud": aud,
		"iat": tok.IssuedAt.Unix(), "exp": tok.Expiry.Unix()}
	if tok.Issuer != "" {
		c["iss"] = tok.Issuer
	}
	if tok.Audience != "" {
		c["aud"] = tok.Audience
	}
	if !tok.NotBefore.IsZero() {
		c["nbf"] = tok.NotBefore.Unix()
	}
	return c
}

func (s *signer) sign(t testing.TB, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
	tok.Header["kid"] = s.kid
	out, err := tok.SignedString(s.key)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// pooledKeys are RSA keys made once: generating 2048-bit keys per case
// would be most of the suite's time.
var pooledKeys = sync.OnceValue(func() []*rsa.PrivateKey {
	keys := make([]*rsa.PrivateKey, 3)
	for i := range keys {
		keys[i], _ = rsa.GenerateKey(rand.Reader, 2048)
	}
	return keys
})

func pooledSigner(i int) *signer {
	key := pooledKeys()[i]
	jwk, _ := idp.PublicJWK(key.Public())
	s := &signer{key: key, kid: idp.Thumbprint(jwk)}
	jwk["kid"], jwk["alg"] = s.kid, "RS256"
	s.jwks, _ = json.Marshal(map[string]any{"keys": []any{jwk}})
	return s
}

// jwtKit is a jwt IDP: with static keys, or a remote JWKS that can go down.
func jwtKit(t *testing.T, remote bool) *idptest.Kit {
	current, attacker := pooledSigner(0), pooledSigner(1)
	var keys idp.KeySet
	var down func(testing.TB)
	if remote {
		srv := newJWKSServer(t, current.jwks)
		var err error
		if keys, err = idp.RemoteKeys(t.Context(), srv.URL, srv.Client()); err != nil {
			t.Fatal(err)
		}
		// The IDP rotates to a key the STS has not fetched, and goes down.
		down = func(t testing.TB) { srv.Close(); current = pooledSigner(2) }
	} else {
		var err error
		if keys, err = idp.StaticKeys(current.jwks); err != nil {
			t.Fatal(err)
		}
	}
	k := &idptest.Kit{
		Validator: validator(t, keys), TokenType: oauth.TokenTypeJWT, Now: now, Audience: "sts",
		Mint: func(t testing.TB, tok idptest.Token) string { return current.sign(t, jwtClaims(tok, "sts")) },
		Unsigned: func(t testing.TB, tok idptest.Token) string {
			b, _ := json.Marshal(jwtClaims(tok, "sts"))
			return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + base64.RawURLEncoding.EncodeToString(b) + "."
		},
		Forge: func(t testing.TB, tok idptest.Token) string {
			// The attacker's key under the IDP's kid.
			a := *attacker
			a.kid = current.kid
			return a.sign(t, jwtClaims(tok, "sts"))
		},
		Tamper: func(t testing.TB, token string) string {
			parts := strings.Split(token, ".")
			raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
			parts[1] = base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(raw), `"alice"`, `"admin"`, 1)))
			return strings.Join(parts, ".")
		},
		Down: down,
	}
	return k
}

func TestConformanceJWT(t *testing.T) {
	t.Run("static keys", func(t *testing.T) { idptest.Run(t, func(t *testing.T) *idptest.Kit { return jwtKit(t, false) }) })
	t.Run("remote keys", func(t *testing.T) { idptest.Run(t, func(t *testing.T) *idptest.Kit { return jwtKit(t, true) }) })
}

func samlOptions(tok idptest.Token) mockidp.TokenOptions {
	o := mockidp.TokenOptions{Issuer: tok.Issuer, Sub: tok.Subject, Aud: tok.Audience, Now: tok.IssuedAt, TTL: tok.Expiry.Sub(tok.IssuedAt)}
	if !tok.NotBefore.IsZero() { // the mock's NotBefore is its IssueInstant
		o.Now, o.TTL = tok.NotBefore, tok.Expiry.Sub(tok.NotBefore)
	}
	return o
}

func TestConformanceSAML(t *testing.T) {
	idptest.Run(t, func(t *testing.T) *idptest.Kit {
		enc := base64.RawURLEncoding.EncodeToString
		return &idptest.Kit{
			Validator: samlValidator(t, false), TokenType: oauth.TokenTypeSAML2, Now: samlNow, Audience: "idtx-sts",
			Mint: func(t testing.TB, tok idptest.Token) string {
				s, err := mockidp.SAML(samlOptions(tok), 2)
				if err != nil {
					t.Fatal(err)
				}
				return s
			},
			Unsigned: func(t testing.TB, tok idptest.Token) string {
				return enc([]byte(xmlOf(t, unsignedAssertion(t, samlOptions(tok)))))
			},
			Forge: func(t testing.TB, tok idptest.Token) string {
				a := unsignedAssertion(t, samlOptions(tok))
				foreignSAMLSigner(t).sign(t, a, false)
				return enc([]byte(xmlOf(t, a)))
			},
			Tamper: func(t testing.TB, token string) string {
				raw, _ := base64.RawURLEncoding.DecodeString(token)
				doc := etree.NewDocument()
				if err := doc.ReadFromBytes(raw); err != nil {
					t.Fatal(err)
				}
				doc.FindElement("//NameID").SetText("admin")
				s, _ := doc.WriteToString()
				return enc([]byte(s))
			},
		}
	})
}

// introspectionServer is an RFC 7662 endpoint over a table of issued
// tokens, requiring client_secret_basic.
type introspectionServer struct {
	*httptest.Server
	mu     sync.Mutex
	issued map[string]map[string]any
	calls  int
	// answer, when set, replaces the endpoint's behaviour.
	answer func(w http.ResponseWriter, r *http.Request)
}

func newIntrospectionServer(t testing.TB) *introspectionServer {
	s := &introspectionServer{issued: map[string]map[string]any{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.calls++
		answer := s.answer
		s.mu.Unlock()
		if answer != nil {
			answer(w, r)
			return
		}
		if id, secret, ok := r.BasicAuth(); !ok || id != "idtx" || secret != "s3cret%2F" { // "s3cret/" form-encoded
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.Method != http.MethodPost || r.ParseForm() != nil || r.PostForm.Get("token_type_hint") != "access_token" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		claims, ok := s.issued[r.PostForm.Get("token")]
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if !ok {
			w.Write([]byte(`{"active":false}`))
			return
		}
		out := map[string]any{"active": true, "token_type": "Bearer"}
		for k, v := range claims {
			out[k] = v
		}
		json.NewEncoder(w).Encode(out)
	}))
	t.Cleanup(s.Close)
	return s
}

// issue records a token with claims and returns it.
func (s *introspectionServer) issue(prefix string, claims map[string]any) string {
	b := make([]byte, 16)
	rand.Read(b)
	tok := prefix + base64.RawURLEncoding.EncodeToString(b)
	s.mu.Lock()
	s.issued[tok] = claims
	s.mu.Unlock()
	return tok
}

func (s *introspectionServer) setAnswer(f func(w http.ResponseWriter, r *http.Request)) {
	s.mu.Lock()
	s.answer = f
	s.mu.Unlock()
}

func (s *introspectionServer) callCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func introspectionValidator(t testing.TB, endpoint string, clock func() time.Time, mod ...func(*idp.IntrospectionConfig)) *idp.Introspection {
	cfg := idp.IntrospectionConfig{
		Name: "internal", Issuer: confIssuer, Endpoint: endpoint, ClientID: "idtx", ClientSecret: "s3cret/",
		TokenPrefix: "int_", Audiences: []string{"sts"}, CacheTTL: time.Minute, ClockSkew: 30 * time.Second, Clock: clock,
	}
	for _, m := range mod {
		m(&cfg)
	}
	v, err := idp.NewIntrospection(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func introspectionClaims(tok idptest.Token) map[string]any {
	c := map[string]any(jwtClaims(tok, "sts"))
	return c
}

func TestConformanceIntrospection(t *testing.T) {
	idptest.Run(t, func(t *testing.T) *idptest.Kit {
		srv := newIntrospectionServer(t)
		return &idptest.Kit{
			Validator: introspectionValidator(t, srv.URL, func() time.Time { return now }),
			TokenType: oauth.TokenTypeAccessToken, Now: now, Audience: "sts",
			Mint: func(t testing.TB, tok idptest.Token) string { return srv.issue("int_", introspectionClaims(tok)) },
			Forge: func(t testing.TB, tok idptest.Token) string {
				return "int_never-issued-" + base64.RawURLEncoding.EncodeToString([]byte(tok.Subject))
			},
			Tamper: func(t testing.TB, token string) string {
				return token[:len(token)-1] + map[bool]string{true: "B", false: "A"}[strings.HasSuffix(token, "A")]
			},
			Down: func(testing.TB) { srv.Close() },
		}
	})
}

// The mock internal IDP's own endpoint passes the suite too: an IDP
// validating the tokens it dispensed.
func TestConformanceMockInternal(t *testing.T) {
	idptest.Run(t, func(t *testing.T) *idptest.Kit {
		srv := httptest.NewServer(mockidp.Handler(func() time.Time { return now }))
		t.Cleanup(srv.Close)
		v, err := idp.NewIntrospection(idp.IntrospectionConfig{
			Name: mockidp.InternalName, Issuer: mockidp.InternalIssuer, Endpoint: srv.URL + mockidp.IntrospectPath,
			ClientID: mockidp.InternalClientID, ClientSecret: mockidp.InternalClientSecret, TokenPrefix: mockidp.InternalPrefix,
			Audiences: []string{"idtx-sts"}, CacheTTL: time.Minute, Clock: func() time.Time { return now },
		})
		if err != nil {
			t.Fatal(err)
		}
		opaque := func(t testing.TB, tok idptest.Token) string {
			o := mockidp.TokenOptions{Issuer: tok.Issuer, Sub: tok.Subject, Aud: tok.Audience, Now: tok.IssuedAt, TTL: tok.Expiry.Sub(tok.IssuedAt)}
			if !tok.NotBefore.IsZero() {
				o.Claims = map[string]any{"nbf": tok.NotBefore.Unix()}
			}
			s, err := mockidp.Opaque(o)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		return &idptest.Kit{
			Validator: v, TokenType: oauth.TokenTypeAccessToken, Now: now, Audience: "idtx-sts",
			Mint: opaque,
			Forge: func(t testing.TB, tok idptest.Token) string {
				signed, _, _ := strings.Cut(opaque(t, tok), ".")
				return signed + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 32))
			},
			Tamper: func(t testing.TB, token string) string {
				signed, mac, _ := strings.Cut(token, ".")
				raw, _ := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(signed, mockidp.InternalPrefix))
				raw = []byte(strings.Replace(string(raw), `"alice"`, `"admin"`, 1))
				return mockidp.InternalPrefix + base64.RawURLEncoding.EncodeToString(raw) + "." + mac
			},
			Down: func(testing.TB) { srv.Close() },
		}
	})
}
