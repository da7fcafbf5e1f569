package exchange_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/idtx/idtx/idp"
	"github.com/idtx/idtx/store"
)

// A chained exchange (a token this STS issued presented again as the
// subject) must not be a way around a rule the first exchange of the
// user's IDP token would have met. Each case first exchanges the IDP
// token over POST /token, then presents what it got.

// The user's may_act survives the first hop: a second hop may delegate
// only to the actor it names.
func TestChainedExchangeKeepsMayAct(t *testing.T) {
	e := newEnv(t)
	corpActor := func(sub string) string { return e.corp.sign(t, e.claims(jwt.MapClaims{"sub": sub}), nil) }
	subject := e.subject(jwt.MapClaims{"may_act": map[string]any{"sub": "gateway"}})

	// Directly: eve is refused.
	r := e.post("/token", e.form(subject, "actor_token", corpActor("eve"), "actor_token_type", idp.TokenTypeJWT))
	expectError(t, r, 400, "invalid_request", `actor_token: sub "eve" is not the may_act sub of the subject token`)

	first := mustOK(t, e.post("/token", e.form(subject)))
	claims, _ := e.issued(first)
	if want := map[string]any{"sub": "gateway", "iss": "https://idp.test"}; !reflect.DeepEqual(claims["may_act"], want) {
		t.Fatalf("may_act carried = %v, want %v (iss made explicit)", claims["may_act"], want)
	}
	chained := func(actor string) response {
		return e.post("/token", e.form(first, "subject_token_type", idp.TokenTypeAccessToken,
			"actor_token", actor, "actor_token_type", idp.TokenTypeJWT))
	}
	expectError(t, chained(corpActor("eve")), 400, "invalid_request", `actor_token: sub "eve" is not the may_act sub of the subject token`)
	// An actor of another IDP with the right sub: the carried iss is the
	// user's IDP, not the STS.
	expectError(t, chained(e.workload("gateway", nil)), 400, "invalid_request",
		`actor_token: iss "https://other.test" is not the may_act iss "https://idp.test"`)
	delegated, _ := e.issued(mustOK(t, chained(corpActor("gateway"))))
	if !reflect.DeepEqual(delegated["may_act"], claims["may_act"]) {
		t.Fatalf("may_act after delegation = %v", delegated["may_act"])
	}

	// A may_act that would be refused now is refused after a hop too.
	malformed := mustOK(t, e.post("/token", e.form(e.subject(jwt.MapClaims{"may_act": "gateway"}))))
	r = e.post("/token", e.form(malformed, "subject_token_type", idp.TokenTypeAccessToken,
		"actor_token", corpActor("gateway"), "actor_token_type", idp.TokenTypeJWT))
	expectError(t, r, 400, "invalid_request", "subject_token: may_act is not a JSON object")
}

// subject_scopes_only grants what the user's IDP granted; a token this
// STS issued carries what the STS granted for another service.
func TestChainedExchangeSubjectScopesOnly(t *testing.T) {
	e := policyEnv(t, "", "  - {name: wide-api, scopes: {narrow:b: {}}, default_scopes: [narrow:b]}\n", "")
	subject := e.subject(nil) // scope narrow:a
	expectError(t, e.post("/token", e.form(subject, "audience", "narrow-api", "scope", "narrow:b")), 400, "invalid_scope",
		`scope "narrow:b" is not among the subject token's scopes, and narrow-api grants no more than those`)
	first := mustOK(t, e.post("/token", e.form(subject, "audience", "wide-api", "scope", "narrow:b")))
	for _, scope := range []string{"narrow:b", "narrow:a"} {
		r := e.post("/token", e.form(first, "subject_token_type", idp.TokenTypeAccessToken, "audience", "narrow-api", "scope", scope))
		expectError(t, r, 400, "invalid_request",
			"subject_token: narrow-api grants only scopes the user's IDP granted (subject_scopes_only), and a token this STS issued does not carry them; exchange the IDP's token instead")
	}
}

// A service's workflows judge the IDP token's claims; a token this STS
// issued lacks them (here groups), so it is refused rather than passed.
func TestChainedExchangeWorkflows(t *testing.T) {
	// reports-api offers billing:read too, and runs no workflow.
	e := newEnvWith(t, store.NewMemory(), func(yaml string, files map[string][]byte) string {
		yaml = withWorkflows("no-interns, tag-dept", celWorkflows)(yaml, files)
		return strings.Replace(yaml, "services:\n", "services:\n  - {name: reports-api, scopes: {billing:read: {}}, default_scopes: [billing:read]}\n", 1)
	})
	if err := e.store.Grant(t.Context(), "corp", "alice", "billing-api", []string{"billing:read"}); err != nil {
		t.Fatal(err)
	}
	intern := e.subject(jwt.MapClaims{"groups": []string{"interns"}, "email": "alice@corp.example"})
	expectError(t, e.post("/token", e.form(intern, "audience", "billing-api")), 400, "invalid_request",
		"workflow no-interns denied: interns may not call billing")
	first := mustOK(t, e.post("/token", e.form(intern, "audience", "reports-api")))
	r := e.post("/token", e.form(first, "subject_token_type", idp.TokenTypeAccessToken, "audience", "billing-api"))
	expectError(t, r, 400, "invalid_request",
		"subject_token: billing-api runs workflows (no-interns, tag-dept) on the claims of the user's IDP token, which a token this STS issued does not carry; exchange the IDP's token instead")
	// A service without workflows still takes the chained token.
	mustOK(t, e.post("/token", e.form(first, "subject_token_type", idp.TokenTypeAccessToken, "audience", "reports-api")))
}

// A token this STS issued by delegation (sub alice, act mallory) is not
// an actor: the party acting through it is mallory, whom a new chain
// with alice as the actor would hide.
func TestDelegatedTokenIsNoActor(t *testing.T) {
	e := newEnv(t)
	delegated := mustOK(t, e.post("/token", e.form(e.subject(nil),
		"actor_token", e.workload("mallory", nil), "actor_token_type", idp.TokenTypeJWT)))
	bob := e.subject(jwt.MapClaims{"sub": "bob"})
	r := e.post("/token", e.form(bob, "actor_token", delegated, "actor_token_type", idp.TokenTypeAccessToken))
	expectError(t, r, 400, "invalid_request", "actor_token: it carries act (RFC 8693 §4.1): it is itself a delegated token; present the actor's own token")
	// The STS's impersonation token, which carries no act, may act.
	own := mustOK(t, e.post("/token", e.form(e.subject(nil))))
	mustOK(t, e.post("/token", e.form(bob, "actor_token", own, "actor_token_type", idp.TokenTypeAccessToken)))
}
