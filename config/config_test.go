package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/fixtures"
	"github.com/idtx/idtx/idp"
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

// An unknown key is named with its line and place, with the nearest
// known key when it looks like a typo of one.
func TestUnknownKeyNamesKeyAndLine(t *testing.T) {
	_, p := parse(t, `
issuer: http://127.0.0.1:8080
services:
  - name: orders-api
    scopes: {orders:read: {}}
    token_lifetim: 5m
clients:
  - id: c
    secret: s
    services: ["*"]
    colour: blue
`)
	want := []string{
		`line 6: unknown key "token_lifetim" in services[0] (orders-api); did you mean token_lifetime?`,
		`line 11: unknown key "colour" in clients[0] (c)`,
	}
	if got := strings.Join(p.Strings(), "\n"); got != strings.Join(want, "\n") {
		t.Errorf("problems\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
}

// Typos at every depth: each is named by key and place, each on its own
// line, and no problem shows a Go type name (config.IDP, time.Duration,
// []string) or yaml.v3's "field X not found" wording.
func TestTyposAtEveryDepth(t *testing.T) {
	_, p := parse(t, `isuer: https://sts.test
signing:
  algo: ES256
idps:
  - name: corp
    type: jwt
    issuer: https://idp
    audience: sts
    jwks_file: k.json
    claims: {groups: grp}
    clock_skew: 30 seconds
services:
  - name: orders-api
    scopes:
      orders:read: {consnet: true}
    default_scopes: orders:read
    token_lifetime: [5m]
clients:
  - id: c
    secret: s
    services: ["*"]
    rate_limit: {rate: 5/s, brst: 2}
    modes: {impersonation: true}
max_in_flight: many
require_may_act: maybe
workflows:
  - {name: w, deny_iff: "true"}
`)
	want := []string{
		`line 1: unknown key "isuer"; did you mean issuer?`,
		`line 3: unknown key "algo" in signing; did you mean alg?`,
		`line 8: unknown key "audience" in idps[0] (corp); did you mean audiences?`,
		`line 11: "30 seconds" is not a duration: write a number with a unit, such as 90s, 5m or 1h30m`,
		`line 15: unknown key "consnet" in services[0] (orders-api).scopes[orders:read]; did you mean consent?`,
		`line 16: services[0] (orders-api).default_scopes: expected a list, not "orders:read"`,
		`line 17: services[0] (orders-api).token_lifetime: expected a duration, not a list`,
		`line 22: unknown key "brst" in clients[0] (c).rate_limit; did you mean burst?`,
		`line 23: clients[0] (c).modes: expected a list, not a mapping`,
		`line 24: max_in_flight: "many" is not a whole number`,
		`line 25: require_may_act: "maybe" is not true or false`,
		`line 27: unknown key "deny_iff" in workflows[0] (w); did you mean deny_if?`,
	}
	var decoding []string
	for _, pr := range p {
		for _, goName := range []string{"config.", "time.", "[]string", "map[", "not found in type", "!!", "unmarshal"} {
			if strings.Contains(pr.Message, goName) {
				t.Errorf("problem %q shows %q", pr, goName)
			}
		}
		if pr.Line == 0 {
			t.Errorf("problem %q has no line", pr)
		}
		if len(decoding) < len(want) {
			decoding = append(decoding, pr.String())
		}
	}
	if got := strings.Join(decoding, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("problems\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
}

// A problem is a value carrying its place from where it was found: file
// (from LoadFile), line, key path and severity, whatever its wording.
func TestProblemValuesCarryTheirPlace(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "sts.yaml")
	if err := os.WriteFile(file, []byte(`idps:
  - name: corp
    type: jwt
    issuer: https://idp
    jwks_uri: https://idp/jwks
    audiences: [sts]
    algorithms: [RS256, HS256]
services:
  - name: s
    scopes: {"bad scope": {}}
    tokn_lifetime: 5m
`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := config.LoadFile(file)
	var p config.Problems
	if !errors.As(err, &p) {
		t.Fatalf("LoadFile: %v", err)
	}
	want := []config.Problem{
		{File: file, Line: 11, Path: "services[0].tokn_lifetime", Severity: config.SeverityError,
			Message: `unknown key "tokn_lifetime" in services[0] (s); did you mean token_lifetime?`},
		{File: file, Line: 7, Path: "idps[0].algorithms[1]", Severity: config.SeverityError,
			Message: `idps[0] (corp): algorithm "HS256" is not allowed (allowed: RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA)`},
		{File: file, Line: 10, Path: "services[0].scopes[bad scope]", Severity: config.SeverityError,
			Message: `services[0] (s): scope "bad scope" is not a valid scope token (RFC 6749 §3.3)`},
	}
	if len(p) != len(want) {
		t.Fatalf("problems %q, want %d", p.Strings(), len(want))
	}
	for i := range want {
		if p[i] != want[i] {
			t.Errorf("problem %d\n got %+v\nwant %+v", i, p[i], want[i])
		}
	}
	// A path the file lacks takes the line of the nearest part it has.
	cfg, _ := config.Parse([]byte("services:\n  - name: s\n    scopes: {r: {}}\n"), "", nil)
	at := cfg.Root().Child("services").Index(0).Child("audience")
	if w := at.Warning("%s: about %d", "x", 1); w.Line != 2 || w.Path != "services[0].audience" || w.Severity != config.SeverityWarning || w.Message != "x: about 1" {
		t.Errorf("warning %+v", w)
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
		"clients[0] (c): secret_hash: not a bcrypt ($2b$…) or argon2id ($argon2id$v=19$…) hash",
		`clients[0] (c): unknown service "nope"`,
		`clients[0] (c): unknown mode "sudo"`,
	}
	got := strings.Join(p.Messages(), "\n")
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
	if got := strings.Join(cfg.IDPs[0].Spec.(*idp.JWTSpec).Algorithms, " "); got != "RS256 ES256 PS256 EdDSA" {
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
	if len(cfg.IDPs) != 3+8 /* mock, mock-saml, mock-internal and the 8 presets */ || len(cfg.Services) != 2 || len(cfg.Clients) != 3 {
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
		"idps[2] (c): jwks_uri, jwks_file, discovery, algorithms and access_token_typ are for jwt IDPs",
		"idps[3] (d): certificate_file, metadata_file and allow_sha1 are for saml IDPs",
	}
	if got := strings.Join(p.Messages(), "\n"); len(p) != len(want) {
		t.Fatalf("problems:\n%s", got)
	}
	for i, w := range want {
		if p[i].Message != w {
			t.Errorf("problem %d = %q, want %q", i, p[i], w)
		}
	}
}

func TestDelegationAndServesKeys(t *testing.T) {
	cfg, p := parse(t, `
require_may_act: true
services:
  - {name: orders-api, scopes: {r: {}}, require_may_act: true, allow_scope_widening: true}
  - {name: billing-api, scopes: {r: {}}}
clients:
  - {id: c, secret: s, services: ["*"], serves: [orders-api]}
`)
	if len(p) > 0 {
		t.Fatal(p)
	}
	if !cfg.RequireMayAct || cfg.MaxDelegationDepth != config.DefaultMaxDelegationDepth {
		t.Errorf("require_may_act %v, max_delegation_depth %d (want default 5)", cfg.RequireMayAct, cfg.MaxDelegationDepth)
	}
	if s := cfg.Services[0]; !s.RequireMayAct || !s.AllowScopeWidening || cfg.Services[1].AllowScopeWidening {
		t.Errorf("services: %+v", cfg.Services)
	}
	if got := strings.Join(cfg.Clients[0].Serves, " "); got != "orders-api" {
		t.Errorf("serves %q", got)
	}

	for _, tc := range []struct{ yaml, want string }{
		{"max_delegation_depth: 17\n", "max_delegation_depth: 17 is outside 1..16"},
		{"max_delegation_depth: -1\n", "max_delegation_depth: -1 is outside 1..16"},
		{"traces: -1\n", "traces: -1 is outside 0..10000"},
		{"traces: 10001\n", "traces: 10001 is outside 0..10000"},
		{"clients:\n  - {id: c, secret: s, services: [\"*\"], serves: [nope]}\n", `clients[0] (c): serves: unknown service "nope"`},
		{"clients:\n  - {id: c, secret: s, services: [\"*\"], serves: [\"*\"]}\n", `clients[0] (c): serves: unknown service "*" (serves names services, never "*")`},
	} {
		_, p := parse(t, "services:\n  - {name: s, scopes: {r: {}}}\n"+tc.yaml)
		if len(p) != 1 || !strings.HasPrefix(p[0].Message, tc.want) {
			t.Errorf("%q: problems %q, want exactly one starting %q", tc.yaml, p, tc.want)
		}
	}
}

// A secret_hash too costly to verify under load is refused when the config
// is read, naming the client and the ceiling.
func TestSecretHashCeilings(t *testing.T) {
	const key = "$c2FsdHNhbHRzYWx0$MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"
	tests := []struct{ hash, want string }{
		{"$argon2id$v=19$m=131072,t=1,p=1" + key, "clients[0] (big): secret_hash: argon2id m=131072 KiB exceeds the 64 MiB ceiling"},
		{"$argon2id$v=19$m=65536,t=11,p=1" + key, "clients[0] (big): secret_hash: argon2id t=11 exceeds the ceiling of 10 passes"},
		{"$argon2id$v=19$m=65536,t=1,p=17" + key, "clients[0] (big): secret_hash: argon2id p=17 exceeds the ceiling of 16 lanes"},
		{"$2b$15$" + strings.Repeat("a", 53), "clients[0] (big): secret_hash: bcrypt cost 15 exceeds the ceiling of 14"},
		{"$argon2id$v=19$m=65536,t=1,p=1" + key, ""},
		{"$2b$14$" + strings.Repeat("a", 53), ""},
	}
	for _, tt := range tests {
		_, p := parse(t, `
services:
  - {name: s, scopes: {r: {}}}
clients:
  - {id: big, secret_hash: "`+tt.hash+`", services: ["*"]}
`)
		if got := strings.Join(p.Messages(), "\n"); got != tt.want {
			t.Errorf("secret_hash %.40s…: problems %q, want %q", tt.hash, got, tt.want)
		}
	}
}

func TestSAMLRecipientsAndMaxAge(t *testing.T) {
	cfg, p := parse(t, `
idps:
  - {name: a, type: saml, issuer: https://a, audiences: [sts], certificate_file: c.pem, recipients: ["https://sts.example/token"], max_age: 10m}
  - {name: b, type: saml, issuer: https://b, audiences: [sts], certificate_file: c.pem, recipients: ["/token", "sts.example"], max_age: -1s}
  - {name: c, type: saml, issuer: https://c, audiences: [sts], certificate_file: c.pem, max_age: 25h}
  - {name: d, type: jwt, issuer: https://d, audiences: [sts], jwks_file: k.json, recipients: ["https://sts.example/token"]}
  - {name: e, type: jwt, issuer: https://e, audiences: [sts], jwks_file: k.json, max_age: 1m}
services:
  - {name: s, scopes: {r: {}}}
clients:
  - {id: c, secret: s, services: ["*"]}
`)
	want := []string{
		`idps[1] (b): recipient "/token" is not an absolute URI (a Destination or Recipient the IDP sends)`,
		`idps[1] (b): recipient "sts.example" is not an absolute URI (a Destination or Recipient the IDP sends)`,
		"idps[1] (b): max_age -1s is outside 0..24h (0 or unset: no bound beyond NotOnOrAfter)",
		"idps[2] (c): max_age 25h0m0s is outside 0..24h (0 or unset: no bound beyond NotOnOrAfter)",
		"idps[3] (d): recipients and max_age are for saml IDPs",
		"idps[4] (e): recipients and max_age are for saml IDPs",
	}
	if got := strings.Join(p.Messages(), "\n"); len(p) != len(want) {
		t.Fatalf("problems:\n%s", got)
	}
	for i, w := range want {
		if p[i].Message != w {
			t.Errorf("problem %d = %q, want %q", i, p[i], w)
		}
	}
	if a := cfg.IDPs[0].Spec.(*idp.SAMLSpec); a.MaxAge != 10*time.Minute || len(a.Recipients) != 1 || a.Recipients[0] != "https://sts.example/token" {
		t.Errorf("decoded %+v", a)
	}
}

// The keys of issue 9: access_token_typ, claims for jwt IDPs, and
// introspection IDPs, each problem with its exact text.
func TestIDPKeys(t *testing.T) {
	const tail = `
services:
  - {name: s, scopes: {r: {}}}
clients:
  - {id: c, secret: s, services: ["*"]}
`
	tests := []struct {
		name, idps string
		want       []string
	}{
		{"valid", `
  - {name: kc, type: jwt, issuer: https://kc, jwks_file: k, audiences: [sts], access_token_typ: [at+jwt, application/JWT, ""],
     claims: {groups: realm_access.roles, roles: "https://example.com/roles", scope: scp}}
  - {name: in, type: introspection, issuer: https://in, introspection_endpoint: https://in/introspect, client_id: idtx,
     client_secret_file: in.secret, token_prefix: in_, audiences: [sts], claims: {email: email}}
  - {name: in2, type: introspection, issuer: https://in2, discovery: true, client_id: idtx, client_secret: x, token_prefix: in2x, audiences: [sts]}`, nil},
		{"access_token_typ", `
  - {name: a, type: jwt, issuer: https://a, jwks_file: k, audiences: [sts], access_token_typ: [logout+jwt]}
  - {name: b, type: saml, issuer: https://b, certificate_file: c, audiences: [sts], access_token_typ: [JWT]}`, []string{
			`idps[0] (a): access_token_typ "logout+jwt" is not one of at+jwt, JWT, "" (no typ)`,
			"idps[1] (b): jwks_uri, jwks_file, discovery, algorithms and access_token_typ are for jwt IDPs",
		}},
		{"claims", `
  - {name: a, type: jwt, issuer: https://a, jwks_file: k, audiences: [sts], claims: {sub: email, "": x, groups: "", roles: a..b, scope: .scp, may_act: x}}`, []string{
			`idps[0] (a): claims: an empty canonical name`,
			`idps[0] (a): claims: groups: path "" is empty or has an empty segment (write a.b.c, or a top-level claim name)`,
			`idps[0] (a): claims: "may_act" is reserved and cannot be mapped (reserved: iss sub aud exp iat nbf jti act may_act)`,
			`idps[0] (a): claims: roles: path "a..b" is empty or has an empty segment (write a.b.c, or a top-level claim name)`,
			`idps[0] (a): claims: scope: path ".scp" is empty or has an empty segment (write a.b.c, or a top-level claim name)`,
			`idps[0] (a): claims: "sub" is reserved and cannot be mapped (reserved: iss sub aud exp iat nbf jti act may_act)`,
		}},
		{"a mapping reading another's target", `
  - {name: kc, type: jwt, issuer: https://kc, jwks_file: k, audiences: [sts], claims: {groups: roles, roles: realm_access.roles, email: groups.primary, scope: scope}}`, []string{
			`idps[0] (kc): claims: email: path "groups.primary" reads groups, which is itself mapped (groups: roles); mappings read the token's own claims, never each other's: write the path email should read`,
			`idps[0] (kc): claims: groups: path "roles" reads roles, which is itself mapped (roles: realm_access.roles); mappings read the token's own claims, never each other's: write the path groups should read`,
		}},
		{"introspection incomplete", `
  - {name: a, type: introspection, issuer: https://a, audiences: [sts], client_secret: x, client_secret_file: f, cache_ttl: 2h, jwks_file: k}
  - {name: b, type: introspection, issuer: https://b, audiences: [sts], introspection_endpoint: "ftp://b", discovery: true, client_id: i, client_secret: x}`, []string{
			"idps[0] (a): an introspection IDP needs exactly one of introspection_endpoint, discovery: true",
			"idps[0] (a): client_id is required (the STS authenticates to the introspection endpoint, RFC 7662 §2.1)",
			"idps[0] (a): an introspection IDP needs exactly one of client_secret, client_secret_file",
			"idps[0] (a): cache_ttl 2h0m0s is outside 0..1h",
			"idps[0] (a): jwks_uri, jwks_file, algorithms and access_token_typ are for jwt IDPs",
			"idps[1] (b): an introspection IDP needs exactly one of introspection_endpoint, discovery: true",
			`idps[1] (b): introspection_endpoint "ftp://b" is not an http(s) URL`,
			"idps (a): token_prefix is required when there is more than one introspection IDP, so that an opaque token goes to exactly one endpoint",
			"idps (b): token_prefix is required when there is more than one introspection IDP, so that an opaque token goes to exactly one endpoint",
		}},
		{"introspection ambiguous", `
  - {name: a, type: introspection, issuer: https://a, audiences: [sts], introspection_endpoint: https://a/i, client_id: i, client_secret: x, token_prefix: ab}
  - {name: b, type: introspection, issuer: https://b, audiences: [sts], introspection_endpoint: https://b/i, client_id: i, client_secret: x, token_prefix: abc}
  - {name: c, type: introspection, issuer: https://c, audiences: [sts], introspection_endpoint: https://c/i, client_id: i, client_secret: x, token_prefix: ey}
  - {name: d, type: jwt, issuer: https://d, audiences: [sts], jwks_file: k, token_prefix: d_, client_id: i}`, []string{
			`idps[2] (c): token_prefix "ey" would match every JWT (they start with eyJ)`,
			"idps[3] (d): introspection_endpoint, client_id, client_secret, client_secret_file, token_prefix and cache_ttl are for introspection IDPs",
			`idps (a, b): token_prefix "ab" and "abc" overlap: a token could match both`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, p := parse(t, "idps:"+tt.idps+tail)
			if strings.Join(p.Messages(), "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(p.Messages(), "\n"), strings.Join(tt.want, "\n"))
			}
			if tt.want == nil {
				if s := cfg.IDPs[1].Spec.(*idp.IntrospectionSpec); s.CacheTTL == nil || *s.CacheTTL != config.DefaultCacheTTL {
					t.Errorf("cache_ttl default = %v", s.CacheTTL)
				}
			}
		})
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
	got := strings.Join(p.Messages(), "\n")
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("problems lack %q:\n%s", w, got)
		}
	}
	// Each is placed on the line of the key it is about, or of its item
	// when the key is missing.
	lines := map[string]string{
		"workflows[0].deny_if":      "8",
		"workflows[1].claims[dept]": "11",
		"workflows[1].claims[sub]":  "11",
		"workflows[2].secret":       "12",
		"workflows[2].timeout":      "14",
		"workflows[3].name":         "15",
		"workflows[3].message":      "15",
		"services[0].workflows[1]":  "5",
		"services[0].workflows[2]":  "5",
	}
	for _, pr := range p {
		if want, ok := lines[pr.Path]; !ok || strconv.Itoa(pr.Line) != want {
			t.Errorf("problem %q at %s line %d; want a path of %v", pr.Message, pr.Path, pr.Line, lines)
		}
	}
}

func TestBadDurationIsSaidPlainly(t *testing.T) {
	_, err := config.Parse([]byte("services:\n  - name: a\n    scopes: {x: {}}\n    token_lifetime: 5 min\n"), "", nil)
	want := `line 4: "5 min" is not a duration: write a number with a unit, such as 90s, 5m or 1h30m`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want %q", err, want)
	}
}

// carry_claims names only claims a token can carry; a rule reading a
// claim no issued token carries is a warning on its line.
func TestCarryClaims(t *testing.T) {
	const yaml = `services:
  - name: a
    scopes: {r: {}}
    carry_claims: [groups, email]
  - name: b
    scopes: {r: {}}
    carry_claims: []
    workflows: [by-mail]
workflows:
  - name: by-mail
    deny_if: 'subject.email == "x" || "admin" in subject.roles'
    message: no
`
	_, p := parse(t, yaml)
	if len(p) != 1 || p[0].Path != "services[0].carry_claims[1]" || p[0].Message != `services[0] (a): carry_claims: "email" is not a claim a token can carry (groups, roles, entitlements)` {
		t.Fatalf("problems %q", p.Strings())
	}
	cfg, p := parse(t, strings.Replace(yaml, "groups, email", "groups", 1))
	if len(p) != 0 {
		t.Fatal(p.Strings())
	}
	if got := cfg.Services[1].Carried(); len(got) != 0 {
		t.Errorf("carry_claims: [] carries %v", got)
	}
	if got := cfg.Services[0].Carried(); !slices.Equal(got, []string{"groups"}) {
		t.Errorf("carry_claims: [groups] carries %v", got)
	}
	w := cfg.ChainedWarnings()
	want := []string{
		"services[1] (b): workflow by-mail reads subject.email, which no token this STS issues carries (it carries sub idp act may_act groups): a chained exchange for b is refused, naming it",
		"services[1] (b): workflow by-mail reads subject.roles, which no token this STS issues carries (it carries sub idp act may_act groups): a chained exchange for b is refused, naming it",
	}
	if len(w) != 2 || w[0].Message != want[0] || w[1].Message != want[1] || w[0].Line != 8 || w[0].Severity != config.SeverityWarning {
		t.Errorf("warnings %+v", w)
	}
}

// A config held in an environment variable (IDTX_CONFIG) is refused with
// the same problems as a file, each placed as NAME:LINE, and a file it
// names is read from the working directory.
func TestLoadInlineNamesItsLines(t *testing.T) {
	_, err := config.LoadInline("IDTX_CONFIG", []byte(`services:
  - name: s
    scopes: {r: {}}
    tokn_lifetime: 5m
`), config.Given{})
	var p config.Problems
	if !errors.As(err, &p) {
		t.Fatalf("LoadInline: %v", err)
	}
	want := `IDTX_CONFIG:4: unknown key "tokn_lifetime" in services[0] (s); did you mean token_lifetime?`
	if got := p.Strings(); len(got) != 1 || got[0] != want {
		t.Errorf("problems %q, want [%q]", got, want)
	}
	if _, err := config.LoadInline("IDTX_CONFIG", []byte("issuer: [a\n"), config.Given{}); err == nil || !strings.Contains(err.Error(), "IDTX_CONFIG:1: ") {
		t.Errorf("a syntax error: %v, want it placed at IDTX_CONFIG:1", err)
	}

	dir := t.TempDir()
	t.Chdir(dir)
	jwks, _ := fixtures.FS.ReadFile(fixtures.MockIDPJWKS)
	if err := os.WriteFile(filepath.Join(dir, "idp.jwks.json"), jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadInline("IDTX_CONFIG", []byte(`issuer: https://sts.test
idps:
  - name: corp
    type: jwt
    issuer: https://idp.test
    jwks_file: idp.jwks.json
    audiences: [sts]
services:
  - name: s
    scopes: {r: {}}
clients:
  - id: c
    secret: s
    services: ["*"]
`), config.Given{})
	if err != nil {
		t.Fatalf("LoadInline: %v", err)
	}
	if data, err := cfg.ReadFile("idp.jwks.json"); err != nil || string(data) != string(jwks) {
		t.Errorf("ReadFile(idp.jwks.json) from the working directory: %v", err)
	}
}

// An issuer given outside the config (IDTX_ISSUER) stands in for a
// missing issuer:, which a store shared by replicas needs, and is refused
// beside a different one.
func TestGivenIssuer(t *testing.T) {
	const body = `store: postgres://idtx@db.test/idtx
services:
  - name: s
    scopes: {r: {}}
`
	if _, err := config.LoadInline("IDTX_CONFIG", []byte(body), config.Given{}); err == nil || !strings.Contains(err.Error(), "IDTX_CONFIG:1: issuer: a postgres:// store is shared by replicas") {
		t.Errorf("no issuer: %v", err)
	}
	given := config.Given{Issuer: "https://sts.test", IssuerFrom: "IDTX_ISSUER"}
	cfg, err := config.LoadInline("IDTX_CONFIG", []byte(body), given)
	if err != nil || cfg.Issuer != "https://sts.test" {
		t.Fatalf("given issuer: %v, issuer %q", err, cfg.Issuer)
	}
	_, err = config.LoadInline("IDTX_CONFIG", []byte("issuer: https://other.test\n"+body), given)
	var p config.Problems
	want := `IDTX_CONFIG:1: issuer: the config says "https://other.test" and IDTX_ISSUER says "https://sts.test": set the issuer in one place`
	if !errors.As(err, &p) || len(p) != 1 || p[0].String() != want {
		t.Errorf("two issuers: %v, want %s", err, want)
	}
}
