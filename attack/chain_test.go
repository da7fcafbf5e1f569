package attack

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/idtx/idtx/fixtures"
	"github.com/idtx/idtx/mockidp"
)

// The mock as a landscape (README, "The mock as a landscape"): a user's
// token travels demo-client → orders-api → orders-service → billing-api,
// judged at every hop on what the STS's tokens carry.

// mockToken is a mock IDP JWT for sub with extra claims, living ttl (the
// mock's default if 0).
func mockToken(t testing.TB, sub string, claims map[string]any, ttl time.Duration) string {
	t.Helper()
	tok, err := mockidp.JWT(mockidp.TokenOptions{Sub: sub, Claims: claims, TTL: ttl, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// ordersService is the second hop's client in the mock.
var ordersService = []string{"orders-service", "orders-secret"}

// onward is the form of a chained exchange of token (one the STS issued)
// for audience; kv as exchangeForm.
func onward(token, audience string, kv ...string) url.Values {
	return exchangeForm(token, append([]string{"subject_token_type", tokenTypeAccessToken, "audience", audience}, kv...)...)
}

// TestLandscapeChain runs the README's walkthrough against a real
// `idtx serve --mock`, and asks /introspect about the delegated token.
func TestLandscapeChain(t *testing.T) {
	srv := startServer(t, serveOptions{})
	t1, c1 := srv.mustExchange(t, exchangeForm(mockToken(t, "alice", map[string]any{"may_act": map[string]any{"sub": "orders-service"}}, 0), "audience", "orders-api"))
	if c1["sub"] != "alice" || c1["idp"] != "mock" || !reflect.DeepEqual(c1["carried"], []any{"groups", "roles", "entitlements"}) {
		t.Fatalf("T1: %v", c1)
	}
	_, c2 := srv.mustExchange(t, onward(t1, "billing-api", "scope", "billing:read"), ordersService...)
	if c2["sub"] != "alice" || c2["idp"] != "mock" || fmt.Sprint(c2["aud"]) != "[billing-api]" || c2["client_id"] != "orders-service" || c2["act"] != nil {
		t.Fatalf("hop 2: %v", c2)
	}
	t2, c2d := srv.mustExchange(t, onward(t1, "billing-api", "scope", "billing:read",
		"actor_token", mockToken(t, "orders-service", nil, 0), "actor_token_type", tokenTypeJWT), ordersService...)
	if act, _ := c2d["act"].(map[string]any); act["sub"] != "orders-service" {
		t.Fatalf("hop 2 delegated: act %v", c2d["act"])
	}
	// may_act names orders-service: another actor is refused further on.
	r := srv.exchange(t, onward(t2, "billing-api", "actor_token", mockToken(t, "billing-worker", nil, 0), "actor_token_type", tokenTypeJWT), ordersService...)
	expectRefusal(t, r, http.StatusBadRequest, "invalid_request", `actor_token: sub "billing-worker" is not the may_act sub of the subject token`)
	t3, c3 := srv.mustExchange(t, onward(t2, "billing-api", "actor_token", mockToken(t, "orders-service", nil, 0), "actor_token_type", tokenTypeJWT), ordersService...)
	wantAct := map[string]any{"sub": "orders-service", "iss": mockidp.Issuer, "act": map[string]any{"sub": "orders-service", "iss": mockidp.Issuer}}
	if !reflect.DeepEqual(c3["act"], wantAct) {
		t.Fatalf("third hop: act %v, want %v (newest first)", c3["act"], wantAct)
	}

	// /introspect answers the chain's act, may_act and carried claims
	// (RFC 8693 §4, RFC 7662 §2.2).
	in := srv.do(t, &request{path: "/introspect", form: url.Values{"token": {t3}}, basic: &[2]string{ordersService[0], ordersService[1]}})
	if in.status != http.StatusOK || in.body["active"] != true || !reflect.DeepEqual(in.body["act"], wantAct) ||
		!reflect.DeepEqual(in.body["may_act"], map[string]any{"sub": "orders-service", "iss": mockidp.Issuer}) ||
		!reflect.DeepEqual(in.body["carried"], []any{"groups", "roles", "entitlements"}) || in.body["idp"] != "mock" {
		t.Fatalf("introspect: %d %s", in.status, in.raw)
	}

	// carol, a contractor with consent, passes orders-api and is refused
	// at billing-api on the groups T1 carries.
	carol, cc := srv.mustExchange(t, exchangeForm(mockToken(t, "carol", map[string]any{"groups": []string{"contractor"}}, 0), "audience", "orders-api"))
	if !reflect.DeepEqual(cc["groups"], []any{"contractor"}) {
		t.Fatalf("carol's T1 groups %v", cc["groups"])
	}
	expectRefusal(t, srv.exchange(t, onward(carol, "billing-api", "scope", "billing:read"), ordersService...),
		http.StatusBadRequest, "invalid_request", "workflow no-contractors denied: contractors may not call billing-api")
	// mallory is refused at the first hop.
	expectRefusal(t, srv.exchange(t, exchangeForm(mockToken(t, "mallory", map[string]any{"groups": []string{"blocked"}}, 0), "audience", "orders-api")),
		http.StatusBadRequest, "invalid_request", "workflow no-blocked denied: subjects in the blocked group may not exchange tokens")
	// restricted-client neither holds T1 nor serves orders-api.
	expectRefusal(t, srv.exchange(t, onward(t1, "orders-api"), "restricted-client", "restricted-secret"), http.StatusBadRequest, "invalid_request",
		"subject_token was issued to client demo-client; client restricted-client may not present it")
}

// TestChainForgedCarriedClaims: an IDP's token may say what it likes of
// its user (it is the IDP's word, checked as any claim), but nothing the
// STS did not sign appears as a carried claim: not a carried list of the
// IDP's, not an edited token of the STS's, not a token signed with another
// key under the STS's issuer.
func TestChainForgedCarriedClaims(t *testing.T) {
	srv := startServer(t, serveOptions{})
	idpToken := mockToken(t, "carol", map[string]any{
		"groups": []string{"contractor"}, "roles": []string{"buyer"}, "entitlements": []string{"orders"},
		"carried": []string{"nothing"}, "idp": "partner",
	}, 0)
	t1, c := srv.mustExchange(t, exchangeForm(idpToken, "audience", "orders-api"))
	for k, want := range map[string]any{
		"groups": []any{"contractor"}, "roles": []any{"buyer"}, "entitlements": []any{"orders"},
		"carried": []any{"groups", "roles", "entitlements"}, "idp": "mock",
	} {
		if !reflect.DeepEqual(c[k], want) {
			t.Errorf("T1 %s = %v, want %v", k, c[k], want)
		}
	}

	// The STS's token with its groups edited out: the signature no longer holds.
	parts := strings.Split(t1, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	json.Unmarshal(payload, &claims)
	claims["groups"] = []string{}
	edited, _ := json.Marshal(claims)
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString(edited) + "." + parts[2]
	r := srv.exchange(t, onward(forged, "billing-api", "scope", "billing:read"), ordersService...)
	expectRefusal(t, r, http.StatusBadRequest, "invalid_request", "subject_token: invalid token: signature")

	// A token under the STS's issuer signed with the mock IDP's key (public):
	// only the STS's own keys and algorithm verify its tokens.
	claims["groups"], claims["iss"] = []string{"staff"}, srv.URL
	impostor, err := mockidp.JWT(mockidp.TokenOptions{Issuer: srv.URL, Sub: "carol", Aud: "orders-api", Claims: claims, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	r = srv.exchange(t, onward(impostor, "billing-api", "scope", "billing:read"), ordersService...)
	expectRefusal(t, r, http.StatusBadRequest, "invalid_request", `subject_token: invalid token: alg "RS256" is not allowed for IDP idtx (allowed: ES256)`)
}

// TestChainUncarriedClaimRule: a chained token presented to a service
// whose workflow reads a claim it does not carry is refused, naming the
// claim; the same user's IDP token is judged on it and passes.
func TestChainUncarriedClaimRule(t *testing.T) {
	dir := t.TempDir()
	jwks, err := fixtures.FS.ReadFile(fixtures.MockIDPJWKS)
	if err != nil {
		t.Fatal(err)
	}
	config := `idps:
  - {name: mock, type: jwt, issuer: ` + mockidp.Issuer + `, jwks_file: mock.jwks, audiences: [` + mockidp.Audience + `]}
services:
  - {name: orders-api, scopes: {orders:read: {}}, default_scopes: [orders:read]}
  - {name: quiet-api, scopes: {orders:read: {}}, default_scopes: [orders:read], carry_claims: []}
  - {name: mail-api, scopes: {orders:read: {}}, default_scopes: [orders:read], workflows: [by-mail]}
  - {name: staff-api, scopes: {orders:read: {}}, default_scopes: [orders:read], workflows: [no-contractors]}
  - {name: acted-api, scopes: {orders:read: {}}, default_scopes: [orders:read], workflows: [no-contractor-actors]}
workflows:
  - name: by-mail
    deny_if: 'subject.email.endsWith("@contractor.example")'
    message: contractors may not call mail-api
  - name: no-contractors
    deny_if: 'has(subject.groups) && "contractor" in subject.groups'
    message: contractors may not call staff-api
  - name: no-contractor-actors
    deny_if: 'has(actor.groups) && "contractor" in actor.groups'
    message: contractors may not act at acted-api
clients:
  - {id: app, secret: app-secret, services: ["*"], serves: [orders-api, quiet-api], modes: [impersonation, delegation]}
`
	for name, data := range map[string][]byte{"sts.yaml": []byte(config), "mock.jwks": jwks} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	srv := startServer(t, serveOptions{config: filepath.Join(dir, "sts.yaml")})
	// serve warns of the rule at start, as config validate does.
	if want := "idtx: warning: " + filepath.Join(dir, "sts.yaml") + ":6: services[2] (mail-api): workflow by-mail reads subject.email, which no token this STS issues carries"; !strings.Contains(srv.stderr.String(), want) {
		t.Errorf("serve's stderr lacks %q:\n%s", want, srv.stderr)
	}
	app := []string{"app", "app-secret"}
	user := mockToken(t, "carol", map[string]any{"email": "carol@contractor.example", "groups": []string{"contractor"}}, 0)
	expectRefusal(t, srv.exchange(t, exchangeForm(user, "audience", "mail-api"), app...), http.StatusBadRequest, "invalid_request",
		"workflow by-mail denied: contractors may not call mail-api")

	t1, _ := srv.mustExchange(t, exchangeForm(user, "audience", "orders-api"), app...)
	expectRefusal(t, srv.exchange(t, onward(t1, "mail-api"), app...), http.StatusBadRequest, "invalid_request",
		"subject_token: workflow by-mail of mail-api reads subject.email, which the subject token, issued by this STS, does not carry (it carries sub idp act may_act groups roles entitlements): refused rather than judged without it")
	quiet, _ := srv.mustExchange(t, exchangeForm(user, "audience", "quiet-api"), app...)
	expectRefusal(t, srv.exchange(t, onward(quiet, "staff-api"), app...), http.StatusBadRequest, "invalid_request",
		"subject_token: workflow no-contractors of staff-api reads subject.groups, which the subject token, issued by this STS, does not carry (it carries sub idp act may_act): refused rather than judged without it")
	// Carried, groups is judged: the contractor is refused for what she is.
	expectRefusal(t, srv.exchange(t, onward(t1, "staff-api"), app...), http.StatusBadRequest, "invalid_request",
		"workflow no-contractors denied: contractors may not call staff-api")

	// The same holds of an actor token this STS issued: one that carries
	// no groups never passes a rule on actor.groups for want of them...
	alice := mockToken(t, "alice", nil, 0)
	expectRefusal(t, srv.exchange(t, exchangeForm(alice, "audience", "acted-api", "actor_token", quiet, "actor_token_type", tokenTypeAccessToken), app...),
		http.StatusBadRequest, "invalid_request",
		"actor_token: workflow no-contractor-actors of acted-api reads actor.groups, which the actor token, issued by this STS, does not carry (it carries sub idp act may_act): refused rather than judged without it")
	// ...one that carries them is judged on them...
	expectRefusal(t, srv.exchange(t, exchangeForm(alice, "audience", "acted-api", "actor_token", t1, "actor_token_type", tokenTypeAccessToken), app...),
		http.StatusBadRequest, "invalid_request", "workflow no-contractor-actors denied: contractors may not act at acted-api")
	// ...and the IDP's own token of the same actor is judged as before.
	expectRefusal(t, srv.exchange(t, exchangeForm(alice, "audience", "acted-api", "actor_token", user, "actor_token_type", tokenTypeJWT), app...),
		http.StatusBadRequest, "invalid_request", "workflow no-contractor-actors denied: contractors may not act at acted-api")
	if want := "services[4] (acted-api): workflow no-contractor-actors reads actor.groups"; strings.Contains(srv.stderr.String(), want) {
		t.Errorf("serve warns of actor.groups, which tokens carry by default:\n%s", srv.stderr)
	}
}

// TestChainCarriedClaimsAreTheFirstExchanges: the carried groups are the
// IDP's as of the first exchange (docs/security.md, "What resource servers
// see"): a chain under way keeps them when the user's IDP token changes,
// bounded by the first token's lifetime, and a fresh exchange of the new
// IDP token starts a chain with the new ones.
func TestChainCarriedClaimsAreTheFirstExchanges(t *testing.T) {
	srv := startServer(t, serveOptions{})
	contractor := map[string]any{"groups": []string{"contractor"}}
	old, _ := srv.mustExchange(t, exchangeForm(mockToken(t, "carol", contractor, 0), "audience", "orders-api"))
	// The IDP no longer names carol a contractor: her new token passes...
	fresh, _ := srv.mustExchange(t, exchangeForm(mockToken(t, "carol", nil, 0), "audience", "orders-api"))
	srv.mustExchange(t, onward(fresh, "billing-api", "scope", "billing:read"), ordersService...)
	// ...and the chain begun before still judges her on what it carried.
	expectRefusal(t, srv.exchange(t, onward(old, "billing-api", "scope", "billing:read"), ordersService...),
		http.StatusBadRequest, "invalid_request", "workflow no-contractors denied")
	// The other way round: alice's chain carries no contractor group
	// though her IDP now says she is one; her new token is refused.
	alice, _ := srv.mustExchange(t, exchangeForm(mockToken(t, "alice", nil, 0), "audience", "orders-api"))
	srv.mustExchange(t, onward(alice, "billing-api", "scope", "billing:read"), ordersService...)
	expectRefusal(t, srv.exchange(t, exchangeForm(mockToken(t, "alice", contractor, 0), "audience", "billing-api", "scope", "billing:read")),
		http.StatusBadRequest, "invalid_request", "workflow no-contractors denied")

	// The bound: no hop outlives the first token; once it expires, the
	// stale groups go with it.
	short, c1 := srv.mustExchange(t, exchangeForm(mockToken(t, "alice", nil, 3*time.Second), "audience", "orders-api"))
	_, c2 := srv.mustExchange(t, onward(short, "billing-api", "scope", "billing:read"), ordersService...)
	if c2["exp"].(float64) > c1["exp"].(float64) {
		t.Fatalf("hop 2 exp %v is past the first token's %v", c2["exp"], c1["exp"])
	}
	for deadline := time.Now().Add(15 * time.Second); ; {
		r := srv.exchange(t, onward(short, "billing-api", "scope", "billing:read"), ordersService...)
		if r.status != http.StatusOK {
			expectRefusal(t, r, http.StatusBadRequest, "invalid_request", "subject_token: invalid token: expired at")
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the first token still exchanges after its exp %v", c1["exp"])
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestChainDepthOnMock: along the mock's chain, orders-service delegating
// hop after hop grows the act chain until max_delegation_depth (5 by
// default) refuses the next actor.
func TestChainDepthOnMock(t *testing.T) {
	srv := startServer(t, serveOptions{})
	tok, _ := srv.mustExchange(t, exchangeForm(mockToken(t, "alice", nil, 0), "audience", "orders-api"))
	scope := []string{"scope", "billing:read"}
	for depth := 1; depth <= 5; depth++ {
		actor := mockToken(t, fmt.Sprintf("worker-%d", depth), nil, 0)
		tok, _ = srv.mustExchange(t, onward(tok, "billing-api", append(scope, "actor_token", actor, "actor_token_type", tokenTypeJWT)...), ordersService...)
		scope = nil // billing:read is the token's own from here
	}
	r := srv.exchange(t, onward(tok, "billing-api", "actor_token", mockToken(t, "worker-6", nil, 0), "actor_token_type", tokenTypeJWT), ordersService...)
	expectRefusal(t, r, http.StatusBadRequest, "invalid_request", "actor_token: the act chain would be 6 actors deep; max_delegation_depth is 5")
}
