// Package config loads and validates an idtx server configuration
// (CONTRACT §6). Decoding is strict: an unknown key is an error that names
// the key and its line, and validation reports every problem at once so that
// one run of `idtx config validate` shows all there is to fix.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

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
	// (CONTRACT §4 step 8; docs/workflows.md).
	Workflows []Workflow `yaml:"workflows"`

	// ReadFile reads a file named in the config (a key, a JWKS): relative
	// names are taken from the config file's folder, or from the embedded
	// fixtures for the mock.
	ReadFile func(name string) ([]byte, error) `yaml:"-"`
	// Dir is the folder relative paths resolve against ("" for embedded).
	Dir string `yaml:"-"`
}

// Signing says how the STS signs the tokens it issues.
type Signing struct {
	Alg     string `yaml:"alg"`
	KeyFile string `yaml:"key_file"`
}

// IDP kinds.
const (
	IDPTypeJWT           = "jwt"
	IDPTypeSAML          = "saml"
	IDPTypeIntrospection = "introspection"
)

// IDP is one trusted identity provider.
type IDP struct {
	Name       string        `yaml:"name"`
	Type       string        `yaml:"type"`
	Issuer     string        `yaml:"issuer"`
	JWKSURI    string        `yaml:"jwks_uri"`
	JWKSFile   string        `yaml:"jwks_file"`
	Discovery  bool          `yaml:"discovery"`
	Audiences  []string      `yaml:"audiences"`
	Algorithms []string      `yaml:"algorithms"`
	ClockSkew  time.Duration `yaml:"clock_skew"`

	CertificateFile string `yaml:"certificate_file"`
	MetadataFile    string `yaml:"metadata_file"`
	// AllowSHA1 accepts RSA-SHA1 and SHA-1 digests from a SAML IDP.
	AllowSHA1 bool `yaml:"allow_sha1"`
	// Claims maps SAML attribute names to claim names.
	Claims map[string]string `yaml:"claims"`
}

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
	// already carries (CONTRACT §4 step 6, "optionally a subset").
	SubjectScopesOnly bool `yaml:"subject_scopes_only"`
	// Workflows names the workflows run, in order, for this service.
	Workflows []string `yaml:"workflows"`
	// Rules are the compiled Workflows, in the same order; Parse sets them.
	Rules []*workflow.Workflow `yaml:"-"`
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
}

// Defaults applied where the config is silent.
const (
	DefaultAlg           = "ES256"
	DefaultTokenLifetime = 5 * time.Minute
	DefaultClockSkew     = 30 * time.Second
)

// DefaultAlgorithms are accepted from a JWT IDP that names none.
var DefaultAlgorithms = []string{"RS256", "ES256", "PS256", "EdDSA"}

// allowedIDPAlgorithms are all that an IDP may list: never none, never HS*
// (RFC 8725 §3.1, §3.2).
var allowedIDPAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// Problems is every problem found in a config, in file order.
type Problems []string

func (p Problems) Error() string {
	return fmt.Sprintf("%d problem(s) in config:\n  %s", len(p), strings.Join(p, "\n  "))
}

// LoadFile reads, decodes and validates the config at path.
func LoadFile(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	return Parse(data, dir, func(name string) ([]byte, error) {
		if !filepath.IsAbs(name) {
			name = filepath.Join(dir, name)
		}
		return os.ReadFile(name)
	})
}

// LoadFS reads a config from an embedded file system, as the mock does.
func LoadFS(fsys fs.FS, name string) (*Config, error) {
	data, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, err
	}
	return Parse(data, "", func(n string) ([]byte, error) { return fs.ReadFile(fsys, n) })
}

// Parse decodes data strictly, applies defaults and validates. A config
// with problems yields a Problems error listing them all.
func Parse(data []byte, dir string, readFile func(string) ([]byte, error)) (*Config, error) {
	var c Config
	var problems Problems
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) { // empty file: empty config
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, Problems{err.Error()}
		}
		// yaml.v3 decodes what it can and collects every unknown key.
		problems = append(problems, te.Errors...)
	}
	c.ReadFile = readFile
	c.Dir = dir
	c.applyDefaults()
	problems = append(problems, c.validate()...)
	if len(problems) > 0 {
		return &c, problems
	}
	return &c, nil
}

func (c *Config) applyDefaults() {
	if c.Signing.Alg == "" {
		c.Signing.Alg = DefaultAlg
	}
	for i := range c.IDPs {
		p := &c.IDPs[i]
		if p.Type == IDPTypeJWT && len(p.Algorithms) == 0 {
			p.Algorithms = slices.Clone(DefaultAlgorithms)
		}
		if p.ClockSkew == 0 {
			p.ClockSkew = DefaultClockSkew
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
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }

	if c.Issuer != "" {
		if u, err := url.Parse(c.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			add("issuer: %q is not an http(s) URL", c.Issuer)
		}
	}
	switch c.Signing.Alg {
	case "ES256", "RS256", "EdDSA":
	default:
		add("signing.alg: %q is not one of ES256, RS256, EdDSA", c.Signing.Alg)
	}

	idpNames := map[string]bool{}
	issuers := map[string]string{}
	for i, d := range c.IDPs {
		where := fmt.Sprintf("idps[%d]", i)
		if d.Name == "" {
			add("%s: name is required", where)
		} else {
			where = fmt.Sprintf("idps[%d] (%s)", i, d.Name)
			if idpNames[d.Name] {
				add("%s: duplicate IDP name", where)
			}
			idpNames[d.Name] = true
		}
		if d.Issuer == "" {
			add("%s: issuer is required", where)
		} else if other, ok := issuers[d.Issuer]; ok {
			add("%s: issuer %q is also IDP %q's: an issuer picks exactly one IDP", where, d.Issuer, other)
		} else {
			issuers[d.Issuer] = d.Name
		}
		if len(d.Audiences) == 0 {
			add("%s: audiences is required (the subject token's aud must contain one)", where)
		}
		if d.ClockSkew < 0 || d.ClockSkew > 5*time.Minute {
			add("%s: clock_skew %s is outside 0..5m", where, d.ClockSkew)
		}
		switch d.Type {
		case IDPTypeJWT:
			n := 0
			for _, set := range []bool{d.JWKSURI != "", d.JWKSFile != "", d.Discovery} {
				if set {
					n++
				}
			}
			if n != 1 {
				add("%s: a jwt IDP needs exactly one of jwks_uri, jwks_file, discovery: true", where)
			}
			if d.JWKSURI != "" {
				if u, err := url.Parse(d.JWKSURI); err != nil || (u.Scheme != "https" && u.Scheme != "http") {
					add("%s: jwks_uri %q is not an http(s) URL", where, d.JWKSURI)
				}
			}
			for _, a := range d.Algorithms {
				if !slices.Contains(allowedIDPAlgorithms, a) {
					add("%s: algorithm %q is not allowed (allowed: %s)", where, a, strings.Join(allowedIDPAlgorithms, " "))
				}
			}
			if d.CertificateFile != "" || d.MetadataFile != "" || d.AllowSHA1 || len(d.Claims) > 0 {
				add("%s: certificate_file, metadata_file, allow_sha1 and claims are for saml IDPs", where)
			}
		case IDPTypeSAML:
			if (d.CertificateFile != "") == (d.MetadataFile != "") {
				add("%s: a saml IDP needs exactly one of certificate_file, metadata_file", where)
			}
			if d.JWKSURI != "" || d.JWKSFile != "" || d.Discovery || len(d.Algorithms) > 0 {
				add("%s: jwks_uri, jwks_file, discovery and algorithms are for jwt IDPs", where)
			}
		case IDPTypeIntrospection:
			add("%s: type %q is not supported by this build (supported: jwt, saml)", where, d.Type)
		case "":
			add("%s: type is required (jwt, saml)", where)
		default:
			add("%s: unknown type %q (jwt, saml, introspection)", where, d.Type)
		}
	}

	// Workflows are compiled and type-checked here, so that a rule that
	// cannot run is a config problem, never a refusal at request time.
	workflows := map[string]*workflow.Workflow{}
	for i := range c.Workflows {
		w := &c.Workflows[i]
		where := fmt.Sprintf("workflows[%d]", i)
		if w.Name != "" {
			where = fmt.Sprintf("workflows[%d] (%s)", i, w.Name)
			if _, dup := workflows[w.Name]; dup {
				add("%s: duplicate workflow name", where)
			}
		}
		compiled, err := workflow.Compile(w.Spec())
		if err != nil {
			var joined interface{ Unwrap() []error }
			if errors.As(err, &joined) {
				for _, e := range joined.Unwrap() {
					add("%s: %v", where, e)
				}
			} else {
				add("%s: %v", where, err)
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
		if s.Name == "" {
			add("%s: name is required", where)
		} else {
			where = fmt.Sprintf("services[%d] (%s)", i, s.Name)
			if svcNames[s.Name] {
				add("%s: duplicate service name", where)
			}
			svcNames[s.Name] = true
		}
		for _, t := range append([]string{s.Audience}, s.Resources...) {
			if other, ok := targets[t]; ok && other != s.Name {
				add("%s: audience or resource %q is also service %q's", where, t, other)
			}
			targets[t] = s.Name
		}
		for _, r := range s.Resources {
			if u, err := url.Parse(r); err != nil || !u.IsAbs() || u.Fragment != "" {
				add("%s: resource %q is not an absolute URI without fragment (RFC 8707 §2)", where, r)
			}
		}
		if len(s.Scopes) == 0 {
			add("%s: scopes is required", where)
		}
		for name := range s.Scopes {
			if name == "" || strings.ContainsAny(name, " \"\\") {
				add("%s: scope %q is not a valid scope token (RFC 6749 §3.3)", where, name)
			}
		}
		for _, d := range s.DefaultScopes {
			if _, ok := s.Scopes[d]; !ok {
				add("%s: default scope %q is not one of its scopes", where, d)
			}
		}
		if s.TokenLifetime < time.Second || s.TokenLifetime > 24*time.Hour {
			add("%s: token_lifetime %s is outside 1s..24h", where, s.TokenLifetime)
		}
		c.Services[i].Rules = nil
		seen := map[string]bool{}
		for _, name := range s.Workflows {
			compiled, ok := workflows[name]
			switch {
			case seen[name]:
				add("%s: workflow %q is named twice", where, name)
			case !ok:
				add("%s: unknown workflow %q", where, name)
			case compiled != nil:
				c.Services[i].Rules = append(c.Services[i].Rules, compiled)
			}
			seen[name] = true
		}
	}

	clientIDs := map[string]bool{}
	for i, cl := range c.Clients {
		where := fmt.Sprintf("clients[%d]", i)
		if cl.ID == "" {
			add("%s: id is required", where)
		} else {
			where = fmt.Sprintf("clients[%d] (%s)", i, cl.ID)
			if clientIDs[cl.ID] {
				add("%s: duplicate client id", where)
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
			add("%s: needs exactly one of secret, secret_hash, jwks_file", where)
		}
		if cl.SecretHash != "" && !strings.HasPrefix(cl.SecretHash, "$2") && !strings.HasPrefix(cl.SecretHash, "$argon2id$") {
			add("%s: secret_hash is neither bcrypt ($2…) nor argon2id ($argon2id$…)", where)
		}
		if len(cl.Services) == 0 {
			add("%s: services is required (names, or \"*\")", where)
		}
		for _, s := range cl.Services {
			if s != "*" && !svcNames[s] {
				add("%s: unknown service %q", where, s)
			}
		}
		for _, m := range cl.Modes {
			if m != ModeImpersonation && m != ModeDelegation {
				add("%s: unknown mode %q (impersonation, delegation)", where, m)
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
