package idtxtest_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/idtx/idtx/idtxtest"
	"github.com/idtx/idtx/mockidp"
)

// TestConsents: bob has no consent to billing:read until Grant, and none
// again after Revoke.
func TestConsents(t *testing.T) {
	t.Parallel()
	sts := idtxtest.New(t)
	tok := sts.SubjectToken(t, "bob")
	want := "bob of IDP mock has not consented to billing:read for billing-api"
	if a := exchange(t, sts, tok, typeJWT, "billing-api"); a.Status != 400 || a.str("error") != "consent_required" || a.str("error_description") != want {
		t.Fatalf("before Grant: %d %s: %s", a.Status, a.str("error"), a.str("error_description"))
	}
	sts.Grant(t, idtxtest.IDP, "bob", "billing-api", "billing:read")
	if a := exchange(t, sts, tok, typeJWT, "billing-api"); a.Status != 200 {
		t.Fatalf("after Grant: %d %v", a.Status, a.Body)
	}
	sts.Revoke(t, idtxtest.IDP, "bob", "billing-api")
	if a := exchange(t, sts, tok, typeJWT, "billing-api"); a.Status != 400 || a.str("error") != "consent_required" {
		t.Fatalf("after Revoke: %d %v", a.Status, a.Body)
	}
}

// TestConsentMisuse: a consent that could never be used fails the test.
func TestConsentMisuse(t *testing.T) {
	t.Parallel()
	sts := idtxtest.New(t)
	for _, c := range []struct {
		fn   func(testing.TB)
		want string
	}{
		{func(tb testing.TB) { sts.Grant(tb, "corp", "bob", "billing-api", "billing:read") }, `idtxtest: Grant: idp "corp" is not an IDP of this STS (IDPs: mock, mock-saml, mock-internal, github-actions, gitlab-ci, kubernetes, google, entra, auth0, keycloak, dex)`},
		{func(tb testing.TB) { sts.Grant(tb, idtxtest.IDP, "bob", "payroll", "billing:read") }, `idtxtest: Grant: service "payroll" is not a service of this STS (services: orders-api, billing-api)`},
		{func(tb testing.TB) { sts.Grant(tb, idtxtest.IDP, "bob", "billing-api", "billing:delete") }, `idtxtest: Grant: scope "billing:delete" is not a scope of service billing-api`},
		{func(tb testing.TB) { sts.Grant(tb, idtxtest.IDP, "bob", "billing-api") }, `idtxtest: Grant(mock, bob, billing-api): name at least one scope`},
		{func(tb testing.TB) { sts.Revoke(tb, idtxtest.IDP, "bob", "billing") }, `idtxtest: Revoke: service "billing" is not a service of this STS (services: orders-api, billing-api)`},
		{func(tb testing.TB) { sts.LastExchange(tb) }, `idtxtest: LastExchange: the STS at ` + sts.URL + ` has answered no token request`},
		{func(tb testing.TB) { idtxtest.New(tb, idtxtest.WithConfigYAML("idps: []\nfoo: 1\n")) }, "idtxtest.New: WithConfigYAML: 1 problem(s) in config:\n  line 2: unknown key \"foo\""},
	} {
		if got := fatal(t, c.fn); got != c.want {
			t.Errorf("got  %s\nwant %s", got, c.want)
		}
	}
}

// TestExchangesSeen: what the client asked for, and what the STS issued.
func TestExchangesSeen(t *testing.T) {
	t.Parallel()
	sts := idtxtest.New(t)
	exchange(t, sts, sts.SubjectToken(t, "alice", idtxtest.Scope("orders:read orders:write")), typeJWT, "orders-api", "scope", "orders:write")
	x := sts.LastExchange(t)
	if x.ClientID != idtxtest.Client || !reflect.DeepEqual(x.Audience, []string{"orders-api"}) || !reflect.DeepEqual(x.Scope, []string{"orders:write"}) ||
		x.SubjectTokenType != typeJWT || x.Subject != "alice" || x.IDP != idtxtest.IDP || x.Outcome != "ok" {
		t.Fatalf("exchange %+v", x)
	}
	if !reflect.DeepEqual(x.Claims["aud"], []any{"orders-api"}) || x.Claims["scope"] != "orders:write" || x.Claims["iss"] != sts.URL || x.Claims["sub"] != "alice" {
		t.Fatalf("issued claims %v", x.Claims)
	}
	if len(x.Trace.Steps) != 9 || x.Trace.Steps[8].Step != "issue" {
		t.Fatalf("trace steps %+v", x.Trace.Steps)
	}
}

// TestClock: on a clock the test moves, a token expires when the clock
// passes its exp, not before.
func TestClock(t *testing.T) {
	t.Parallel()
	clock := idtxtest.NewClock(at)
	sts := idtxtest.New(t, idtxtest.WithClock(clock.Now))
	tok := sts.SubjectToken(t, "alice", idtxtest.Lifetime(10*time.Minute))
	clock.Advance(9 * time.Minute)
	if a := exchange(t, sts, tok, typeJWT, "orders-api"); a.Status != 200 {
		t.Fatalf("at 9m: %d %v", a.Status, a.Body)
	}
	clock.Advance(time.Minute)
	a := exchange(t, sts, tok, typeJWT, "orders-api")
	if want := "subject_token: invalid token: expired at 2026-03-01T12:10:00Z (now 2026-03-01T12:10:00Z)"; a.Status != 400 || a.str("error_description") != want {
		t.Fatalf("at 10m: %d %s, want %s", a.Status, a.str("error_description"), want)
	}
}

// TestFormats: SAML 2.0, SAML 1.1 and opaque subject tokens pass, with
// the claims asked for.
func TestFormats(t *testing.T) {
	t.Parallel()
	sts := idtxtest.New(t)
	for _, c := range []struct {
		opt idtxtest.TokenOption
		typ string
		idp string
	}{
		{idtxtest.SAML2(), typeSAML2, idtxtest.SAMLIDP},
		{idtxtest.SAML1(), typeSAML1, idtxtest.SAMLIDP},
		{idtxtest.Opaque(), typeAccessToken, idtxtest.InternalIDP},
	} {
		tok := sts.SubjectToken(t, "carol", c.opt, idtxtest.Claim("email", "carol@example.com"))
		if a := exchange(t, sts, tok, c.typ, "orders-api"); a.Status != 200 {
			t.Fatalf("%s: %d %v", c.idp, a.Status, a.Body)
		}
		if x := sts.LastExchange(t); x.IDP != c.idp || x.Subject != "carol" {
			t.Fatalf("%s: exchange %+v", c.idp, x)
		}
	}
}

// TestWithConfigYAML runs a config of the test's own.
func TestWithConfigYAML(t *testing.T) {
	t.Parallel()
	sts := idtxtest.New(t, idtxtest.WithConfigYAML(`
idps:
  - name: mock
    type: jwt
    issuer: https://mock-idp.idtx.test
    jwks_file: ../fixtures/mock-idp.jwks.json
    audiences: [idtx-sts]
services:
  - name: ledger
    audience: ledger
    scopes: {ledger:read: {}}
    default_scopes: [ledger:read]
clients:
  - id: demo-client
    secret: demo-secret
    services: [ledger]
`))
	if a := exchange(t, sts, sts.SubjectToken(t, "alice"), typeJWT, "ledger"); a.Status != 200 {
		t.Fatalf("%d %v", a.Status, a.Body)
	}
	if a := exchange(t, sts, sts.SubjectToken(t, "alice"), typeJWT, "orders-api"); a.Status != 400 || a.str("error") != "invalid_target" {
		t.Fatalf("a mock service in a config without it: %d %v", a.Status, a.Body)
	}
}

// TestWithConfigOnce: a config runs one STS at a time.
func TestWithConfigOnce(t *testing.T) {
	t.Parallel()
	cfg, err := mockidp.Config()
	if err != nil {
		t.Fatal(err)
	}
	sts := idtxtest.New(t, idtxtest.WithConfig(cfg))
	if a := exchange(t, sts, sts.SubjectToken(t, "alice"), typeJWT, "orders-api"); a.Status != 200 {
		t.Fatalf("%d %v", a.Status, a.Body)
	}
	if got, want := fatal(t, func(tb testing.TB) { idtxtest.New(tb, idtxtest.WithConfig(cfg)) }),
		"idtxtest.New: WithConfig: this config already runs another STS; parse one config per New"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
