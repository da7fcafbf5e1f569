package exchange_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/idtx/idtx/exchange"
	"github.com/idtx/idtx/oauth"
	"github.com/idtx/idtx/store"
)

// An introspection IDP through the whole exchange: an active opaque
// token is exchanged, an inactive one is invalid_request, an endpoint
// that is down is temporarily_unavailable (503).
func TestExchangeIntrospectionIDP(t *testing.T) {
	var down atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		r.ParseForm()
		if r.PostForm.Get("token") != "int_good" {
			w.Write([]byte(`{"active":false}`))
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"active": true, "iss": "https://internal.test", "sub": "alice",
			"aud": "idtx-sts", "exp": t0.Add(time.Hour).Unix(), "scope": "narrow:a"})
	}))
	defer srv.Close()
	e := newEnvWith(t, store.NewMemory(), func(yaml string, _ map[string][]byte) string {
		return strings.Replace(yaml, "services:", `  - name: internal
    type: introspection
    issuer: https://internal.test
    introspection_endpoint: `+srv.URL+`/introspect?api_key=SECRET
    client_id: idtx
    client_secret: s
    token_prefix: int_
    audiences: [idtx-sts]
services:`, 1)
	})
	form := func(tok string) map[string][]string {
		return e.form(tok, "subject_token_type", oauth.TokenTypeAccessToken, "audience", "narrow-api", "scope", "narrow:a")
	}
	r := e.post("/token", form("int_good"))
	if r.status != 200 {
		t.Fatalf("%d %v", r.status, r.body)
	}
	if c, _ := e.issued(r.str("access_token")); c["idp"] != "internal" || c["sub"] != "alice" {
		t.Errorf("issued claims %v", c)
	}
	// narrow-api grants no more than the subject's own scopes, read from
	// the introspection answer.
	f := form("int_good")
	f["scope"] = []string{"narrow:b"}
	expectError(t, e.post("/token", f), 400, "invalid_scope", `scope "narrow:b" is not among the subject token's scopes`)

	expectError(t, e.post("/token", form("int_revoked")), 400, "invalid_request",
		"subject_token: invalid token: IDP internal says the token is not active (RFC 7662 §2.2: expired, revoked or never issued)")
	expectError(t, e.post("/token", form("other_opaque")), 400, "invalid_request",
		`subject_token: untrusted issuer: an opaque token that starts with no introspection IDP's token_prefix ("int_")`)
	// explain's detail: why the token went to this IDP, and who vouched
	// (the endpoint's query values redacted: a trace reaches clients).
	trace := walkDetail(t, e, form("int_good"), true)
	sub := evidenceOf(t, trace, exchange.StepSubject)
	if sub[exchange.EvidenceMatched] != "token_prefix int_ is IDP internal's" || sub[exchange.EvidenceIntrospected] != srv.URL+"/introspect?api_key=REDACTED" ||
		sub[exchange.EvidenceExpiresIn] != "1h0m0s" || sub[exchange.EvidenceKeyID] != "" {
		t.Errorf("subject evidence %v", sub)
	}
	down.Store(true)
	expectError(t, e.post("/token", form("int_new")), 503, "temporarily_unavailable",
		"subject_token: idp unavailable: introspection endpoint of IDP internal answered status 502")
}

// Claim mapping feeds the scope check: an IDP that keeps scopes in an
// scp list (Okta, Entra ID) is read through claims: {scope: scp}.
func TestExchangeMappedScopes(t *testing.T) {
	e := newEnvWith(t, store.NewMemory(), func(yaml string, _ map[string][]byte) string {
		return strings.Replace(yaml, "    jwks_file: corp.jwks\n    audiences: [idtx-sts]\n",
			"    jwks_file: corp.jwks\n    audiences: [idtx-sts]\n    claims: {scope: scp, groups: realm_access.roles}\n", 1)
	})
	tok := e.subject(jwt.MapClaims{"scope": nil, "scp": []any{"narrow:b"}})
	f := e.form(tok, "audience", "narrow-api", "scope", "narrow:b")
	if r := e.post("/token", f); r.status != 200 {
		t.Fatalf("%d %v", r.status, r.body)
	}
	f.Set("scope", "narrow:a")
	expectError(t, e.post("/token", f), 400, "invalid_scope", `scope "narrow:a" is not among the subject token's scopes`)
}
