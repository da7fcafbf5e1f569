package exchange_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/idtx/idtx/exchange"
	"github.com/idtx/idtx/oauth"
	"github.com/idtx/idtx/store"
)

func (e *env) assertion(over jwt.MapClaims) string {
	c := jwt.MapClaims{
		"iss": "jwt-client", "sub": "jwt-client", "aud": "https://sts.test/token",
		"iat": e.now.Unix(), "exp": e.now.Add(time.Minute).Unix(), "jti": "jti-" + e.t.Name(),
	}
	for k, v := range over {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return e.client.sign(e.t, c, nil)
}

func TestPrivateKeyJWT(t *testing.T) {
	e := newEnv(t)
	send := func(assertion string, kv ...string) response {
		f := e.form(e.subject(nil), append([]string{
			"client_assertion_type", oauth.ClientAssertionTypeJWTBearer, "client_assertion", assertion,
		}, kv...)...)
		return e.post("/token", f)
	}
	t.Run("accepted once, replay refused", func(t *testing.T) {
		a := e.assertion(jwt.MapClaims{"jti": "once"})
		r := send(a, "client_id", "jwt-client")
		if r.status != 200 {
			t.Fatalf("%d %v", r.status, r.body)
		}
		claims, _ := e.issued(r.str("access_token"))
		if claims["client_id"] != "jwt-client" {
			t.Errorf("client_id = %v", claims["client_id"])
		}
		expectError(t, send(a), 401, "invalid_client", `jti "once" was already used`)
	})
	t.Run("issuer as aud", func(t *testing.T) {
		if r := send(e.assertion(jwt.MapClaims{"aud": "https://sts.test", "jti": "iss-aud"})); r.status != 200 {
			t.Fatalf("%d %v", r.status, r.body)
		}
	})
	tests := []struct {
		name   string
		over   jwt.MapClaims
		extra  []string
		reason string
	}{
		{"wrong aud", jwt.MapClaims{"aud": "https://other-sts.test/token"}, nil, `aud "https://other-sts.test/token" must be https://sts.test or https://sts.test/token (RFC 7523 §3)`},
		{"no exp", jwt.MapClaims{"exp": nil}, nil, "token is missing required claim"},
		{"exp too far", jwt.MapClaims{"exp": t0.Add(time.Hour).Unix()}, nil, "exp is more than 5m0s ahead"},
		{"expired", jwt.MapClaims{"exp": t0.Add(-time.Hour).Unix()}, nil, "token is expired"},
		{"no jti", jwt.MapClaims{"jti": nil}, nil, "jti is required"},
		{"sub is not the client", jwt.MapClaims{"sub": "demo-client"}, nil, "client_assertion"},
		{"unknown client", jwt.MapClaims{"iss": "nobody", "sub": "nobody"}, nil, "unknown client or no registered keys"},
		{"secret client has no keys", jwt.MapClaims{"iss": "demo-client", "sub": "demo-client"}, nil, "unknown client or no registered keys"},
		{"client_id mismatch", nil, []string{"client_id", "demo-client"}, "does not match the assertion's iss"},
		{"wrong assertion type", nil, []string{"client_assertion_type", "urn:example:saml"}, "client_assertion_type must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expectError(t, send(e.assertion(tt.over), tt.extra...), 401, "invalid_client", tt.reason)
		})
	}
	t.Run("signed by another key", func(t *testing.T) {
		a := e.corp.sign(t, jwt.MapClaims{"iss": "jwt-client", "sub": "jwt-client", "aud": "https://sts.test/token", "exp": t0.Add(time.Minute).Unix(), "jti": "x"}, map[string]any{"kid": e.client.kid})
		expectError(t, send(a), 401, "invalid_client", "client_assertion")
	})
	t.Run("alg none", func(t *testing.T) {
		parts := strings.Split(e.assertion(nil), ".")
		a := "eyJhbGciOiJub25lIn0." + parts[1] + "."
		expectError(t, send(a), 401, "invalid_client", `alg "none" is refused`)
	})
}

func TestChainedExchange(t *testing.T) {
	e := newEnv(t)
	first := e.post("/token", e.form(e.subject(nil)))
	if first.status != 200 {
		t.Fatalf("%d %v", first.status, first.body)
	}
	// The STS's own token, exchanged onward for orders-api by the client
	// it was issued to, with no scope it lacked (policy_test.go tries the
	// other ways).
	second := e.post("/token", e.form(first.str("access_token"), "subject_token_type", oauth.TokenTypeAccessToken))
	if second.status != 200 {
		t.Fatalf("%d %v", second.status, second.body)
	}
	claims, _ := e.issued(second.str("access_token"))
	if claims["sub"] != "alice" || claims["idp"] != "corp" {
		t.Errorf("chained claims %v: want sub alice from idp corp", claims)
	}
	t.Run("forged own token", func(t *testing.T) {
		forged := e.corp.sign(t, jwt.MapClaims{"iss": "https://sts.test", "sub": "alice", "aud": "billing-api", "exp": t0.Add(time.Minute).Unix()}, map[string]any{"typ": "at+jwt", "alg": "RS256"})
		expectError(t, e.post("/token", e.form(forged)), 400, "invalid_request", `alg "RS256" is not allowed for IDP idtx`)
	})
}

func TestDelegation(t *testing.T) {
	e := newEnv(t)
	subject := e.subject(jwt.MapClaims{"may_act": map[string]any{"sub": "gateway", "iss": "https://other.test"}})
	actor := e.other.sign(t, jwt.MapClaims{"iss": "https://other.test", "sub": "gateway", "aud": "idtx-sts", "exp": t0.Add(time.Hour).Unix()}, nil)
	r := e.post("/token", e.form(subject, "actor_token", actor, "actor_token_type", oauth.TokenTypeJWT))
	if r.status != 200 {
		t.Fatalf("%d %v", r.status, r.body)
	}
	claims, _ := e.issued(r.str("access_token"))
	act, _ := claims["act"].(map[string]any)
	if claims["sub"] != "alice" || act["sub"] != "gateway" || act["iss"] != "https://other.test" {
		t.Fatalf("claims %v", claims)
	}
	t.Run("no may_act: the client's delegation mode decides", func(t *testing.T) {
		r := e.post("/token", e.form(e.subject(nil), "actor_token", actor, "actor_token_type", oauth.TokenTypeJWT))
		if r.status != 200 {
			t.Fatalf("%d %v", r.status, r.body)
		}
	})
	t.Run("another actor", func(t *testing.T) {
		other := e.subject(jwt.MapClaims{"may_act": map[string]any{"sub": "someone-else"}})
		r := e.post("/token", e.form(other, "actor_token", actor, "actor_token_type", oauth.TokenTypeJWT))
		expectError(t, r, 400, "invalid_request", `sub "gateway" is not the may_act sub`)
	})
	t.Run("invalid actor token", func(t *testing.T) {
		bad := e.other.sign(t, jwt.MapClaims{"iss": "https://other.test", "sub": "gateway", "aud": "idtx-sts"}, nil)
		r := e.post("/token", e.form(subject, "actor_token", bad, "actor_token_type", oauth.TokenTypeJWT))
		expectError(t, r, 400, "invalid_request", "actor_token: invalid token: exp is required")
	})
}

func TestIntrospection(t *testing.T) {
	e := newEnv(t)
	issued := e.post("/token", e.form(e.subject(nil))).str("access_token")
	r := e.post("/introspect", map[string][]string{"token": {issued}})
	if r.status != 200 || r.body["active"] != true || r.body["sub"] != "alice" || r.body["client_id"] != "demo-client" {
		t.Fatalf("%d %v", r.status, r.body)
	}
	for name, tok := range map[string]string{"a foreign token": e.subject(nil), "garbage": "x.y.z"} {
		r := e.post("/introspect", map[string][]string{"token": {tok}})
		if r.status != 200 || r.body["active"] != false || len(r.body) != 1 {
			t.Errorf("%s: %d %v, want only active false", name, r.status, r.body)
		}
	}
	e.now = t0.Add(10 * time.Minute)
	if r := e.post("/introspect", map[string][]string{"token": {issued}}); r.body["active"] != false {
		t.Errorf("expired token active: %v", r.body)
	}
	expectError(t, e.post("/introspect", map[string][]string{"token": {issued}}, "-"), 401, "invalid_client", "client authentication is required")
	expectError(t, e.post("/introspect", map[string][]string{"token": {issued}}, "demo-client", "nope"), 401, "invalid_client", "wrong secret")
	expectError(t, e.post("/introspect", map[string][]string{}), 400, "invalid_request", "token is missing")
	expectError(t, e.post("/introspect", map[string][]string{"token": {issued, issued}}), 400, "invalid_request", `parameter "token" is repeated`)
}

func TestMetadataAndJWKS(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		rec := httptest.NewRecorder()
		e.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		var doc map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil || rec.Code != 200 {
			t.Fatalf("%s: %d %v", path, rec.Code, err)
		}
		if doc["issuer"] != "https://sts.test" || doc["token_endpoint"] != "https://sts.test/token" || doc["jwks_uri"] != "https://sts.test/jwks" {
			t.Errorf("%s: %v", path, doc)
		}
	}
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/jwks", nil))
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("jwks %s: %v", rec.Body, err)
	}
	k := set.Keys[0]
	if k["kid"] != e.sts.KeyID() || k["alg"] != "ES256" || k["kty"] != "EC" || k["d"] != nil {
		t.Errorf("jwk %v", k)
	}
	for _, path := range []string{"/healthz", "/metrics"} {
		rec := httptest.NewRecorder()
		e.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != 200 {
			t.Errorf("%s: %d", path, rec.Code)
		}
	}
	e.post("/token", e.form(e.subject(nil), "audience", "nope"))
	rec = httptest.NewRecorder()
	e.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if !strings.Contains(rec.Body.String(), `idtx_exchanges_total{idp="",mode="impersonation",result="invalid_target",service="",step="target"} 1`) {
		t.Errorf("metrics lack the refused exchange:\n%s", rec.Body)
	}
}

// A remote IDP that is down, with no keys cached, is temporarily_unavailable.
func TestRemoteIDPDown(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	url := down.URL
	down.Close()
	e := newEnvWith(t, store.NewMemory(), func(yaml string, _ map[string][]byte) string {
		return strings.Replace(yaml, "jwks_file: corp.jwks", "jwks_uri: "+url+"/jwks", 1)
	})
	expectError(t, e.post("/token", e.form(e.subject(nil))), 503, "temporarily_unavailable", "key set unreachable")
}

// The trace records each step, up to the first failure.
func TestTrace(t *testing.T) {
	e := newEnv(t)
	req := &exchange.Request{Form: e.form(e.subject(nil)), Basic: &exchange.BasicAuth{ID: "demo-client", Secret: "demo-secret"}}
	res, trace, oerr := e.engine.Run(t.Context(), req)
	if oerr != nil || res == nil {
		t.Fatal(oerr)
	}
	var got []string
	for _, s := range trace {
		got = append(got, s.Step+":"+string(s.Status))
	}
	want := "request:pass client:pass target:pass subject:pass actor:skip scope:pass consent:skip workflows:skip issue:pass"
	if strings.Join(got, " ") != want {
		t.Fatalf("trace %v\nwant  %s", got, want)
	}
	req.Form.Set("audience", "billing-api")
	req.Form.Set("scope", "billing:write")
	_, trace, oerr = e.engine.Run(t.Context(), req)
	last := trace[len(trace)-1]
	if oerr == nil || last.Step != "consent" || last.Status != exchange.Fail || len(trace) != 7 {
		t.Fatalf("trace %v", trace)
	}
}

// Exchanges run side by side share the store, the replay cache and the
// verified-secret cache; run with -race.
func TestConcurrentExchanges(t *testing.T) {
	store, err := store.Open("sqlite:" + t.TempDir() + "/idtx.db")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	e := newEnvWith(t, store, nil)
	subject := e.subject(nil)
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for i := range 48 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var r response
			switch i % 3 {
			case 0:
				r = e.post("/token", e.form(subject, "audience", "billing-api", "scope", "billing:read"))
			case 1:
				r = e.post("/token", e.form(subject), "bcrypt-client", "bcrypt-secret")
			case 2:
				a := e.assertion(jwt.MapClaims{"jti": fmt.Sprintf("jti-%d", i)})
				r = e.post("/token", e.form(subject, "client_assertion_type", oauth.ClientAssertionTypeJWTBearer, "client_assertion", a))
			}
			if r.status != 200 {
				errs <- fmt.Sprintf("%d: %d %v", i, r.status, r.body)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
