package attack

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/idtx/idtx/mockidp"
)

// TestNoURLFromToken points every URL a token can carry at a loopback
// server and checks that idtx never fetches one: keys, metadata and
// introspection endpoints come from config only.
func TestNoURLFromToken(t *testing.T) {
	var hits atomic.Int64
	bait := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		t.Errorf("idtx fetched %s from a URL a token named", r.URL)
		http.NotFound(w, r)
	}))
	defer bait.Close()
	e := newEnv(t)

	rows := []row{
		jwtRow("jku", corpWith(nil, map[string]any{"jku": bait.URL + "/jwks"}), `header "jku" is refused`),
		jwtRow("x5u", corpWith(nil, map[string]any{"x5u": bait.URL + "/cert.pem"}), `header "x5u" is refused`),
		jwtRow("iss naming the bait, for discovery", func(t testing.TB, e *env) string {
			return e.impostor.sign(t, claims(map[string]any{"iss": bait.URL}), nil)
		}, "is not a trusted IDP"),
		{
			name: "client assertion with jku",
			build: func(t testing.TB, e *env) *request {
				c := map[string]any{"iss": "jwt-client", "sub": "jwt-client", "aud": e.srv.URL + "/token", "exp": time.Now().Add(time.Minute).Unix(), "jti": randomID()}
				a := e.impostor.sign(t, c, map[string]any{"jku": bait.URL + "/jwks"})
				return &request{form: withAssertion(exchangeForm(e.corp.sign(t, claims(nil), nil)), "jwt-client", a)}
			},
			wantStatus: http.StatusUnauthorized, wantCode: "invalid_client", wantReason: `header "jku" is refused`,
		},
		samlRow("SAML issuer naming the bait", func(t testing.TB, e *env) string {
			return xmlString(t, e.foreignSAML.sign(t, samlAssertion(samlOptions{issuer: bait.URL + "/metadata"})))
		}, "is not a trusted IDP"),
	}
	runRows(t, e, rows)
	if n := hits.Load(); n != 0 {
		t.Fatalf("idtx made %d request(s) to URLs taken from tokens", n)
	}
}

// TestConsentRevokedBetweenExchanges grants corp's alice a consent with
// `idtx consent grant --idp corp` and revokes it with `idtx consent
// revoke` on the SQLite store a running server uses: partner's alice never
// rides on it, and after the revocation corp's alice needs it again.
func TestConsentRevokedBetweenExchanges(t *testing.T) {
	f := newFixture(t)
	home := t.TempDir()
	store := "sqlite:" + filepath.Join(t.TempDir(), "consents.db")
	grant := []string{"consent", "grant", "--store", store, "--idp", "corp", "--user", "alice", "--service", "billing-api", "--scope", "billing:read"}
	if _, errOut, err := idtx(t, home, grant...); err != nil {
		t.Fatalf("idtx consent grant: %v\n%s", err, errOut)
	}
	e := &env{fixture: f, srv: startServer(t, serveOptions{config: f.config, store: store, home: home})}
	billing := func(key *jwtKey, iss string) url.Values {
		return exchangeForm(key.sign(t, claims(map[string]any{"iss": iss}), nil), "audience", "billing-api", "scope", "billing:read")
	}

	_, c := e.srv.mustExchange(t, billing(e.corp, corpIssuer))
	if c["scope"] != "billing:read" {
		t.Fatalf("scope = %v, want billing:read", c["scope"])
	}

	t.Run("a user of another IDP does not ride on it", func(t *testing.T) {
		r := e.srv.exchange(t, billing(e.partner, partnerIssuer))
		expectRefusal(t, r, http.StatusBadRequest, "consent_required", "alice of IDP partner has not consented to billing:read for billing-api")
	})

	// Again: the server's consent reader now answers from what it
	// remembers, until the file changes (docs/operations.md).
	if _, c := e.srv.mustExchange(t, billing(e.corp, corpIssuer)); c["scope"] != "billing:read" {
		t.Fatalf("scope = %v, want billing:read", c["scope"])
	}
	revoke := []string{"consent", "revoke", "--store", store, "--idp", "corp", "--user", "alice", "--service", "billing-api"}
	if _, errOut, err := idtx(t, home, revoke...); err != nil {
		t.Fatalf("idtx consent revoke: %v\n%s", err, errOut)
	}
	r := e.srv.exchange(t, billing(e.corp, corpIssuer))
	expectRefusal(t, r, http.StatusBadRequest, "consent_required", "alice of IDP corp has not consented to billing:read for billing-api")
}

// TestIntrospectionForOthers asks /introspect (RFC 7662) about a token
// issued to another client.
func TestIntrospectionForOthers(t *testing.T) {
	e := newEnv(t)
	tok, _ := e.srv.mustExchange(t, exchangeForm(e.corp.sign(t, claims(nil), nil), "audience", "narrow-api", "scope", "narrow:a"))
	introspect := func(basic *[2]string) *response {
		return e.srv.do(t, &request{path: "/introspect", form: url.Values{"token": {tok}}, basic: basic})
	}

	t.Run("control: the token's own client", func(t *testing.T) {
		r := introspect(nil)
		if r.status != http.StatusOK || r.body["active"] != true {
			t.Fatalf("got %d %s, want 200 and active", r.status, r.raw)
		}
	})
	t.Run("no client authentication", func(t *testing.T) {
		expectRefusal(t, introspect(&[2]string{"", ""}), http.StatusUnauthorized, "invalid_client", "client authentication is required")
	})
	t.Run("wrong secret", func(t *testing.T) {
		expectRefusal(t, introspect(&[2]string{"demo-client", "wrong"}), http.StatusUnauthorized, "invalid_client", "client authentication failed")
	})
	t.Run("a client neither holding nor serving the token's audience", func(t *testing.T) {
		r := introspect(&[2]string{"restricted-client", "restricted-secret"})
		if r.status != http.StatusOK || string(r.raw) != `{"active":false}`+"\n" && string(r.raw) != `{"active":false}` {
			t.Fatalf("got %d %q, want 200 {\"active\":false} (RFC 7662 §4)", r.status, r.raw)
		}
	})
}

// TestMockKeyNotShared runs `serve --config` and `serve --mock` with the
// same IDTX_HOME: the mock, whose tokens anyone can mint, must not sign
// with the configured server's key. A token the mock issued verifies with
// the mock's JWKS and with no key of the configured server's.
func TestMockKeyNotShared(t *testing.T) {
	f := newFixture(t)
	home := t.TempDir()
	real := startServer(t, serveOptions{config: f.config, home: home})
	mock := startServer(t, serveOptions{home: home})
	jwksOf := func(s *server) []byte {
		resp, err := apiClient.Get(s.URL + "/jwks")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return raw
	}
	keys := func(raw []byte) map[string]bool {
		var set struct {
			Keys []map[string]any `json:"keys"`
		}
		if err := json.Unmarshal(raw, &set); err != nil || len(set.Keys) == 0 {
			t.Fatalf("jwks: %s", raw)
		}
		out := map[string]bool{}
		for _, k := range set.Keys {
			for _, m := range []string{"x", "n", "kid"} {
				if v, ok := k[m].(string); ok {
					out[m+":"+v] = true
				}
			}
		}
		return out
	}
	realJWKS, mockJWKS := jwksOf(real), jwksOf(mock)
	realKeys := keys(realJWKS)
	for k := range keys(mockJWKS) {
		if realKeys[k] {
			t.Errorf("serve --mock publishes the configured server's key (%s)", k)
		}
	}

	subject, err := mockidp.JWT(mockidp.TokenOptions{Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	minted, _ := mock.mustExchange(t, exchangeForm(subject))
	verify := func(set []byte) error {
		kf, err := keyfunc.NewJWKSetJSON(set)
		if err != nil {
			t.Fatal(err)
		}
		_, err = jwt.Parse(minted, kf.Keyfunc, jwt.WithoutClaimsValidation())
		return err
	}
	if err := verify(mockJWKS); err != nil {
		t.Fatalf("control: the mock's token does not verify with the mock's JWKS: %v", err)
	}
	if err := verify(realJWKS); err == nil {
		t.Fatalf("a token the mock issued verifies with the configured server's JWKS")
	}
}

// TestRemoteKeys serves an IDP's JWKS from a loopback server: tokens with
// unknown kids cause at most one fetch per refresh interval, and an IDP
// that goes down leaves its cached keys in use.
func TestRemoteKeys(t *testing.T) {
	remote := newJWTKey("RS256", strongRSA()[2])
	var fetches atomic.Int64
	var down atomic.Bool
	keys := jwks(remote)
	jwksSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(keys)
	}))
	defer jwksSrv.Close()
	const remoteIssuer = "https://remote.idp.test"
	f := newFixtureWith(t, `  - name: remote
    type: jwt
    issuer: `+remoteIssuer+`
    jwks_uri: `+jwksSrv.URL+`/jwks
    audiences: [`+stsAudience+`]
`)
	e := &env{fixture: f, srv: startServer(t, serveOptions{config: f.config})}
	valid := func() url.Values {
		return exchangeForm(remote.sign(t, claims(map[string]any{"iss": remoteIssuer}), nil))
	}
	e.srv.mustExchange(t, valid())
	before := fetches.Load()
	for i := range 20 {
		tok := remote.sign(t, claims(map[string]any{"iss": remoteIssuer}), map[string]any{"kid": fmt.Sprintf("unknown-%d", i)})
		expectRefusal(t, e.srv.exchange(t, exchangeForm(tok)), http.StatusBadRequest, "invalid_request", "is not in the IDP's key set")
	}
	if n := fetches.Load() - before; n > 1 {
		t.Errorf("20 unknown kids caused %d JWKS fetches, want at most 1 per refresh interval", n)
	}
	down.Store(true)
	e.srv.mustExchange(t, valid())
	t.Logf("JWKS fetched %d time(s) in all", fetches.Load())
}

// TestNoSecretsInAnswersOrLogs sends a wrong client secret and a subject
// token, and checks that neither the secret nor the token's signature
// comes back in an error or goes to the server's log.
func TestNoSecretsInAnswersOrLogs(t *testing.T) {
	e := newEnv(t)
	const canary = "canary-secret-8c1f0b"
	tok := e.corp.sign(t, claims(map[string]any{"aud": "other-rp"}), nil)
	sig := tok[strings.LastIndex(tok, ".")+1:]
	answers := []*response{
		e.srv.exchange(t, exchangeForm(tok), "demo-client", canary),
		e.srv.exchange(t, exchangeForm(tok, "client_id", "demo-client", "client_secret", canary), "", ""),
		e.srv.exchange(t, exchangeForm(tok)),
		e.srv.do(t, &request{path: "/introspect", form: url.Values{"token": {tok}}, basic: &[2]string{"demo-client", canary}}),
	}
	for _, r := range answers {
		if r.status == http.StatusOK && r.str("error") == "" && r.body["active"] == nil {
			t.Fatalf("got %d %s, want a refusal", r.status, r.raw)
		}
		if s := string(r.raw); strings.Contains(s, canary) || strings.Contains(s, sig) {
			t.Errorf("answer %s echoes the secret or the token", s)
		}
	}
	waitLogCount(t, e.srv, `"msg":"exchange refused"`, 3) // one a refused exchange
	log := e.srv.stderr.String()
	if !strings.Contains(log, "exchange refused") {
		t.Fatalf("no refusal was logged:\n%s", log)
	}
	if strings.Contains(log, canary) || strings.Contains(log, sig) {
		t.Errorf("the server's log holds the secret or the token:\n%s", log)
	}
}

// TestMetadataIgnoresHost sends a forged Host header: the issuer and
// endpoints in the metadata come from config or the listen address, never
// from the request, so nobody can point clients elsewhere (RFC 8414 §3.3).
func TestMetadataIgnoresHost(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		req, err := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "sts.evil.test"
		req.Header.Set("X-Forwarded-Host", "sts.evil.test")
		resp, err := apiClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var meta map[string]any
		if err := json.Unmarshal(raw, &meta); err != nil {
			t.Fatalf("%s: %s", path, raw)
		}
		if meta["issuer"] != e.srv.URL || strings.Contains(string(raw), "evil") {
			t.Errorf("%s with a forged Host names %s", path, raw)
		}
	}
}
