package exchange_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/idtx/idtx/oauth"
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
	r := e.post("/token", e.form(subject, "actor_token", corpActor("eve"), "actor_token_type", oauth.TokenTypeJWT))
	expectError(t, r, 400, "invalid_request", `actor_token: sub "eve" is not the may_act sub of the subject token`)

	first := mustOK(t, e.post("/token", e.form(subject)))
	claims, _ := e.issued(first)
	if want := map[string]any{"sub": "gateway", "iss": "https://idp.test"}; !reflect.DeepEqual(claims["may_act"], want) {
		t.Fatalf("may_act carried = %v, want %v (iss made explicit)", claims["may_act"], want)
	}
	chained := func(actor string) response {
		return e.post("/token", e.form(first, "subject_token_type", oauth.TokenTypeAccessToken,
			"actor_token", actor, "actor_token_type", oauth.TokenTypeJWT))
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
	r = e.post("/token", e.form(malformed, "subject_token_type", oauth.TokenTypeAccessToken,
		"actor_token", corpActor("gateway"), "actor_token_type", oauth.TokenTypeJWT))
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
		r := e.post("/token", e.form(first, "subject_token_type", oauth.TokenTypeAccessToken, "audience", "narrow-api", "scope", scope))
		expectError(t, r, 400, "invalid_request",
			"subject_token: narrow-api grants only scopes the user's IDP granted (subject_scopes_only), and a token this STS issued does not carry them; exchange the IDP's token instead")
	}
}

// A service's workflows judge a token this STS issued on the identity
// claims it carries, as the IDP gave them at the first exchange, with the
// user's own sub and idp; a rule reading a claim the token does not carry
// is refused, naming it, never passed for want of it.
func TestChainedExchangeWorkflows(t *testing.T) {
	// reports-api offers billing:read too, and runs no workflow;
	// quiet-api carries none of the user's claims.
	e := newEnvWith(t, store.NewMemory(), func(yaml string, files map[string][]byte) string {
		yaml = withWorkflows("no-interns", celWorkflows+`  - name: act-sub
    deny_if: 'subject.sub != "alice" || subject.idp != "corp" || (has(subject.act) && subject.act.sub == "mallory")'
    message: not alice of corp, or mallory acts
`)(yaml, files)
		yaml = strings.Replace(yaml, "workflows: [no-interns]", "workflows: [no-interns, act-sub]", 1)
		return strings.Replace(yaml, "services:\n", "services:\n  - {name: reports-api, scopes: {billing:read: {}}, default_scopes: [billing:read]}\n"+
			"  - {name: quiet-api, scopes: {billing:read: {}}, default_scopes: [billing:read], carry_claims: []}\n"+
			"  - {name: mail-api, scopes: {billing:read: {}}, default_scopes: [billing:read], workflows: [tag-dept]}\n", 1)
	})
	if err := e.store.Grant(t.Context(), "corp", "alice", "billing-api", []string{"billing:read"}); err != nil {
		t.Fatal(err)
	}
	at := oauth.TokenTypeAccessToken
	chained := func(first string, aud string) response {
		return e.post("/token", e.form(first, "subject_token_type", at, "audience", aud))
	}
	intern := e.subject(jwt.MapClaims{"groups": []string{"interns"}, "email": "alice@corp.example"})
	expectError(t, e.post("/token", e.form(intern, "audience", "billing-api")), 400, "invalid_request",
		"workflow no-interns denied: interns may not call billing")
	first := mustOK(t, e.post("/token", e.form(intern, "audience", "reports-api")))
	claims, _ := e.issued(first)
	if !reflect.DeepEqual(claims["groups"], []any{"interns"}) || !reflect.DeepEqual(claims["carried"], []any{"groups", "roles", "entitlements"}) {
		t.Fatalf("first hop carries groups %v, carried %v", claims["groups"], claims["carried"])
	}
	// Judged on the carried groups, as the IDP's token was.
	expectError(t, chained(first, "billing-api"), 400, "invalid_request", "workflow no-interns denied: interns may not call billing")

	staff := mustOK(t, e.post("/token", e.form(e.subject(jwt.MapClaims{"groups": []string{"staff"}, "email": "alice@corp.example"}), "audience", "reports-api")))
	issued, _ := e.issued(mustOK(t, chained(staff, "billing-api")))
	if issued["sub"] != "alice" || issued["idp"] != "corp" || !reflect.DeepEqual(issued["groups"], []any{"staff"}) {
		t.Errorf("second hop: %v", issued)
	}
	// email is never carried: a rule reading it cannot judge the token.
	expectError(t, chained(staff, "mail-api"), 400, "invalid_request",
		"subject_token: workflow tag-dept of mail-api reads subject.email, which the subject token, issued by this STS, does not carry (it carries sub idp act may_act groups roles entitlements): refused rather than judged without it")
	// A token of a service that carries nothing: groups was not carried,
	// so no-interns cannot tell an intern from anyone.
	quiet := mustOK(t, e.post("/token", e.form(intern, "audience", "quiet-api")))
	if c, _ := e.issued(quiet); c["groups"] != nil || c["carried"] != nil {
		t.Errorf("carry_claims: [] still carries %v %v", c["groups"], c["carried"])
	}
	expectError(t, chained(quiet, "billing-api"), 400, "invalid_request",
		"subject_token: workflow no-interns of billing-api reads subject.groups, which the subject token, issued by this STS, does not carry (it carries sub idp act may_act): refused rather than judged without it")
	// A user without groups at her IDP: groups is carried as absent, and
	// has(subject.groups) is false at every hop.
	plain := mustOK(t, e.post("/token", e.form(e.subject(nil), "audience", "reports-api")))
	mustOK(t, chained(plain, "billing-api"))
	// The act chain is in the input: a rule judges who acts.
	delegated := mustOK(t, e.post("/token", e.form(e.subject(nil), "audience", "reports-api",
		"actor_token", e.workload("mallory", nil), "actor_token_type", oauth.TokenTypeJWT)))
	expectError(t, chained(delegated, "billing-api"), 400, "invalid_request", "workflow act-sub denied: not alice of corp, or mallory acts")
	// A service without workflows still takes the chained token.
	mustOK(t, chained(first, "reports-api"))
}

// A token this STS issued by delegation (sub alice, act mallory) is not
// an actor: the party acting through it is mallory, whom a new chain
// with alice as the actor would hide.
func TestDelegatedTokenIsNoActor(t *testing.T) {
	e := newEnv(t)
	delegated := mustOK(t, e.post("/token", e.form(e.subject(nil),
		"actor_token", e.workload("mallory", nil), "actor_token_type", oauth.TokenTypeJWT)))
	bob := e.subject(jwt.MapClaims{"sub": "bob"})
	r := e.post("/token", e.form(bob, "actor_token", delegated, "actor_token_type", oauth.TokenTypeAccessToken))
	expectError(t, r, 400, "invalid_request", "actor_token: it carries act (RFC 8693 §4.1): it is itself a delegated token; present the actor's own token")
	// The STS's impersonation token, which carries no act, may act.
	own := mustOK(t, e.post("/token", e.form(e.subject(nil))))
	mustOK(t, e.post("/token", e.form(bob, "actor_token", own, "actor_token_type", oauth.TokenTypeAccessToken)))
}

// The carried claim of the STS's own token decides what a rule may read
// of it: a token without one (an older idtx's) carries nothing, a
// malformed one is refused, and a rule that reads subject as a whole
// cannot be judged on a part of it.
func TestChainedCarriedList(t *testing.T) {
	e := newEnvWith(t, store.NewMemory(), func(yaml string, files map[string][]byte) string {
		yaml = withWorkflows("no-interns", celWorkflows+`  - name: whole
    deny_if: 'size(subject) > 100'
    message: too many claims
`)(yaml, files)
		return strings.Replace(yaml, "services:\n", "services:\n  - {name: whole-api, scopes: {orders:read: {}}, default_scopes: [orders:read], workflows: [whole]}\n", 1)
	})
	if err := e.store.Grant(t.Context(), "corp", "alice", "billing-api", []string{"billing:read"}); err != nil {
		t.Fatal(err)
	}
	at := oauth.TokenTypeAccessToken
	billing := func(tok string) response {
		return e.post("/token", e.form(tok, "subject_token_type", at, "audience", "billing-api", "scope", "billing:read"))
	}
	expectError(t, billing(e.own(t, jwt.MapClaims{"groups": []string{"staff"}})), 400, "invalid_request",
		"subject_token: workflow no-interns of billing-api reads subject.groups, which the subject token, issued by this STS, does not carry (it carries sub idp act may_act): refused")
	for _, bad := range []any{[]string{"email"}, []string{"groups", "groups"}, "groups", []any{1}} {
		expectError(t, billing(e.own(t, jwt.MapClaims{"carried": bad})), 400, "invalid_request",
			"subject_token: carried is not a list of the claims a token can carry (groups, roles, entitlements)")
	}
	mustOK(t, billing(e.own(t, jwt.MapClaims{"groups": []string{"staff"}, "carried": []string{"groups"}})))
	r := e.post("/token", e.form(e.own(t, jwt.MapClaims{"carried": []string{"groups"}}), "subject_token_type", at, "audience", "whole-api"))
	expectError(t, r, 400, "invalid_request",
		"subject_token: workflow whole of whole-api reads subject as a whole, and a token this STS issued carries only some of the user's claims (sub idp act may_act groups): it cannot be judged on them")
}
