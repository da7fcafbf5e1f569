package config_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/fixtures"
)

func parse(t *testing.T, yaml string) (*config.Config, config.Problems) {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), "", func(string) ([]byte, error) { return nil, nil })
	var p config.Problems
	if err != nil && !errors.As(err, &p) {
		t.Fatalf("Parse: %v", err)
	}
	return cfg, p
}

func TestUnknownKeyNamesKeyAndLine(t *testing.T) {
	_, p := parse(t, `
issuer: http://127.0.0.1:8080
services:
  - name: orders-api
    scopes: {orders:read: {}}
    token_lifetme: 5m
clients:
  - id: c
    secret: s
    services: ["*"]
    colour: blue
`)
	got := strings.Join(p, "\n")
	for _, want := range []string{"line 6: field token_lifetme not found", "line 11: field colour not found"} {
		if !strings.Contains(got, want) {
			t.Errorf("problems %q lack %q", got, want)
		}
	}
}

func TestEveryProblemAtOnce(t *testing.T) {
	_, p := parse(t, `
issuer: ftp://x
signing: {alg: HS256}
idps:
  - name: a
    type: jwt
    issuer: https://idp
    audiences: [sts]
    algorithms: [none, RS256]
  - name: a
    type: jwt
    issuer: https://idp
    jwks_file: k.json
  - name: s
    type: banana
    issuer: https://s
    audiences: [x]
services:
  - name: svc
    scopes: {read: {}}
    default_scopes: [write]
    token_lifetime: 48h
clients:
  - id: c
    secret: s
    secret_hash: nothash
    services: [nope]
    modes: [sudo]
`)
	want := []string{
		`issuer: "ftp://x" is not an http(s) URL`,
		`signing.alg: "HS256" is not one of`,
		"idps[0] (a): a jwt IDP needs exactly one of jwks_uri, jwks_file, discovery: true",
		`idps[0] (a): algorithm "none" is not allowed`,
		"idps[1] (a): duplicate IDP name",
		`idps[1] (a): issuer "https://idp" is also IDP "a"'s`,
		"idps[1] (a): audiences is required",
		`idps[2] (s): unknown type "banana"`,
		`services[0] (svc): default scope "write" is not one of its scopes`,
		"services[0] (svc): token_lifetime 48h0m0s is outside 1s..24h",
		"clients[0] (c): needs exactly one of secret, secret_hash, jwks_file",
		"clients[0] (c): secret_hash is neither bcrypt",
		`clients[0] (c): unknown service "nope"`,
		`clients[0] (c): unknown mode "sudo"`,
	}
	got := strings.Join(p, "\n")
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("missing problem %q in:\n%s", w, got)
		}
	}
	if len(p) != len(want) {
		t.Errorf("%d problems, want %d:\n%s", len(p), len(want), got)
	}
}

func TestDefaults(t *testing.T) {
	cfg, p := parse(t, `
idps:
  - {name: m, type: jwt, issuer: https://m, jwks_file: k, audiences: [sts]}
services:
  - name: orders-api
    scopes: {orders:read: {}}
clients:
  - {id: c, secret: s, services: ["*"]}
`)
	if len(p) > 0 {
		t.Fatal(p)
	}
	if cfg.Signing.Alg != "ES256" || cfg.Services[0].TokenLifetime != 5*time.Minute || cfg.Services[0].Audience != "orders-api" {
		t.Errorf("defaults: %+v %+v", cfg.Signing, cfg.Services[0])
	}
	if got := strings.Join(cfg.IDPs[0].Algorithms, " "); got != "RS256 ES256 PS256 EdDSA" {
		t.Errorf("default algorithms %q", got)
	}
	if cfg.IDPs[0].ClockSkew != 30*time.Second || cfg.Clients[0].Modes[0] != "impersonation" {
		t.Errorf("defaults: %+v %+v", cfg.IDPs[0], cfg.Clients[0])
	}
}

func TestMockConfigIsValid(t *testing.T) {
	cfg, err := config.LoadFS(fixtures.FS, fixtures.MockConfig)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.IDPs) != 2 || len(cfg.Services) != 2 || len(cfg.Clients) != 2 {
		t.Fatalf("mock config: %s", cfg.Summary())
	}
}

func TestStoreURLRelativeToConfig(t *testing.T) {
	cfg := &config.Config{Store: "sqlite:idtx.db", Dir: "/etc/idtx"}
	if got := cfg.StoreURL(); got != "sqlite:/etc/idtx/idtx.db" {
		t.Errorf("StoreURL = %q", got)
	}
	cfg.Store = "memory:"
	if got := cfg.StoreURL(); got != "memory:" {
		t.Errorf("StoreURL = %q", got)
	}
}

func TestSAMLIDPProblems(t *testing.T) {
	_, p := parse(t, `
idps:
  - {name: a, type: saml, issuer: https://a, audiences: [sts]}
  - {name: b, type: saml, issuer: https://b, audiences: [sts], certificate_file: c.pem, metadata_file: m.xml}
  - {name: c, type: saml, issuer: https://c, audiences: [sts], certificate_file: c.pem, jwks_file: k.json}
  - {name: d, type: jwt, issuer: https://d, audiences: [sts], jwks_file: k.json, allow_sha1: true}
  - {name: e, type: saml, issuer: https://e, audiences: [sts], metadata_file: m.xml, allow_sha1: true, claims: {"http://schemas.xmlsoap.org/claims/Group": groups}}
services:
  - {name: s, scopes: {r: {}}}
clients:
  - {id: c, secret: s, services: ["*"]}
`)
	want := []string{
		"idps[0] (a): a saml IDP needs exactly one of certificate_file, metadata_file",
		"idps[1] (b): a saml IDP needs exactly one of certificate_file, metadata_file",
		"idps[2] (c): jwks_uri, jwks_file, discovery and algorithms are for jwt IDPs",
		"idps[3] (d): certificate_file, metadata_file, allow_sha1 and claims are for saml IDPs",
	}
	if got := strings.Join(p, "\n"); len(p) != len(want) {
		t.Fatalf("problems:\n%s", got)
	}
	for i, w := range want {
		if p[i] != w {
			t.Errorf("problem %d = %q, want %q", i, p[i], w)
		}
	}
}

func TestWorkflows(t *testing.T) {
	cfg, p := parse(t, `
services:
  - name: billing-api
    scopes: {billing:read: {}}
    workflows: [no-interns, tag-dept, fraud-check]
workflows:
  - name: no-interns
    deny_if: 'has(subject.groups) && "interns" in subject.groups'
    message: interns may not call billing
  - name: tag-dept
    claims: {dept: 'subject.email.split("@")[1]'}
  - name: fraud-check
    webhook: https://fraud.internal/check
    secret: s3cret
`)
	if len(p) > 0 {
		t.Fatal(p)
	}
	svc := cfg.Services[0]
	if len(svc.Rules) != 3 || svc.Rules[0].Name() != "no-interns" || svc.Rules[2].Name() != "fraud-check" || !svc.Rules[2].IsWebhook() {
		t.Fatalf("rules = %v", svc.Rules)
	}
	if cfg.Workflows[2].Timeout != 2*time.Second {
		t.Errorf("webhook timeout = %s, want the 2s default", cfg.Workflows[2].Timeout)
	}
}

func TestWorkflowProblems(t *testing.T) {
	_, p := parse(t, `
services:
  - name: billing-api
    scopes: {billing:read: {}}
    workflows: [tag-dept, nope, tag-dept]
workflows:
  - name: no-interns
    deny_if: 'subject.groups'
    message: interns may not call billing
  - name: tag-dept
    claims: {dept: 'subject.email.split("@"', sub: '"mallory"'}
  - name: hook
    webhook: https://fraud.internal/check
    timeout: 1m
  - name: no-interns
    deny_if: 'true'
`)
	want := []string{
		"workflows[0] (no-interns): deny_if: has type dyn, want bool",
		"workflows[1] (tag-dept): claims.dept: 1:",
		`workflows[1] (tag-dept): claims.sub: "sub" is reserved: the STS sets it`,
		"workflows[2] (hook): secret: required with webhook",
		"workflows[2] (hook): timeout: 1m0s is outside 0..30s",
		"workflows[3] (no-interns): duplicate workflow name",
		"workflows[3] (no-interns): message: required with deny_if",
		`services[0] (billing-api): unknown workflow "nope"`,
		`services[0] (billing-api): workflow "tag-dept" is named twice`,
	}
	got := strings.Join(p, "\n")
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("problems lack %q:\n%s", w, got)
		}
	}
}
