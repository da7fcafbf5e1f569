// Package config loads and validates an idtx server configuration
// (docs/config.md). Decoding is strict: an unknown key is an error that names
// the key and its line, and validation reports every problem at once so that
// one run of `idtx config validate` shows all there is to fix.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/idtx/idtx/secret"
	"github.com/idtx/idtx/workflow"
)

// Config is a whole server configuration.
type Config struct {
	Issuer   string    `yaml:"issuer"`
	Signing  Signing   `yaml:"signing"`
	Store    string    `yaml:"store"`
	IDPs     []IDP     `yaml:"idps"`
	Services []Service `yaml:"services"`
	Clients  []Client  `yaml:"clients"`
	// Workflows are the business rules services name, run after consent
	// (docs/flowchart.md step 8; docs/workflows.md).
	Workflows []Workflow `yaml:"workflows"`

	// RequireMayAct refuses every delegation whose subject token carries
	// no may_act claim (RFC 8693 §4.4), whatever the service says.
	// Without it, a subject without may_act may be delegated by any
	// client allowed the delegation mode.
	RequireMayAct bool `yaml:"require_may_act"`
	// MaxDelegationDepth bounds the act chain of an issued token (RFC
	// 8693 §4.1): the number of actors, newest first, nested in act.
	// Default DefaultMaxDelegationDepth, at most MaxDelegationDepthLimit.
	MaxDelegationDepth int `yaml:"max_delegation_depth"`
	// Traces is how many traces of its last exchanges the server keeps
	// for GET /traces (docs/explain.md); 0, the default, keeps none.
	Traces int `yaml:"traces"`

	// RateLimit is every client's limit on exchanges, unless the client
	// sets its own; absent, clients are not limited.
	RateLimit *RateLimit `yaml:"rate_limit"`
	// MaxInFlight caps the exchanges being answered at once; beyond it
	// POST /token answers 503 temporarily_unavailable at once. Default
	// DefaultMaxInFlight.
	MaxInFlight int `yaml:"max_in_flight"`
	// ValidationCacheSize bounds the identities of validated subject and
	// actor tokens kept until their expiry (docs/operations.md): 0 is
	// DefaultValidationCacheSize, -1 turns the cache off.
	ValidationCacheSize int `yaml:"validation_cache_size"`

	// ReadFile reads a file named in the config (a key, a JWKS): relative
	// names are taken from the config file's folder, or from the embedded
	// fixtures for the mock.
	ReadFile func(name string) ([]byte, error) `yaml:"-"`
	// Dir is the folder relative paths resolve against ("" for embedded).
	Dir string `yaml:"-"`

	root *yaml.Node // the document Parse read, for problems' lines
}

// Signing says how the STS signs the tokens it issues.
type Signing struct {
	Alg     string `yaml:"alg"`
	KeyFile string `yaml:"key_file"`
	// KEKFile holds the key-encryption key (base64 of 32 bytes) that seals
	// the private keys kept in the store; IDTX_KEK when not set.
	KEKFile string `yaml:"kek_file"`
	// RotateEvery adds a new key to the store's key set this often; zero
	// rotates only on `idtx keys rotate`.
	RotateEvery time.Duration `yaml:"rotate_every"`
}

// MinRotateEvery is the shortest signing.rotate_every.
const MinRotateEvery = time.Hour

// The built-in IDP types, which package idp registers. A new type needs
// no name here: it is its registration (RegisterIDPType).
const (
	IDPTypeJWT           = "jwt"
	IDPTypeSAML          = "saml"
	IDPTypeIntrospection = "introspection"
)

// IDP is one trusted identity provider: the keys every type shares, and
// Spec, the keys of its type.
type IDP struct {
	Name      string        `yaml:"name"`
	Type      string        `yaml:"type"`
	Issuer    string        `yaml:"issuer"`
	Audiences []string      `yaml:"audiences"`
	ClockSkew time.Duration `yaml:"clock_skew"`
	// Claims, for a saml IDP, maps attribute names to claim names. For a
	// jwt or introspection IDP it maps a canonical claim name (groups,
	// roles, email, scope, ...) to the path where this IDP keeps it: a
	// name that is exactly a top-level claim (Auth0's
	// "https://example.com/roles"), else dot-separated members of nested
	// objects (Keycloak's "realm_access.roles").
	Claims map[string]string `yaml:"claims"`

	// Spec is the part of the entry only its type has (idp.JWTSpec,
	// idp.SAMLSpec, idp.IntrospectionSpec, ...), decoded from the same
	// mapping; nil when the type is not registered.
	Spec IDPSpec `yaml:"-"`
}

// ReservedClaims cannot be the canonical name of a claim mapping: they
// carry the token's identity, lifetime and delegation (RFC 7519 §4.1,
// RFC 8693 §4.1, §4.4), which a mapping must never overwrite.
var ReservedClaims = []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "act", "may_act"}

// DefaultCacheTTL is an introspection IDP's cache_ttl when unset.
const DefaultCacheTTL = 60 * time.Second

// Scope is one scope a service offers.
type Scope struct {
	Consent bool `yaml:"consent"`
}

// Service is one downstream service tokens are exchanged for.
type Service struct {
	Name          string           `yaml:"name"`
	Audience      string           `yaml:"audience"`
	Resources     []string         `yaml:"resources"`
	Scopes        map[string]Scope `yaml:"scopes"`
	DefaultScopes []string         `yaml:"default_scopes"`
	TokenLifetime time.Duration    `yaml:"token_lifetime"`
	// SubjectScopesOnly narrows the grant to scopes the subject token
	// already carries (docs/flowchart.md step 6).
	SubjectScopesOnly bool `yaml:"subject_scopes_only"`
	// RequireMayAct refuses a delegation for this service when the
	// subject token carries no may_act claim (RFC 8693 §4.4).
	RequireMayAct bool `yaml:"require_may_act"`
	// AllowScopeWidening lets a token the STS issued be exchanged for
	// this service with scopes it did not carry. Off by default: a chained
	// exchange grants no scope the subject token lacks (orders:read never
	// becomes orders:write).
	AllowScopeWidening bool `yaml:"allow_scope_widening"`
	// CarryClaims names the user's identity claims (RFC 9068 §2.2.3.1)
	// this service's tokens carry, as the user's IDP gave them, so that a
	// chained exchange is judged on them (docs/config.md). Nil: all of
	// CarriableClaims; an empty list: none.
	CarryClaims *[]string `yaml:"carry_claims"`
	// Workflows names the workflows run, in order, for this service.
	Workflows []string `yaml:"workflows"`
	// Rules are the compiled Workflows, in the same order; Parse sets them.
	Rules []*workflow.Workflow `yaml:"-"`
}

// CarriableClaims are the identity claims an issued token can carry from
// the user's IDP (RFC 9068 §2.2.3.1), in the order they are written.
var CarriableClaims = []string{"groups", "roles", "entitlements"}

// Carried is what the service's tokens carry of CarriableClaims, in
// that order.
func (s *Service) Carried() []string {
	if s.CarryClaims == nil {
		return CarriableClaims
	}
	var out []string
	for _, c := range CarriableClaims {
		if slices.Contains(*s.CarryClaims, c) {
			out = append(out, c)
		}
	}
	return out
}

// ChainedAlways are the claims every token the STS issues carries of its
// user when they apply: sub, idp, and the act and may_act it signed.
var ChainedAlways = []string{"sub", "idp", "act", "may_act"}

// ChainedWarnings are warnings for the CEL workflows of a service that
// read a claim of subject that no token this STS issues carries (neither
// ChainedAlways nor any service's carry_claims): a chained exchange for
// that service is refused at runtime, naming the claim, rather than
// judged without it. The config stays valid: the IDP's own tokens are
// judged on every claim.
func (c *Config) ChainedWarnings() Problems {
	carried := slices.Clone(ChainedAlways)
	for _, name := range CarriableClaims {
		for i := range c.Services {
			if slices.Contains(c.Services[i].Carried(), name) {
				carried = append(carried, name)
				break
			}
		}
	}
	root := c.Root()
	var p Problems
	for i := range c.Services {
		s := &c.Services[i]
		for j, w := range s.Rules {
			if w == nil || w.IsWebhook() {
				continue
			}
			at := root.Child("services").Index(i).Child("workflows").Index(j)
			for _, v := range []struct {
				name, what string
				reads      func() ([]string, bool)
			}{{"subject", "a chained exchange", w.SubjectClaims}, {"actor", "an exchange whose actor token this STS issued", w.ActorClaims}} {
				names, whole := v.reads()
				if whole {
					p = append(p, at.Warning("services[%d] (%s): workflow %s reads %s as a whole; a token this STS issues carries only %s of it, so %s for %s is refused", i, s.Name, w.Name(), v.name, strings.Join(carried, " "), v.what, s.Name))
					continue
				}
				for _, n := range names {
					if !slices.Contains(carried, n) {
						p = append(p, at.Warning("services[%d] (%s): workflow %s reads %s.%s, which no token this STS issues carries (it carries %s): %s for %s is refused, naming it", i, s.Name, w.Name(), v.name, n, strings.Join(carried, " "), v.what, s.Name))
					}
				}
			}
		}
	}
	return p
}

// Workflow is one named business rule: a CEL rule (deny_if with message,
// claims, or both) or a webhook (webhook, secret, timeout).
type Workflow struct {
	Name    string            `yaml:"name"`
	DenyIf  string            `yaml:"deny_if"`
	Message string            `yaml:"message"`
	Claims  map[string]string `yaml:"claims"`
	Webhook string            `yaml:"webhook"`
	Secret  string            `yaml:"secret"`
	Timeout time.Duration     `yaml:"timeout"`
	// Compiled is the checked, compiled rule; Parse sets it.
	Compiled *workflow.Workflow `yaml:"-"`
}

// Spec is w as the workflow package takes it.
func (w *Workflow) Spec() workflow.Spec {
	return workflow.Spec{
		Name: w.Name, DenyIf: w.DenyIf, Message: w.Message, Claims: w.Claims,
		Webhook: w.Webhook, Secret: w.Secret, Timeout: w.Timeout,
	}
}

// Exchange modes a client may use (RFC 8693 §1.1).
const (
	ModeImpersonation = "impersonation"
	ModeDelegation    = "delegation"
)

// Client is one OAuth client of the STS.
type Client struct {
	ID         string   `yaml:"id"`
	Secret     string   `yaml:"secret"`
	SecretHash string   `yaml:"secret_hash"`
	JWKSFile   string   `yaml:"jwks_file"`
	Services   []string `yaml:"services"`
	Modes      []string `yaml:"modes"`
	// Serves names the services this client is the resource server of.
	// It may present as subject or actor token, and introspect, a token
	// the STS issued whose aud is one of those services; any other
	// client may do so only for tokens issued to itself (client_id).
	Serves []string `yaml:"serves"`
	// RateLimit replaces the top-level rate_limit for this client.
	RateLimit *RateLimit `yaml:"rate_limit"`
}

// RateLimit is a token bucket of exchanges for one client
// (golang.org/x/time/rate): Rate tokens a second, at most Burst at once.
type RateLimit struct {
	// Rate is "N/s", "N/m" or "N/h" (N may have a fraction), or
	// "unlimited".
	Rate string `yaml:"rate"`
	// Burst is how many exchanges may come at once; default the rate per
	// second rounded up, at least 1.
	Burst int `yaml:"burst"`
}

// Unlimited is the Rate of a client that is never limited.
const Unlimited = "unlimited"

// PerSecond is the rate in exchanges a second; +Inf for unlimited.
func (r *RateLimit) PerSecond() (float64, error) {
	if r.Rate == Unlimited {
		return math.Inf(1), nil
	}
	num, unit, ok := strings.Cut(r.Rate, "/")
	n, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if !ok || err != nil || n <= 0 || math.IsInf(n, 0) || math.IsNaN(n) {
		return 0, fmt.Errorf("rate %q is not N/s, N/m, N/h with N > 0, or %s", r.Rate, Unlimited)
	}
	switch strings.TrimSpace(unit) {
	case "s":
		return n, nil
	case "m":
		return n / 60, nil
	case "h":
		return n / 3600, nil
	}
	return 0, fmt.Errorf("rate %q is not N/s, N/m, N/h with N > 0, or %s", r.Rate, Unlimited)
}

// BurstOrDefault is Burst, or the rate per second rounded up (at least 1).
func (r *RateLimit) BurstOrDefault() int {
	if r.Burst > 0 {
		return r.Burst
	}
	perSec, err := r.PerSecond()
	if err != nil || math.IsInf(perSec, 1) {
		return 1
	}
	return max(1, int(math.Ceil(perSec)))
}

func (r *RateLimit) validate(at Path, where string) Problems {
	var p Problems
	if _, err := r.PerSecond(); err != nil {
		p = append(p, at.Child("rate").Problem("%s: %v", where, err))
	}
	if r.Burst < 0 {
		p = append(p, at.Child("burst").Problem("%s: burst %d is negative", where, r.Burst))
	}
	return p
}

// Defaults applied where the config is silent.
const (
	DefaultAlg           = "ES256"
	DefaultTokenLifetime = 5 * time.Minute
	DefaultClockSkew     = 30 * time.Second

	DefaultMaxDelegationDepth = 5
	MaxDelegationDepthLimit   = 16
	// MaxTraces bounds the traces: key; DefaultMockTraces is what
	// `idtx serve --mock` keeps.
	MaxTraces         = 10000
	DefaultMockTraces = 200

	// DefaultMaxInFlight is max_in_flight when the config names none.
	DefaultMaxInFlight = 256
	// DefaultValidationCacheSize is validation_cache_size when the config
	// names none: the reuse the cache is for (one token exchanged for
	// several services within seconds) needs the recent few thousand, and
	// every identity kept is heap the collector scans at each cycle.
	DefaultValidationCacheSize = 4096
	// MaxValidationCacheSize bounds validation_cache_size (about 1.5 KB of
	// heap an identity).
	MaxValidationCacheSize = 1_000_000
)

// DefaultAlgorithms are accepted from a JWT IDP that names none.
var DefaultAlgorithms = []string{"RS256", "ES256", "PS256", "EdDSA"}

// LoadFile reads, decodes and validates the config at path.
func LoadFile(path string) (*Config, error) { return LoadFileGiven(path, Given{}) }

// Given are settings given outside the config (`serve --issuer`, the
// IDTX_ISSUER variable) that stand in for keys the config leaves out.
type Given struct {
	// Issuer is the public issuer of a config without issuer:, so that
	// the checks that need one (a store shared by replicas) see it. A
	// config whose issuer differs is refused: the issuer is set in one
	// place.
	Issuer string
	// IssuerFrom names where Issuer came from, for that problem.
	IssuerFrom string
}

// LoadFileGiven is LoadFile with settings given outside the file.
func LoadFileGiven(path string, g Given) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	return inFile(path)(ParseGiven(data, dir, func(name string) ([]byte, error) {
		if !filepath.IsAbs(name) {
			name = filepath.Join(dir, name)
		}
		return os.ReadFile(name)
	}, g))
}

// LoadInline reads, decodes and validates a config held in memory rather
// than in a file, such as the IDTX_CONFIG environment variable: name
// stands for the file in its problems (IDTX_CONFIG:3: ...), and files it
// names are read relative to the working directory.
func LoadInline(name string, data []byte, g Given) (*Config, error) {
	return inFile(name)(ParseGiven(data, ".", os.ReadFile, g))
}

// inFile names file as the file of every problem Parse found.
func inFile(file string) func(*Config, error) (*Config, error) {
	return func(c *Config, err error) (*Config, error) {
		var p Problems
		if errors.As(err, &p) {
			for i := range p {
				p[i].File = file
			}
		}
		return c, err
	}
}

// LoadFS reads a config from an embedded file system, as the mock does.
func LoadFS(fsys fs.FS, name string) (*Config, error) {
	data, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, err
	}
	return inFile(name)(Parse(data, "", func(n string) ([]byte, error) { return fs.ReadFile(fsys, n) }))
}

// Parse decodes data strictly, applies defaults and validates. A config
// with problems yields a Problems error listing them all, each with its
// line and key path.
func Parse(data []byte, dir string, readFile func(string) ([]byte, error)) (*Config, error) {
	return ParseGiven(data, dir, readFile, Given{})
}

// ParseGiven is Parse with settings given outside the config.
func ParseGiven(data []byte, dir string, readFile func(string) ([]byte, error), g Given) (*Config, error) {
	var c Config
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, Problems{syntaxProblem(err)}
	}
	root := rootPath(&doc)
	// yaml.v3 decodes what it can; checkShape says what it could not, in
	// the config's words, and every unknown key.
	var err error
	if doc.Kind != 0 { // an empty file is an empty config
		err = doc.Decode(&c)
	}
	var te *yaml.TypeError
	if err != nil && !errors.As(err, &te) {
		return nil, Problems{syntaxProblem(err)}
	}
	problems := checkShape(root, "", reflect.TypeFor[Config](), 0)
	if te != nil && len(problems) == 0 { // a shape checkShape does not know: yaml's own words
		for _, e := range te.Errors {
			problems = append(problems, syntaxProblem(errors.New(e)))
		}
	}
	c.ReadFile = readFile
	c.Dir = dir
	c.root = &doc
	if g.Issuer != "" {
		if c.Issuer == "" {
			c.Issuer = g.Issuer
		} else if c.Issuer != g.Issuer {
			problems = append(problems, root.Child("issuer").Problem("issuer: the config says %q and %s says %q: set the issuer in one place", c.Issuer, g.IssuerFrom, g.Issuer))
		}
	}
	c.applyDefaults()
	problems = append(problems, c.validate()...)
	if len(problems) > 0 {
		return &c, problems
	}
	return &c, nil
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// syntaxProblem is an error of the YAML parser as a problem: its line
// (yaml.v3 writes "yaml: line N: ...") taken out where it enters.
func syntaxProblem(err error) Problem {
	p := Problem{Message: err.Error(), Severity: SeverityError}
	if m := yamlLine.FindStringSubmatch(p.Message); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		p.Message = m[2]
	}
	return p
}

// Root is the path of the config's top level, for problems found after
// Parse (a file that cannot be read, an IDP that cannot be built); a
// Config not made by Parse has no lines.
func (c *Config) Root() Path { return rootPath(c.root) }

func (c *Config) applyDefaults() {
	if c.Signing.Alg == "" {
		c.Signing.Alg = DefaultAlg
	}
	if c.MaxDelegationDepth == 0 {
		c.MaxDelegationDepth = DefaultMaxDelegationDepth
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	for i := range c.IDPs {
		p := &c.IDPs[i]
		if p.ClockSkew == 0 {
			p.ClockSkew = DefaultClockSkew
		}
		if s, ok := p.Spec.(Defaulter); ok {
			s.ApplyDefaults()
		}
	}
	for i := range c.Services {
		s := &c.Services[i]
		if s.TokenLifetime == 0 {
			s.TokenLifetime = DefaultTokenLifetime
		}
		if s.Audience == "" {
			s.Audience = s.Name
		}
	}
	for i := range c.Workflows {
		w := &c.Workflows[i]
		if w.Webhook != "" && w.Timeout == 0 {
			w.Timeout = workflow.DefaultTimeout
		}
	}
	for i := range c.Clients {
		if len(c.Clients[i].Modes) == 0 {
			c.Clients[i].Modes = []string{ModeImpersonation}
		}
	}
}

func (c *Config) validate() Problems {
	var p Problems
	add := func(at Path, format string, args ...any) { p = append(p, at.Problem(format, args...)) }
	root := c.Root()
	signing := root.Child("signing")

	if c.Issuer != "" {
		if u, err := url.Parse(c.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			add(root.Child("issuer"), "issuer: %q is not an http(s) URL", c.Issuer)
		}
	}
	if c.Issuer == "" && (strings.HasPrefix(c.Store, "postgres://") || strings.HasPrefix(c.Store, "postgresql://")) {
		// Each replica would make its issuer of its own listen address.
		add(root.Child("store"), "issuer: a postgres:// store is shared by replicas: set issuer, the public URL every replica issues tokens as")
	}
	switch c.Signing.Alg {
	case "ES256", "RS256", "EdDSA":
	default:
		add(signing.Child("alg"), "signing.alg: %q is not one of ES256, RS256, EdDSA", c.Signing.Alg)
	}
	switch {
	case c.Signing.RotateEvery != 0 && c.Signing.KeyFile != "":
		add(signing.Child("rotate_every"), "signing.rotate_every: a key_file does not rotate; remove key_file to keep the signing keys in the store")
	case c.Signing.RotateEvery != 0 && c.Signing.RotateEvery < MinRotateEvery:
		add(signing.Child("rotate_every"), "signing.rotate_every: %s is shorter than %s", c.Signing.RotateEvery, MinRotateEvery)
	}
	if c.Signing.KEKFile != "" && c.Signing.KeyFile != "" {
		add(signing.Child("kek_file"), "signing.kek_file: seals keys kept in the store, and key_file names a key outside it; remove one")
	}
	if c.MaxDelegationDepth < 1 || c.MaxDelegationDepth > MaxDelegationDepthLimit {
		add(root.Child("max_delegation_depth"), "max_delegation_depth: %d is outside 1..%d", c.MaxDelegationDepth, MaxDelegationDepthLimit)
	}
	if c.Traces < 0 || c.Traces > MaxTraces {
		add(root.Child("traces"), "traces: %d is outside 0..%d", c.Traces, MaxTraces)
	}
	if c.MaxInFlight < 1 {
		add(root.Child("max_in_flight"), "max_in_flight: %d is not a positive number of exchanges", c.MaxInFlight)
	}
	if c.ValidationCacheSize < -1 || c.ValidationCacheSize > MaxValidationCacheSize {
		add(root.Child("validation_cache_size"), "validation_cache_size: %d is outside -1..%d (-1 turns the cache off, 0 is the default %d)",
			c.ValidationCacheSize, MaxValidationCacheSize, DefaultValidationCacheSize)
	}
	if c.RateLimit != nil {
		p = append(p, c.RateLimit.validate(root.Child("rate_limit"), "rate_limit")...)
	}

	idpNames := map[string]bool{}
	issuers := map[string]string{}
	var opaque []placedIDP
	for i, d := range c.IDPs {
		where := fmt.Sprintf("idps[%d]", i)
		at := root.Child("idps").Index(i)
		if d.Name == "" {
			add(at.Child("name"), "%s: name is required", where)
		} else {
			where = fmt.Sprintf("idps[%d] (%s)", i, d.Name)
			if idpNames[d.Name] {
				add(at.Child("name"), "%s: duplicate IDP name", where)
			}
			idpNames[d.Name] = true
		}
		if d.Issuer == "" {
			add(at.Child("issuer"), "%s: issuer is required", where)
		} else if other, ok := issuers[d.Issuer]; ok {
			add(at.Child("issuer"), "%s: issuer %q is also IDP %q's: an issuer picks exactly one IDP", where, d.Issuer, other)
		} else {
			issuers[d.Issuer] = d.Name
		}
		if len(d.Audiences) == 0 {
			add(at.Child("audiences"), "%s: audiences is required (the subject token's aud must contain one)", where)
		}
		if d.ClockSkew < 0 || d.ClockSkew > 5*time.Minute {
			add(at.Child("clock_skew"), "%s: clock_skew %s is outside 0..5m", where, d.ClockSkew)
		}
		t, known := lookupIDPType(d.Type)
		switch {
		case d.Type == "":
			add(at.Child("type"), "%s: type is required (%s)", where, strings.Join(IDPTypes(), ", "))
		case !known:
			add(at.Child("type"), "%s: unknown type %q (%s)", where, d.Type, strings.Join(IDPTypes(), ", "))
		default:
			if d.Spec == nil {
				c.IDPs[i].Spec = t.newSpec()
				d.Spec = c.IDPs[i].Spec
			}
			p = append(p, d.Spec.Validate(d, at, where)...)
			p = append(p, foreignKeys(t, at, where)...)
			if o, ok := d.Spec.(OpaqueRouted); ok {
				opaque = append(opaque, placedIDP{d.Name, o.OpaquePrefix(), at})
			}
		}
	}
	p = append(p, introspectionRouting(opaque)...)

	// Workflows are compiled and type-checked here, so that a rule that
	// cannot run is a config problem, never a refusal at request time.
	workflows := map[string]*workflow.Workflow{}
	for i := range c.Workflows {
		w := &c.Workflows[i]
		where := fmt.Sprintf("workflows[%d]", i)
		at := root.Child("workflows").Index(i)
		if w.Name != "" {
			where = fmt.Sprintf("workflows[%d] (%s)", i, w.Name)
			if _, dup := workflows[w.Name]; dup {
				add(at.Child("name"), "%s: duplicate workflow name", where)
			}
		}
		compiled, err := workflow.Compile(w.Spec())
		if err != nil {
			var joined interface{ Unwrap() []error }
			errs := []error{err}
			if errors.As(err, &joined) {
				errs = joined.Unwrap()
			}
			for _, e := range errs {
				eat := at
				var ke *workflow.KeyError
				if errors.As(e, &ke) {
					eat = at.Child(ke.Key)
					if ke.Name != "" {
						eat = eat.Key(ke.Name)
					}
				}
				add(eat, "%s: %v", where, e)
			}
			compiled = nil
		}
		w.Compiled = compiled
		if _, dup := workflows[w.Name]; !dup {
			workflows[w.Name] = compiled
		}
	}

	svcNames := map[string]bool{}
	targets := map[string]string{}
	for i, s := range c.Services {
		where := fmt.Sprintf("services[%d]", i)
		at := root.Child("services").Index(i)
		if s.Name == "" {
			add(at.Child("name"), "%s: name is required", where)
		} else {
			where = fmt.Sprintf("services[%d] (%s)", i, s.Name)
			if svcNames[s.Name] {
				add(at.Child("name"), "%s: duplicate service name", where)
			}
			svcNames[s.Name] = true
		}
		for k, t := range append([]string{s.Audience}, s.Resources...) {
			if other, ok := targets[t]; ok && other != s.Name {
				tat := at.Child("audience")
				if k > 0 {
					tat = at.Child("resources").Index(k - 1)
				}
				add(tat, "%s: audience or resource %q is also service %q's", where, t, other)
			}
			targets[t] = s.Name
		}
		for j, r := range s.Resources {
			if u, err := url.Parse(r); err != nil || !u.IsAbs() || u.Fragment != "" {
				add(at.Child("resources").Index(j), "%s: resource %q is not an absolute URI without fragment (RFC 8707 §2)", where, r)
			}
		}
		if len(s.Scopes) == 0 {
			add(at.Child("scopes"), "%s: scopes is required", where)
		}
		for name := range s.Scopes {
			if name == "" || strings.ContainsAny(name, " \"\\") {
				add(at.Child("scopes").Key(name), "%s: scope %q is not a valid scope token (RFC 6749 §3.3)", where, name)
			}
		}
		for j, d := range s.DefaultScopes {
			if _, ok := s.Scopes[d]; !ok {
				add(at.Child("default_scopes").Index(j), "%s: default scope %q is not one of its scopes", where, d)
			}
		}
		if s.TokenLifetime < time.Second || s.TokenLifetime > 24*time.Hour {
			add(at.Child("token_lifetime"), "%s: token_lifetime %s is outside 1s..24h", where, s.TokenLifetime)
		}
		if s.CarryClaims != nil {
			for j, name := range *s.CarryClaims {
				if !slices.Contains(CarriableClaims, name) {
					add(at.Child("carry_claims").Index(j), "%s: carry_claims: %q is not a claim a token can carry (%s)", where, name, strings.Join(CarriableClaims, ", "))
				}
			}
		}
		c.Services[i].Rules = nil
		seen := map[string]bool{}
		for j, name := range s.Workflows {
			wat := at.Child("workflows").Index(j)
			compiled, ok := workflows[name]
			switch {
			case seen[name]:
				add(wat, "%s: workflow %q is named twice", where, name)
			case !ok:
				add(wat, "%s: unknown workflow %q", where, name)
			case compiled != nil:
				c.Services[i].Rules = append(c.Services[i].Rules, compiled)
			}
			seen[name] = true
		}
	}

	clientIDs := map[string]bool{}
	for i, cl := range c.Clients {
		where := fmt.Sprintf("clients[%d]", i)
		at := root.Child("clients").Index(i)
		if cl.ID == "" {
			add(at.Child("id"), "%s: id is required", where)
		} else {
			where = fmt.Sprintf("clients[%d] (%s)", i, cl.ID)
			if clientIDs[cl.ID] {
				add(at.Child("id"), "%s: duplicate client id", where)
			}
			clientIDs[cl.ID] = true
		}
		n := 0
		for _, set := range []bool{cl.Secret != "", cl.SecretHash != "", cl.JWKSFile != ""} {
			if set {
				n++
			}
		}
		if n != 1 {
			add(at, "%s: needs exactly one of secret, secret_hash, jwks_file", where)
		}
		if cl.SecretHash != "" {
			// A costly hash lets every wrong secret spend the server's
			// memory and CPU: parameters above secret's ceilings are refused.
			if _, err := secret.ParseHash(cl.SecretHash); err != nil {
				add(at.Child("secret_hash"), "%s: secret_hash: %v", where, err)
			}
		}
		if len(cl.Services) == 0 {
			add(at.Child("services"), "%s: services is required (names, or \"*\")", where)
		}
		for j, s := range cl.Services {
			if s != "*" && !svcNames[s] {
				add(at.Child("services").Index(j), "%s: unknown service %q", where, s)
			}
		}
		for j, s := range cl.Serves {
			if !svcNames[s] {
				add(at.Child("serves").Index(j), "%s: serves: unknown service %q (serves names services, never \"*\")", where, s)
			}
		}
		for j, m := range cl.Modes {
			if m != ModeImpersonation && m != ModeDelegation {
				add(at.Child("modes").Index(j), "%s: unknown mode %q (impersonation, delegation)", where, m)
			}
		}
		if cl.RateLimit != nil {
			p = append(p, cl.RateLimit.validate(at.Child("rate_limit"), where+": rate_limit")...)
		}
	}
	return p
}

// placedIDP is an IDP that takes opaque tokens by prefix, and its place in
// the config.
type placedIDP struct {
	Name, TokenPrefix string
	at                Path
}

// NormalizeTyp is a JWT typ value as RFC 7515 §4.1.9 compares it: lower
// case, without the "application/" prefix.
func NormalizeTyp(typ string) string {
	t := strings.ToLower(typ)
	return strings.TrimPrefix(t, "application/")
}

// ClaimPaths checks the claims mapping (at) of an IDP whose claims map a
// canonical name to a path in its tokens (jwt, introspection).
func ClaimPaths(at Path, where string, claims map[string]string) Problems {
	return claimPaths(at, where, claims)
}

// claimPaths checks the claims mapping (at) of a jwt or introspection IDP.
func claimPaths(at Path, where string, claims map[string]string) Problems {
	var p Problems
	names := make([]string, 0, len(claims))
	for name := range claims {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		path := claims[name]
		switch {
		case name == "":
			p = append(p, at.Key(name).Problem("%s: claims: an empty canonical name", where))
		case slices.Contains(ReservedClaims, name):
			p = append(p, at.Key(name).Problem("%s: claims: %q is reserved and cannot be mapped (reserved: %s)", where, name, strings.Join(ReservedClaims, " ")))
		}
		if path == "" || strings.HasPrefix(path, ".") || strings.HasSuffix(path, ".") || strings.Contains(path, "..") {
			p = append(p, at.Key(name).Problem("%s: claims: %s: path %q is empty or has an empty segment (write a.b.c, or a top-level claim name)", where, name, path))
		}
		// Each mapping reads the token's own claims, never another
		// mapping's result: {groups: roles, roles: realm_access.roles}
		// gives groups the token's roles, which is rarely what was meant.
		for _, other := range names {
			if other != name && other != "" && (path == other || strings.HasPrefix(path, other+".")) {
				p = append(p, at.Key(name).Problem("%s: claims: %s: path %q reads %s, which is itself mapped (%s: %s); mappings read the token's own claims, never each other's: write the path %s should read", where, name, path, other, other, claims[other], name))
			}
		}
	}
	return p
}

// introspectionRouting refuses a set of IDPs taking opaque tokens that would leave
// an opaque token's IDP ambiguous: each token goes to exactly one endpoint.
func introspectionRouting(idps []placedIDP) Problems {
	var p Problems
	if len(idps) < 2 {
		return p
	}
	for i, a := range idps {
		if a.TokenPrefix == "" {
			p = append(p, a.at.Child("token_prefix").Problem("idps (%s): token_prefix is required when there is more than one introspection IDP, so that an opaque token goes to exactly one endpoint", a.Name))
			continue
		}
		for _, b := range idps[i+1:] {
			if b.TokenPrefix != "" && (strings.HasPrefix(a.TokenPrefix, b.TokenPrefix) || strings.HasPrefix(b.TokenPrefix, a.TokenPrefix)) {
				p = append(p, b.at.Child("token_prefix").Problem("idps (%s, %s): token_prefix %q and %q overlap: a token could match both", a.Name, b.Name, a.TokenPrefix, b.TokenPrefix))
			}
		}
	}
	return p
}

// Summary is a short human description of a valid config.
func (c *Config) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "issuer:   %s\n", orDefault(c.Issuer, "(the listen address)"))
	fmt.Fprintf(&b, "signing:  %s\n", c.Signing.Alg)
	fmt.Fprintf(&b, "IDPs:     %d\n", len(c.IDPs))
	for _, d := range c.IDPs {
		fmt.Fprintf(&b, "  %-16s %-6s %s (audiences: %s)\n", d.Name, d.Type, d.Issuer, strings.Join(d.Audiences, ", "))
	}
	fmt.Fprintf(&b, "services: %d\n", len(c.Services))
	for _, s := range c.Services {
		scopes := make([]string, 0, len(s.Scopes))
		for name := range s.Scopes {
			scopes = append(scopes, name)
		}
		slices.Sort(scopes)
		fmt.Fprintf(&b, "  %-16s audience %s, scopes %s, lifetime %s\n", s.Name, s.Audience, strings.Join(scopes, " "), s.TokenLifetime)
	}
	fmt.Fprintf(&b, "clients:  %d\n", len(c.Clients))
	for _, cl := range c.Clients {
		fmt.Fprintf(&b, "  %-16s services %s, modes %s\n", cl.ID, strings.Join(cl.Services, " "), strings.Join(cl.Modes, " "))
	}
	return b.String()
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// KEKFile is signing.kek_file resolved against the config's folder, or
// "" when the config names none.
func (c *Config) KEKFile() string {
	f := c.Signing.KEKFile
	if f != "" && !filepath.IsAbs(f) && c.Dir != "" {
		return filepath.Join(c.Dir, f)
	}
	return f
}

// MaxTokenLifetime is the longest token_lifetime of the services.
func (c *Config) MaxTokenLifetime() time.Duration {
	longest := DefaultTokenLifetime
	for _, s := range c.Services {
		longest = max(longest, s.TokenLifetime)
	}
	return longest
}

// StoreURL is the config's store with a relative SQLite path resolved
// against the config file's folder, or "" when the config names none.
func (c *Config) StoreURL() string {
	s := c.Store
	path, isSQLite := strings.CutPrefix(s, "sqlite:")
	if isSQLite && path != "" && !filepath.IsAbs(path) && c.Dir != "" {
		return "sqlite:" + filepath.Join(c.Dir, path)
	}
	return s
}
