package exchange_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/idtx/idtx/oauth"
	"github.com/idtx/idtx/store"
)

// policyEnv is the test config with top-level keys prepended, services
// added and clients appended.
func policyEnv(t *testing.T, top, services, clients string) *env {
	t.Helper()
	return newEnvWith(t, store.NewMemory(), func(yaml string, _ map[string][]byte) string {
		yaml = strings.Replace(yaml, "\nclients:\n", "\n"+services+"clients:\n", 1)
		return top + yaml + clients
	})
}

// chainServices are four services a request passes through, each the
// resource server of the next hop, all offering chain:read.
const chainServices = `  - {name: svc1, scopes: {chain:read: {}}, default_scopes: [chain:read]}
  - {name: svc2, scopes: {chain:read: {}}, default_scopes: [chain:read]}
  - {name: svc3, scopes: {chain:read: {}}, default_scopes: [chain:read]}
  - {name: svc4, scopes: {chain:read: {}}, default_scopes: [chain:read]}
`

// chainClients: svcN-client serves svcN and delegates onward to svcN+1.
const chainClients = `  - {id: svc1-client, secret: s1, services: [svc2], serves: [svc1], modes: [delegation]}
  - {id: svc2-client, secret: s2, services: [svc3], serves: [svc2], modes: [delegation]}
  - {id: svc3-client, secret: s3, services: [svc4], serves: [svc3], modes: [delegation]}
  - {id: svc4-client, secret: s4, services: [svc4], serves: [svc4], modes: [impersonation]}
`

// workload is a token of the IDP "other" for a service's own identity,
// as an actor token.
func (e *env) workload(sub string, over jwt.MapClaims) string {
	c := jwt.MapClaims{"iss": "https://other.test", "sub": sub, "aud": "idtx-sts", "exp": e.now.Add(time.Hour).Unix()}
	for k, v := range over {
		c[k] = v
	}
	return e.other.sign(e.t, c, nil)
}

// hop is one delegation: client presents subject (an STS token when
// subjectType is access_token) with an actor token of actorSub, for target.
func (e *env) hop(subject, subjectType, actorSub, target, client, secret string) response {
	e.t.Helper()
	return e.post("/token", e.form(subject, "subject_token_type", subjectType, "audience", target,
		"actor_token", e.workload(actorSub, nil), "actor_token_type", oauth.TokenTypeJWT), client, secret)
}

func mustOK(t *testing.T, r response) string {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("%d %v", r.status, r.body)
	}
	return r.str("access_token")
}

// act builds the act claim of actors given newest first.
func act(subs ...string) map[string]any {
	var a map[string]any
	for i := len(subs) - 1; i >= 0; i-- {
		m := map[string]any{"sub": subs[i], "iss": "https://other.test"}
		if a != nil {
			m["act"] = a
		}
		a = m
	}
	return a
}

// TestActChainThreeHops: alice → svc1 → svc2 → svc3, each hop a delegation
// whose subject is the previous STS token, presented by the client that
// serves that token's audience; the final act reads newest first.
func TestActChainThreeHops(t *testing.T) {
	e := policyEnv(t, "", chainServices, chainClients)
	at := oauth.TokenTypeAccessToken
	t1 := mustOK(t, e.hop(e.subject(nil), oauth.TokenTypeJWT, "svc1", "svc2", "svc1-client", "s1"))
	t2 := mustOK(t, e.hop(t1, at, "svc2", "svc3", "svc2-client", "s2"))
	t3 := mustOK(t, e.hop(t2, at, "svc3", "svc4", "svc3-client", "s3"))

	claims, _ := e.issued(t3)
	if want := act("svc3", "svc2", "svc1"); !reflect.DeepEqual(claims["act"], want) {
		t.Fatalf("act = %v, want %v", claims["act"], want)
	}
	if claims["sub"] != "alice" || claims["idp"] != "corp" || claims["client_id"] != "svc3-client" || claims["scope"] != "chain:read" {
		t.Errorf("claims %v", claims)
	}
	var got []string
	for a, _ := claims["act"].(map[string]any); a != nil; a, _ = a["act"].(map[string]any) {
		got = append(got, a["sub"].(string))
	}
	if strings.Join(got, " ") != "svc3 svc2 svc1" {
		t.Errorf("actors newest first: %v", got)
	}

	t.Run("impersonating a chained token keeps its chain", func(t *testing.T) {
		t4 := mustOK(t, e.post("/token", e.form(t3, "subject_token_type", at, "audience", "svc4"), "svc4-client", "s4"))
		claims, _ := e.issued(t4)
		if !reflect.DeepEqual(claims["act"], act("svc3", "svc2", "svc1")) {
			t.Errorf("act = %v", claims["act"])
		}
	})
	t.Run("a hop by a client not entitled to the subject token", func(t *testing.T) {
		// svc3-client serves svc3, but t1 is for svc2 and was issued to svc1-client.
		r := e.hop(t1, at, "svc3", "svc4", "svc3-client", "s3")
		expectError(t, r, 400, "invalid_request", "subject_token was issued to client svc1-client; client svc3-client may not present it")
	})
}

func TestDelegationDepth(t *testing.T) {
	e := policyEnv(t, "max_delegation_depth: 2\n", chainServices, chainClients)
	at := oauth.TokenTypeAccessToken
	t1 := mustOK(t, e.hop(e.subject(nil), oauth.TokenTypeJWT, "svc1", "svc2", "svc1-client", "s1"))
	t2 := mustOK(t, e.hop(t1, at, "svc2", "svc3", "svc2-client", "s2"))
	r := e.hop(t2, at, "svc3", "svc4", "svc3-client", "s3")
	expectError(t, r, 400, "invalid_request", "actor_token: the act chain would be 3 actors deep; max_delegation_depth is 2")

	t.Run("an own token already deeper than the limit", func(t *testing.T) {
		deep := e.own(t, jwt.MapClaims{"aud": "svc4", "client_id": "svc4-client", "scope": "chain:read", "act": act("c", "b", "a")})
		r := e.post("/token", e.form(deep, "subject_token_type", at, "audience", "svc4"), "svc4-client", "s4")
		expectError(t, r, 400, "invalid_request", "subject_token: its act chain is deeper than max_delegation_depth 2")
	})
}

// own signs claims with the STS's key, as a token it issued; over
// overrides the defaults (a nil value deletes the claim).
func (e *env) own(t *testing.T, over jwt.MapClaims) string {
	t.Helper()
	c := jwt.MapClaims{
		"iss": "https://sts.test", "sub": "alice", "aud": "orders-api", "client_id": "demo-client",
		"scope": "orders:read", "idp": "corp", "iat": e.now.Unix(), "exp": e.now.Add(5 * time.Minute).Unix(), "jti": "j",
	}
	for k, v := range over {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	tok, err := e.sts.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestActOnlyWhatTheSTSChecked: an act from an external IDP is never
// signed; an own token's chain is stripped to sub, iss and act; a
// malformed own chain is refused.
func TestActOnlyWhatTheSTSChecked(t *testing.T) {
	e := newEnv(t)
	forged := map[string]any{"sub": "admin", "iss": "https://sts.test", "act": map[string]any{"sub": "root", "iss": "https://sts.test"}}

	t.Run("impersonation of an IDP token carrying act", func(t *testing.T) {
		r := e.post("/token", e.form(e.subject(jwt.MapClaims{"act": forged})), "restricted-client", "restricted-secret")
		claims, _ := e.issued(mustOK(t, r))
		if a, ok := claims["act"]; ok {
			t.Fatalf("an IDP's act was signed: %v", a)
		}
	})
	t.Run("delegation of an IDP token carrying act", func(t *testing.T) {
		r := e.post("/token", e.form(e.subject(jwt.MapClaims{"act": forged}),
			"actor_token", e.workload("gateway", nil), "actor_token_type", oauth.TokenTypeJWT))
		claims, _ := e.issued(mustOK(t, r))
		if want := act("gateway"); !reflect.DeepEqual(claims["act"], want) {
			t.Fatalf("act = %v, want %v", claims["act"], want)
		}
	})
	// An actor token that is itself delegated names, in its sub, a party
	// that is not the one acting: its act chain was dropped when such a
	// token was taken, and a resource server saw the wrong actor.
	t.Run("an actor token carrying act is refused", func(t *testing.T) {
		r := e.post("/token", e.form(e.subject(nil),
			"actor_token", e.workload("gateway", jwt.MapClaims{"act": forged}), "actor_token_type", oauth.TokenTypeJWT))
		expectError(t, r, 400, "invalid_request", "actor_token: it carries act (RFC 8693 §4.1): it is itself a delegated token; present the actor's own token")
	})
	t.Run("an own chain keeps sub, iss and act only", func(t *testing.T) {
		chain := map[string]any{"sub": "b", "iss": "https://other.test", "scope": "admin",
			"act": map[string]any{"sub": "a", "iss": "https://other.test", "client_id": "x", "may_act": map[string]any{"sub": "z"}}}
		r := e.post("/token", e.form(e.own(t, jwt.MapClaims{"act": chain}), "subject_token_type", oauth.TokenTypeAccessToken))
		claims, _ := e.issued(mustOK(t, r))
		if want := act("b", "a"); !reflect.DeepEqual(claims["act"], want) {
			t.Fatalf("act = %v, want %v", claims["act"], want)
		}
	})
	for _, tc := range []struct {
		name string
		act  any
		want string
	}{
		{"act not an object", "admin", "subject_token: act at depth 1 is not a JSON object"},
		{"nested act not an object", map[string]any{"sub": "b", "iss": "https://other.test", "act": []any{"a"}}, "subject_token: act at depth 2 is not a JSON object"},
		{"act without sub", map[string]any{"iss": "https://other.test"}, "subject_token: act at depth 1 lacks a sub or iss string"},
		{"nested act without iss", map[string]any{"sub": "b", "iss": "https://other.test", "act": map[string]any{"sub": "a"}}, "subject_token: act at depth 2 lacks a sub or iss string"},
		{"sub not a string", map[string]any{"sub": 7, "iss": "https://other.test"}, "subject_token: act at depth 1 lacks a sub or iss string"},
	} {
		t.Run("malformed own chain: "+tc.name, func(t *testing.T) {
			r := e.post("/token", e.form(e.own(t, jwt.MapClaims{"act": tc.act}), "subject_token_type", oauth.TokenTypeAccessToken))
			expectError(t, r, 400, "invalid_request", tc.want)
		})
	}
}

func TestMayAct(t *testing.T) {
	e := newEnv(t)
	gateway := e.workload("gateway", jwt.MapClaims{"client_id": "gw"})
	corpGateway := e.corp.sign(t, e.claims(jwt.MapClaims{"sub": "gateway"}), nil)
	delegate := func(mayAct any, actor string) response {
		t.Helper()
		over := jwt.MapClaims{}
		if mayAct != nil {
			over["may_act"] = mayAct
		}
		return e.post("/token", e.form(e.subject(over), "actor_token", actor, "actor_token_type", oauth.TokenTypeJWT))
	}
	for _, tc := range []struct {
		name   string
		mayAct any
		actor  string
		want   string // "" for success
	}{
		{"without iss, actor of the subject's IDP", map[string]any{"sub": "gateway"}, corpGateway, ""},
		{"without iss, actor of another IDP", map[string]any{"sub": "gateway"}, gateway,
			`actor_token: iss "https://other.test" is not the subject's own issuer (may_act has no iss) "https://idp.test"`},
		{"with iss, matching", map[string]any{"sub": "gateway", "iss": "https://other.test"}, gateway, ""},
		{"with iss, actor of another IDP", map[string]any{"sub": "gateway", "iss": "https://other.test"}, corpGateway,
			`actor_token: iss "https://idp.test" is not the may_act iss "https://other.test"`},
		{"another sub", map[string]any{"sub": "someone", "iss": "https://other.test"}, gateway,
			`actor_token: sub "gateway" is not the may_act sub of the subject token`},
		{"no sub", map[string]any{"iss": "https://other.test"}, gateway, "subject_token: may_act names no sub"},
		{"not an object", "gateway", gateway, "subject_token: may_act is not a JSON object"},
		{"iss not a string", map[string]any{"sub": "gateway", "iss": 1}, gateway, "subject_token: may_act iss is not a string"},
		{"another member matching", map[string]any{"sub": "gateway", "iss": "https://other.test", "client_id": "gw"}, gateway, ""},
		{"another member not matching", map[string]any{"sub": "gateway", "iss": "https://other.test", "client_id": "evil"}, gateway,
			`actor_token: claim "client_id" does not match the subject's may_act`},
		{"absent: the client's delegation mode decides", nil, gateway, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := delegate(tc.mayAct, tc.actor)
			if tc.want == "" {
				mustOK(t, r)
				return
			}
			expectError(t, r, 400, "invalid_request", tc.want)
		})
	}
}

func TestRequireMayAct(t *testing.T) {
	withMayAct := jwt.MapClaims{"may_act": map[string]any{"sub": "gateway", "iss": "https://other.test"}}
	t.Run("per service", func(t *testing.T) {
		e := policyEnv(t, "", "  - {name: strict-api, scopes: {s:read: {}}, default_scopes: [s:read], require_may_act: true}\n", "")
		send := func(aud ...string) response {
			f := e.form(e.subject(nil), "actor_token", e.workload("gateway", nil), "actor_token_type", oauth.TokenTypeJWT)
			f["audience"] = aud
			return e.post("/token", f)
		}
		mustOK(t, send("orders-api"))
		expectError(t, send("strict-api"), 400, "invalid_request", "actor_token: subject token has no may_act and service strict-api requires it")
		// A second audience without the rule does not lift it.
		expectError(t, send("orders-api", "strict-api"), 400, "invalid_request", "subject token has no may_act and service strict-api requires it")
		f := e.form(e.subject(withMayAct), "audience", "strict-api", "actor_token", e.workload("gateway", nil), "actor_token_type", oauth.TokenTypeJWT)
		mustOK(t, e.post("/token", f))
	})
	t.Run("config-wide", func(t *testing.T) {
		e := policyEnv(t, "require_may_act: true\n", "", "")
		r := e.post("/token", e.form(e.subject(nil), "actor_token", e.workload("gateway", nil), "actor_token_type", oauth.TokenTypeJWT))
		expectError(t, r, 400, "invalid_request", "actor_token: subject token has no may_act and the configuration requires it (require_may_act)")
		mustOK(t, e.post("/token", e.form(e.subject(withMayAct), "actor_token", e.workload("gateway", nil), "actor_token_type", oauth.TokenTypeJWT)))
	})
}

// TestScopeEveryTargetsRules: a second audience offering the same scope
// name does not relax the first's rules.
func TestScopeEveryTargetsRules(t *testing.T) {
	e := policyEnv(t, "", "  - {name: wide-api, scopes: {narrow:b: {}, wide:x: {}}}\n", "")
	send := func(scope string, aud ...string) response {
		f := e.form(e.subject(nil), "scope", scope)
		f["audience"] = aud
		return e.post("/token", f)
	}
	// The subject token holds narrow:a only; narrow-api grants no more.
	expectError(t, send("narrow:b", "wide-api", "narrow-api"), 400, "invalid_scope",
		`scope "narrow:b" is not among the subject token's scopes, and narrow-api grants no more than those`)
	expectError(t, send("narrow:b", "narrow-api", "wide-api"), 400, "invalid_scope", "narrow-api grants no more than those")
	// A scope offered by one target only is granted: every service in aud
	// receives the token, and only the offering ones' rules apply.
	if r := send("wide:x narrow:a", "wide-api", "narrow-api"); r.status != 200 || r.str("scope") != "wide:x narrow:a" {
		t.Errorf("%d %v", r.status, r.body)
	}
	expectError(t, send("nobody:s", "wide-api", "narrow-api"), 400, "invalid_scope", `scope "nobody:s" is not offered by wide-api, narrow-api`)
}

// TestOwnTokenHolder: a token the STS issued is accepted, as subject or
// actor, only from the client it was issued to or one serving its aud.
func TestOwnTokenHolder(t *testing.T) {
	e := policyEnv(t, "", "", `  - {id: orders-rs, secret: rs, services: [orders-api], serves: [orders-api]}
  - {id: billing-rs, secret: rs, services: ["*"], serves: [billing-api], modes: [impersonation, delegation]}
`)
	at := oauth.TokenTypeAccessToken
	issued := mustOK(t, e.post("/token", e.form(e.subject(nil)))) // demo-client, orders-api, orders:read

	mustOK(t, e.post("/token", e.form(issued, "subject_token_type", at)))                    // the client it was issued to
	mustOK(t, e.post("/token", e.form(issued, "subject_token_type", at), "orders-rs", "rs")) // serves orders-api
	expectError(t, e.post("/token", e.form(issued, "subject_token_type", at), "restricted-client", "restricted-secret"),
		400, "invalid_request", "subject_token was issued to client demo-client; client restricted-client may not present it")
	expectError(t, e.post("/token", e.form(issued, "subject_token_type", at), "billing-rs", "rs"),
		400, "invalid_request", "subject_token was issued to client demo-client; client billing-rs may not present it")

	t.Run("as actor", func(t *testing.T) {
		f := e.form(e.subject(nil), "actor_token", issued, "actor_token_type", at)
		expectError(t, e.post("/token", f, "billing-rs", "rs"), 400, "invalid_request",
			"actor_token was issued to client demo-client; client billing-rs may not present it")
		claims, _ := e.issued(mustOK(t, e.post("/token", f)))
		if want := map[string]any{"sub": "alice", "iss": "https://sts.test"}; !reflect.DeepEqual(claims["act"], want) {
			t.Errorf("act = %v, want %v", claims["act"], want)
		}
	})
	t.Run("aud as an array", func(t *testing.T) {
		two := e.own(t, jwt.MapClaims{"aud": []string{"billing-api", "orders-api"}, "client_id": "someone"})
		mustOK(t, e.post("/token", e.form(two, "subject_token_type", at), "orders-rs", "rs"))
		expectError(t, e.post("/token", e.form(two, "subject_token_type", at), "restricted-client", "restricted-secret"),
			400, "invalid_request", "subject_token was issued to client someone; client restricted-client may not present it")
	})
}

// TestNoScopeWidening: an STS token's scopes bound the next token's,
// unless the target service allows widening.
func TestNoScopeWidening(t *testing.T) {
	e := policyEnv(t, "", "  - {name: open-api, scopes: {open:read: {}, orders:write: {}}, default_scopes: [open:read], allow_scope_widening: true}\n"+
		"  - {name: plain-api, scopes: {plain:read: {}}}\n", "")
	at := oauth.TokenTypeAccessToken
	issued := mustOK(t, e.post("/token", e.form(e.subject(nil)))) // orders:read for orders-api
	widen := `scope "orders:write" is not among the scopes of the subject token this STS issued, and orders-api does not allow widening them (allow_scope_widening)`

	expectError(t, e.post("/token", e.form(issued, "subject_token_type", at, "scope", "orders:write")), 400, "invalid_scope", widen)
	expectError(t, e.post("/token", e.form(issued, "subject_token_type", at, "scope", "orders:read orders:write")), 400, "invalid_scope", widen)
	// Another service's default scope is widening too: X's token does not
	// become Y's by leaving scope out.
	other := `scope "billing:read" is not among the scopes of the subject token this STS issued; billing-api grants such a scope only when the request names it and it needs the user's consent (consent: true), or when it allows widening (allow_scope_widening)`
	expectError(t, e.post("/token", e.form(issued, "subject_token_type", at, "audience", "billing-api")), 400, "invalid_scope", other)
	// Named, a scope of another service that needs consent is gated by
	// the user's stored consent (alice's is stored, bob has none); one
	// that needs none is widening.
	if r := e.post("/token", e.form(issued, "subject_token_type", at, "audience", "billing-api", "scope", "billing:read")); r.str("scope") != "billing:read" {
		t.Errorf("a consented scope of another service: %d %v", r.status, r.body)
	}
	bobs := mustOK(t, e.post("/token", e.form(e.subject(jwt.MapClaims{"sub": "bob"}))))
	expectError(t, e.post("/token", e.form(bobs, "subject_token_type", at, "audience", "billing-api", "scope", "billing:read")), 400, "consent_required",
		"bob of IDP corp has not consented to billing:read for billing-api")
	expectError(t, e.post("/token", e.form(issued, "subject_token_type", at, "audience", "plain-api", "scope", "plain:read")), 400, "invalid_scope",
		`scope "plain:read" is not among the scopes of the subject token this STS issued; plain-api grants such a scope only when the request names it and it needs the user's consent`)
	// A second audience that allows widening does not lift orders-api's rule.
	f := e.form(issued, "subject_token_type", at, "scope", "orders:write")
	f["audience"] = []string{"open-api", "orders-api"}
	expectError(t, e.post("/token", f), 400, "invalid_scope", widen)

	if r := e.post("/token", e.form(issued, "subject_token_type", at, "scope", "orders:read")); r.str("scope") != "orders:read" {
		t.Errorf("narrowing or keeping: %d %v", r.status, r.body)
	}
	if r := e.post("/token", e.form(issued, "subject_token_type", at, "audience", "open-api", "scope", "open:read orders:write")); r.str("scope") != "open:read orders:write" {
		t.Errorf("allow_scope_widening: %d %v", r.status, r.body)
	}
}

// TestIntrospectionOnlyForTheHolder: RFC 7662 §4, a client learns
// nothing about a token it neither was issued nor serves.
func TestIntrospectionOnlyForTheHolder(t *testing.T) {
	e := policyEnv(t, "", "", `  - {id: orders-rs, secret: rs, services: [orders-api], serves: [orders-api]}
  - {id: billing-rs, secret: rs, services: [billing-api], serves: [billing-api]}
`)
	issued := mustOK(t, e.post("/token", e.form(e.subject(nil)))) // demo-client, orders-api
	for _, tc := range []struct {
		client, secret string
		active         bool
	}{
		{"demo-client", "demo-secret", true},
		{"orders-rs", "rs", true},
		{"billing-rs", "rs", false},
		{"restricted-client", "restricted-secret", false},
	} {
		r := e.post("/introspect", map[string][]string{"token": {issued}}, tc.client, tc.secret)
		if r.status != 200 || r.body["active"] != tc.active {
			t.Errorf("%s: %d %v, want active %v", tc.client, r.status, r.body, tc.active)
		}
		if !tc.active && len(r.body) != 1 {
			t.Errorf("%s: a refused caller learned %v", tc.client, r.body)
		}
		if tc.active && r.body["sub"] != "alice" {
			t.Errorf("%s: %v", tc.client, r.body)
		}
	}
}
