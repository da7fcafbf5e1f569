package idp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/idp"
	"github.com/idtx/idtx/internal/fetch"
	"github.com/idtx/idtx/oauth"
)

func goodAnswer() map[string]any {
	return map[string]any{"iss": confIssuer, "sub": "alice", "aud": []any{"sts", "other"}, "exp": now.Add(time.Hour).Unix(),
		"scope": "orders:read openid", "client_id": "web", "realm_access": map[string]any{"roles": []any{"ops"}}}
}

// Every refusal of an RFC 7662 answer, with its category and exact reason.
func TestIntrospectionAnswers(t *testing.T) {
	with := func(over map[string]any) map[string]any {
		a := goodAnswer()
		for k, v := range over {
			if v == nil {
				delete(a, k)
			} else {
				a[k] = v
			}
		}
		return a
	}
	tests := []struct {
		name     string
		answer   map[string]any
		category error
		want     string
	}{
		{"no sub", with(map[string]any{"sub": nil}), idp.ErrInvalid, "invalid token: the introspection answer of IDP internal has no sub: it must name the user"},
		{"no exp", with(map[string]any{"exp": nil}), idp.ErrInvalid, "invalid token: the introspection answer of IDP internal has no exp: an exchanged token may not outlive its subject token"},
		{"expired", with(map[string]any{"exp": now.Add(-time.Second).Unix()}), idp.ErrInvalid, "invalid token: expired at 2025-12-31T23:59:59Z (now 2026-01-01T00:00:00Z)"},
		{"nbf ahead", with(map[string]any{"nbf": now.Add(time.Minute).Unix()}), idp.ErrInvalid, "invalid token: not valid before 2026-01-01T00:01:00Z (now 2026-01-01T00:00:00Z)"},
		{"another aud", with(map[string]any{"aud": "billing"}), idp.ErrInvalid, `invalid token: aud ["billing"] contains none of IDP internal's audiences ["sts"]`},
		{"another iss", with(map[string]any{"iss": "https://evil.example"}), idp.ErrUntrusted, `untrusted issuer: the introspection answer's iss "https://evil.example" is not IDP internal's issuer "https://idp.test"`},
		{"Dex refresh token", with(map[string]any{"token_use": "refresh_token"}), idp.ErrInvalid, "invalid token: IDP internal says this is a refresh token; exchange an access token"},
		{"Keycloak refresh token", with(map[string]any{"typ": "Refresh"}), idp.ErrInvalid, "invalid token: IDP internal says this is a refresh token; exchange an access token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newIntrospectionServer(t)
			v := introspectionValidator(t, srv.URL, func() time.Time { return now })
			_, err := v.Validate(t.Context(), srv.issue("int_", tt.answer), oauth.TokenTypeAccessToken)
			if !errors.Is(err, tt.category) || fmt.Sprint(err) != tt.want {
				t.Fatalf("Validate = %v\nwant     %s", err, tt.want)
			}
		})
	}
	t.Run("no aud: the endpoint's answer to the STS's credentials binds it", func(t *testing.T) {
		srv := newIntrospectionServer(t)
		v := introspectionValidator(t, srv.URL, func() time.Time { return now })
		if _, err := v.Validate(t.Context(), srv.issue("int_", with(map[string]any{"aud": nil})), oauth.TokenTypeAccessToken); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("inactive", func(t *testing.T) {
		srv := newIntrospectionServer(t)
		v := introspectionValidator(t, srv.URL, func() time.Time { return now })
		_, err := v.Validate(t.Context(), "int_unknown", oauth.TokenTypeAccessToken)
		if want := "invalid token: IDP internal says the token is not active (RFC 7662 §2.2: expired, revoked or never issued)"; !errors.Is(err, idp.ErrInvalid) || err.Error() != want {
			t.Fatalf("Validate = %v", err)
		}
	})
}

// An endpoint that does not answer usefully is the IDP being unavailable
// (temporarily_unavailable), never a verdict on the token.
func TestIntrospectionUnavailable(t *testing.T) {
	tests := []struct {
		name   string
		answer func(w http.ResponseWriter, r *http.Request)
		want   string
	}{
		{"500", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }, "idp unavailable: introspection endpoint of IDP internal answered status 500"},
		{"503", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }, "idp unavailable: introspection endpoint of IDP internal answered status 503"},
		{"401", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(401) }, "idp unavailable: introspection endpoint of IDP internal refused the STS's client credentials (status 401): check client_id and client_secret"},
		{"redirect not followed", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://evil.example/", http.StatusTemporaryRedirect)
		}, "idp unavailable: introspection endpoint of IDP internal answered status 307"},
		{"garbage", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>")) }, "idp unavailable: introspection endpoint of IDP internal: the answer is not a JSON object: invalid JSON: invalid character '<' at start of value"},
		{"duplicate active", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"active":false,"active":true}`)) }, `idp unavailable: introspection endpoint of IDP internal: the answer is not a JSON object: duplicate member "active"`},
		{"active and ACTIVE", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"active":false,"ACTIVE":true}`)) }, `idp unavailable: introspection endpoint of IDP internal: the answer is not a JSON object: duplicate member "ACTIVE"`},
		{"sub and SUB after an object in an array", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"active":true,"sub":"alice","x":[{"a":1}],"SUB":"admin","y":""}`))
		}, `idp unavailable: introspection endpoint of IDP internal: the answer is not a JSON object: duplicate member "SUB"`},
		{"no active", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"sub":"alice"}`)) }, "idp unavailable: introspection endpoint of IDP internal answered without a boolean active (RFC 7662 §2.2)"},
		{"active as a string", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"active":"true"}`)) }, "idp unavailable: introspection endpoint of IDP internal answered without a boolean active (RFC 7662 §2.2)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newIntrospectionServer(t)
			srv.setAnswer(tt.answer)
			v := introspectionValidator(t, srv.URL, func() time.Time { return now })
			_, err := v.Validate(t.Context(), "int_x", oauth.TokenTypeAccessToken)
			if !errors.Is(err, idp.ErrUnavailable) || fmt.Sprint(err) != tt.want {
				t.Fatalf("Validate = %v\nwant     %s", err, tt.want)
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		srv := newIntrospectionServer(t)
		srv.Close()
		_, err := introspectionValidator(t, srv.URL, func() time.Time { return now }).Validate(t.Context(), "int_x", oauth.TokenTypeAccessToken)
		if !errors.Is(err, idp.ErrUnavailable) || !strings.Contains(err.Error(), "introspection endpoint of IDP internal is unreachable") {
			t.Fatalf("Validate = %v", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		release := make(chan struct{})
		srv := newIntrospectionServer(t)
		srv.setAnswer(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		})
		defer close(release)
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		_, err := introspectionValidator(t, srv.URL, func() time.Time { return now }).Validate(ctx, "int_x", oauth.TokenTypeAccessToken)
		if !errors.Is(err, idp.ErrUnavailable) || !strings.Contains(err.Error(), "did not answer in time") {
			t.Fatalf("Validate = %v", err)
		}
	})
}

// Positive answers are cached until exp or cache_ttl, whichever is
// sooner; negative answers are not cached.
func TestIntrospectionCache(t *testing.T) {
	srv := newIntrospectionServer(t)
	clock := now
	v := introspectionValidator(t, srv.URL, func() time.Time { return clock })
	long := srv.issue("int_", goodAnswer())
	short := srv.issue("int_", map[string]any{"iss": confIssuer, "sub": "bob", "aud": "sts", "exp": now.Add(20 * time.Second).Unix()})
	check := func(token string, wantCalls int, wantErr string) {
		t.Helper()
		_, err := v.Validate(t.Context(), token, oauth.TokenTypeAccessToken)
		if (err == nil) != (wantErr == "") || (err != nil && !strings.Contains(err.Error(), wantErr)) {
			t.Fatalf("Validate = %v, want %q", err, wantErr)
		}
		if got := srv.callCount(); got != wantCalls {
			t.Fatalf("calls = %d, want %d", got, wantCalls)
		}
	}
	check(long, 1, "")
	check(long, 1, "") // cached
	clock = now.Add(59 * time.Second)
	check(long, 1, "")
	clock = now.Add(60 * time.Second) // cache_ttl over: asked again
	check(long, 2, "")

	clock = now
	check(short, 3, "")
	clock = now.Add(19 * time.Second)
	check(short, 3, "")
	clock = now.Add(20 * time.Second) // its exp comes before cache_ttl
	check(short, 4, "expired at")

	check("int_unknown", 5, "not active")
	check("int_unknown", 6, "not active") // not cached
}

// Claims from an introspection answer: mapped, and the answer's own
// members kept (active dropped); may_act read.
func TestIntrospectionIdentity(t *testing.T) {
	srv := newIntrospectionServer(t)
	v := introspectionValidator(t, srv.URL, func() time.Time { return now }, func(c *idp.IntrospectionConfig) {
		c.Claims = idp.ClaimMap{"groups": "realm_access.roles"}
	})
	a := goodAnswer()
	a["may_act"] = map[string]any{"sub": "gateway"}
	id, err := v.Validate(t.Context(), srv.issue("int_", a), oauth.TokenTypeAccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if id.IDP != "internal" || id.Subject != "alice" || !id.Expiry.Equal(now.Add(time.Hour)) || !slices.Equal(id.Scopes, []string{"orders:read", "openid"}) ||
		fmt.Sprint(id.Claims["groups"]) != "[ops]" || id.Claims["client_id"] != "web" || id.MayAct["sub"] != "gateway" {
		t.Errorf("identity %+v", id)
	}
	if _, ok := id.Claims["active"]; ok {
		t.Error("active is kept as a claim")
	}
}

func TestIntrospectionTokenTypes(t *testing.T) {
	srv := newIntrospectionServer(t)
	v := introspectionValidator(t, srv.URL, func() time.Time { return now })
	tok := srv.issue("int_", goodAnswer())
	tests := []struct{ token, tokenType, want string }{
		{tok, oauth.TokenTypeIDToken, "invalid token: IDP internal is an introspection IDP, and an id_token is not introspected (RFC 7662 answers for access tokens)"},
		{tok, oauth.TokenTypeRefreshToken, "untrusted issuer: token type urn:ietf:params:oauth:token-type:refresh_token is not accepted by introspection IDP internal"},
		{tok, oauth.TokenTypeJWT, "malformed token: presented as a jwt, but the token is opaque; send it as access_token"},
		{"zz_" + tok, oauth.TokenTypeAccessToken, `untrusted issuer: the token does not start with IDP internal's token_prefix "int_"`},
	}
	for _, tt := range tests {
		if _, err := v.Validate(t.Context(), tt.token, tt.tokenType); fmt.Sprint(err) != tt.want {
			t.Errorf("Validate(%s) = %v\nwant %s", tt.tokenType, err, tt.want)
		}
	}
}

// Discovery finds introspection_endpoint in RFC 8414 metadata, or in
// OpenID Connect metadata; the metadata's issuer must be the IDP's.
func TestIntrospectionDiscovery(t *testing.T) {
	for _, wellKnown := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		t.Run(wellKnown, func(t *testing.T) {
			intro := newIntrospectionServer(t)
			var issuer string
			meta := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != wellKnown {
					http.NotFound(w, r)
					return
				}
				fmt.Fprintf(w, `{"issuer":%q,"introspection_endpoint":%q}`, issuer, intro.URL)
			}))
			defer meta.Close()
			issuer = meta.URL
			v := introspectionValidator(t, "", func() time.Time { return now }, func(c *idp.IntrospectionConfig) {
				c.Issuer, c.Discovery = issuer, true
			})
			a := goodAnswer()
			a["iss"] = issuer
			if _, err := v.Validate(t.Context(), intro.issue("int_", a), oauth.TokenTypeAccessToken); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("issuer mismatch", func(t *testing.T) {
		meta := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `{"issuer":"https://evil.example","introspection_endpoint":"https://evil.example/introspect"}`)
		}))
		defer meta.Close()
		v := introspectionValidator(t, "", func() time.Time { return now }, func(c *idp.IntrospectionConfig) {
			c.Issuer, c.Discovery = meta.URL, true
		})
		_, err := v.Validate(t.Context(), "int_x", oauth.TokenTypeAccessToken)
		if !errors.Is(err, idp.ErrUnavailable) || !strings.Contains(err.Error(), `names issuer "https://evil.example"`) {
			t.Fatalf("Validate = %v", err)
		}
	})
}

// The registry sends each token to exactly one IDP: SAML by Issuer, opaque
// by token_prefix or to the single introspection IDP, JWTs by iss, and a
// JWT whose iss names an introspection IDP to its endpoint.
func TestRegistryRouting(t *testing.T) {
	a, b := newIntrospectionServer(t), newIntrospectionServer(t)
	s := pooledSigner(0)
	keys, _ := idp.StaticKeys(s.jwks)
	local, _ := idp.NewJWT(idp.JWTConfig{Name: "local", Issuer: "https://local.test", Audiences: []string{"sts"}, Algorithms: []string{"RS256"},
		Clock: func() time.Time { return now }, Keys: keys})
	ia := introspectionValidator(t, a.URL, func() time.Time { return now }, func(c *idp.IntrospectionConfig) { c.Name, c.Issuer, c.TokenPrefix = "a", "https://a.test", "a_" })
	ib := introspectionValidator(t, b.URL, func() time.Time { return now }, func(c *idp.IntrospectionConfig) { c.Name, c.Issuer, c.TokenPrefix = "b", "https://b.test", "b_" })
	r := idp.NewRegistry()
	for _, v := range []idp.Validator{local, ia, ib} {
		if err := r.Add(v); err != nil {
			t.Fatal(err)
		}
	}
	answer := func(iss string) map[string]any {
		x := goodAnswer()
		x["iss"] = iss
		return x
	}
	validate := func(token, tokenType string) (*idp.Identity, error) { return r.Validate(t.Context(), token, tokenType) }

	id, err := validate(b.issue("b_", answer("https://b.test")), oauth.TokenTypeAccessToken)
	if err != nil || id.IDP != "b" || a.callCount() != 0 || b.callCount() != 1 {
		t.Fatalf("b_ token: %v %v, calls a=%d b=%d", id, err, a.callCount(), b.callCount())
	}
	// A JWT whose iss names introspection IDP a is introspected there,
	// not verified locally (a's endpoint knows the exact string).
	jwtForA := s.sign(t, jwt.MapClaims{"iss": "https://a.test", "sub": "alice", "aud": "sts", "exp": now.Unix() + 60})
	a.mu.Lock()
	a.issued[jwtForA] = answer("https://a.test")
	a.mu.Unlock()
	if id, err := validate(jwtForA, oauth.TokenTypeJWT); err != nil || id.IDP != "a" || a.callCount() != 1 || b.callCount() != 1 {
		t.Fatalf("JWT of a: %v %v, calls a=%d b=%d", id, err, a.callCount(), b.callCount())
	}
	// The same JWT presented as an id_token: an active answer does not say
	// it is one, and a is not asked.
	if _, err := validate(jwtForA, oauth.TokenTypeIDToken); fmt.Sprint(err) != "invalid token: IDP a is an introspection IDP, and an id_token is not introspected (RFC 7662 answers for access tokens)" || a.callCount() != 1 {
		t.Fatalf("JWT of a as an id_token: %v, calls a=%d", err, a.callCount())
	}
	// A JWT of the jwt IDP never reaches an endpoint.
	if id, err := validate(s.sign(t, jwt.MapClaims{"iss": "https://local.test", "sub": "alice", "aud": "sts", "exp": now.Unix() + 60}), oauth.TokenTypeAccessToken); err != nil || id.IDP != "local" || a.callCount()+b.callCount() != 2 {
		t.Fatalf("local JWT: %v %v", id, err)
	}
	refusals := []struct{ token, tokenType, want string }{
		{"c_opaque", oauth.TokenTypeAccessToken, `untrusted issuer: an opaque token that starts with no introspection IDP's token_prefix ("a_", "b_")`},
		{"anything", oauth.TokenTypeRefreshToken, "untrusted issuer: a refresh_token is for the authorization server that issued it only (RFC 6749 §1.5); exchange an access token"},
		{"c_opaque", oauth.TokenTypeJWT, "malformed token: not a compact JWT (expected three dot-separated parts)"},
	}
	for _, tt := range refusals {
		if _, err := validate(tt.token, tt.tokenType); fmt.Sprint(err) != tt.want {
			t.Errorf("Validate(%q) = %v\nwant %s", tt.token, err, tt.want)
		}
	}
	if a.callCount()+b.callCount() != 2 {
		t.Errorf("a refused token reached an endpoint")
	}

	t.Run("single introspection IDP without prefix takes opaque tokens", func(t *testing.T) {
		r := idp.NewRegistry()
		only := introspectionValidator(t, a.URL, func() time.Time { return now }, func(c *idp.IntrospectionConfig) { c.Name, c.Issuer, c.TokenPrefix = "a", "https://a.test", "" })
		r.Add(only)
		if id, err := r.Validate(t.Context(), a.issue("x", answer("https://a.test")), oauth.TokenTypeAccessToken); err != nil || id.IDP != "a" {
			t.Fatalf("%v %v", id, err)
		}
		// A JWE is opaque to the STS: zitadel/oidc's access tokens are.
		jwe := "eyJhbGciOiJBMjU2R0NNS1ciLCJlbmMiOiJBMjU2R0NNIn0.k.iv.ct.tag"
		a.mu.Lock()
		a.issued[jwe] = answer("https://a.test")
		a.mu.Unlock()
		if id, err := r.Validate(t.Context(), jwe, oauth.TokenTypeAccessToken); err != nil || id.IDP != "a" {
			t.Fatalf("a JWE: %v %v", id, err)
		}
	})
	t.Run("no introspection IDP", func(t *testing.T) {
		r := idp.NewRegistry()
		r.Add(local)
		_, err := r.Validate(t.Context(), "opaque", oauth.TokenTypeAccessToken)
		if want := "malformed token: not a compact JWT (expected three dot-separated parts): no introspection IDP is configured for opaque access tokens"; fmt.Sprint(err) != want {
			t.Fatalf("Validate = %v", err)
		}
	})
	t.Run("ambiguous setups refused", func(t *testing.T) {
		mk := func(name, prefix string) idp.Validator {
			return introspectionValidator(t, a.URL, nil, func(c *idp.IntrospectionConfig) { c.Name, c.Issuer, c.TokenPrefix = name, "https://"+name, prefix })
		}
		for _, tt := range []struct {
			first, second idp.Validator
			want          string
		}{
			{mk("x", ""), mk("y", "y_"), "idp y: introspection IDPs x and y need distinct token_prefix values"},
			{mk("x", "ab"), mk("y", "abc"), `idp y: token_prefix "abc" overlaps IDP x's "ab"`},
			{mk("x", "x_"), local, ""},
		} {
			r := idp.NewRegistry()
			if err := r.Add(tt.first); err != nil {
				t.Fatal(err)
			}
			if err := r.Add(tt.second); fmt.Sprint(err) != tt.want && !(tt.want == "" && err == nil) {
				t.Errorf("Add = %v, want %s", err, tt.want)
			}
		}
		r := idp.NewRegistry()
		r.Add(local)
		if err := r.Add(local); fmt.Sprint(err) != `issuer "https://local.test" is trusted twice` {
			t.Errorf("Add twice = %v", err)
		}
	})
}

// FromConfig builds an introspection IDP from config, reading
// client_secret_file.
func TestIntrospectionFromConfig(t *testing.T) {
	srv := newIntrospectionServer(t)
	reg, err := idp.FromConfig(t.Context(), []config.IDP{{
		Name: "internal", Type: config.IDPTypeIntrospection, Issuer: confIssuer, Audiences: []string{"sts"},
		Spec: &idp.IntrospectionSpec{IntrospectionEndpoint: srv.URL, ClientID: "idtx", ClientSecretFile: "secret.txt",
			TokenPrefix: "int_", CacheTTL: new(time.Minute)},
	}}, idp.Options{Clock: func() time.Time { return now }, ReadFile: func(name string) ([]byte, error) {
		if name != "secret.txt" {
			return nil, fmt.Errorf("no file %s", name)
		}
		return []byte("s3cret/\n"), nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if id, err := reg.Validate(t.Context(), srv.issue("int_", goodAnswer()), oauth.TokenTypeAccessToken); err != nil || id.Subject != "alice" {
		t.Fatalf("%v %v", id, err)
	}
}

// Answers shaped as real endpoints send them validate: Dex (token_use,
// ext), Keycloak (typ Bearer, azp, realm_access), zitadel/oidc (no aud).
func TestIntrospectionRealAnswers(t *testing.T) {
	exp := now.Add(time.Hour).Unix()
	tests := map[string]map[string]any{
		"dex": {"active": true, "client_id": "web", "exp": exp, "iat": now.Unix(), "nbf": now.Unix(), "sub": "CiQwOGE4Njg0Yi1kYjg4", "aud": "sts",
			"iss": confIssuer, "jti": "x", "token_type": "Bearer", "token_use": "access_token", "ext": map[string]any{"email": "alice@example.com"}},
		"keycloak": {"active": true, "exp": exp, "iat": now.Unix(), "jti": "y", "iss": confIssuer, "aud": []any{"sts", "account"}, "sub": "f3c2",
			"typ": "Bearer", "azp": "web", "scope": "openid email", "realm_access": map[string]any{"roles": []any{"ops"}}, "client_id": "web", "username": "alice", "token_type": "Bearer"},
		"zitadel": {"active": true, "scope": "openid profile", "client_id": "web", "exp": exp, "sub": "id1", "username": "alice"},
	}
	for name, answer := range tests {
		t.Run(name, func(t *testing.T) {
			srv := newIntrospectionServer(t)
			srv.setAnswer(func(w http.ResponseWriter, r *http.Request) { json.NewEncoder(w).Encode(answer) })
			v := introspectionValidator(t, srv.URL, func() time.Time { return now }, func(c *idp.IntrospectionConfig) {
				c.Claims = idp.ClaimMap{"groups": "realm_access.roles", "email": "ext.email"}
			})
			id, err := v.Validate(t.Context(), "int_x", oauth.TokenTypeAccessToken)
			if err != nil {
				t.Fatal(err)
			}
			if id.Subject != answer["sub"] || !id.Expiry.Equal(now.Add(time.Hour)) {
				t.Errorf("identity %+v", id)
			}
			if name == "keycloak" && fmt.Sprint(id.Claims["groups"]) != "[ops]" || name == "dex" && id.Claims["email"] != "alice@example.com" {
				t.Errorf("mapped claims %v", id.Claims)
			}
		})
	}
}

// cache_ttl: 0s in a config means no answer is reused, not the default:
// every exchange asks the IDP, as an operator who revokes tokens there
// would set it.
func TestIntrospectionCacheTTLZeroFromConfig(t *testing.T) {
	srv := newIntrospectionServer(t)
	for _, tc := range []struct {
		line  string
		calls int
	}{{"cache_ttl: 0s", 2}, {"", 1}} {
		cfg, err := config.Parse([]byte(`
idps:
  - name: internal
    type: introspection
    issuer: `+confIssuer+`
    introspection_endpoint: `+srv.URL+`
    client_id: idtx
    client_secret: s3cret/
    token_prefix: int_
    audiences: [sts]
    `+tc.line+`
`), "", nil)
		if err != nil {
			t.Fatal(err)
		}
		reg, err := idp.FromConfig(t.Context(), cfg.IDPs, idp.Options{Clock: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		token := srv.issue("int_", goodAnswer())
		before := srv.callCount()
		for range 2 {
			if _, err := reg.Validate(t.Context(), token, oauth.TokenTypeAccessToken); err != nil {
				t.Fatal(err)
			}
		}
		if got := srv.callCount() - before; got != tc.calls {
			t.Errorf("%q: the IDP was asked %d times for two exchanges, want %d", tc.line, got, tc.calls)
		}
	}
}

// TestIntrospectionUnreachableNamesNoURL: the error's text reaches the
// client and the trace, so it names the IDP, never the endpoint or its
// query; the server's log reads the URL, query values redacted, from
// fetch.Detail.
func TestIntrospectionUnreachableNamesNoURL(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens there now
	v := introspectionValidator(t, "http://"+addr+"/introspect?api_key=SECRET", func() time.Time { return now })
	_, err = v.Validate(t.Context(), "int_x", oauth.TokenTypeAccessToken)
	const want = "idp unavailable: introspection endpoint of IDP internal is unreachable"
	if !errors.Is(err, idp.ErrUnavailable) || fmt.Sprint(err) != want {
		t.Fatalf("Validate = %v, want exactly %q", err, want)
	}
	detail := "http://" + addr + "/introspect?api_key=REDACTED: Post: dial tcp " + addr + ": connect: connection refused"
	if got := fetch.Detail(err); got != detail {
		t.Fatalf("detail = %q, want %q", got, detail)
	}
}
