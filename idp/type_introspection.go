package idp

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/idtx/idtx/config"
)

// IntrospectionSpec is the keys of an introspection IDP (RFC 7662): its
// endpoint, the STS's credentials there, and the opaque tokens it takes.
type IntrospectionSpec struct {
	IntrospectionEndpoint string `yaml:"introspection_endpoint"`
	// Discovery finds the endpoint in the issuer's metadata (RFC 8414).
	Discovery        bool   `yaml:"discovery"`
	ClientID         string `yaml:"client_id"`
	ClientSecret     string `yaml:"client_secret"`
	ClientSecretFile string `yaml:"client_secret_file"`
	// TokenPrefix routes opaque tokens that start with it to this IDP.
	TokenPrefix string `yaml:"token_prefix"`
	// CacheTTL bounds how long a positive introspection answer is reused
	// (never past the token's exp); nil until defaults apply, and an
	// explicit 0 reuses none.
	CacheTTL *time.Duration `yaml:"cache_ttl"`
}

// KeyGroups names the keys only an introspection IDP has when another
// type is given them (discovery is a jwt IDP's too).
func (*IntrospectionSpec) KeyGroups() [][]string {
	return [][]string{{"introspection_endpoint", "client_id", "client_secret", "client_secret_file", "token_prefix", "cache_ttl"}}
}

// OpaquePrefix is the start of the opaque tokens this IDP takes; config
// checks that no two IDPs' overlap.
func (s *IntrospectionSpec) OpaquePrefix() string { return s.TokenPrefix }

// ApplyDefaults reuses an answer config.DefaultCacheTTL when cache_ttl is
// unset.
func (s *IntrospectionSpec) ApplyDefaults() {
	if s.CacheTTL == nil {
		s.CacheTTL = new(config.DefaultCacheTTL)
	}
}

// Validate checks the endpoint, the credentials, the cache and the prefix.
func (s *IntrospectionSpec) Validate(d config.IDP, at config.Path, where string) config.Problems {
	var p config.Problems
	add := func(at config.Path, format string, args ...any) { p = append(p, at.Problem(format, args...)) }
	if (s.IntrospectionEndpoint != "") == s.Discovery {
		add(at, "%s: an introspection IDP needs exactly one of introspection_endpoint, discovery: true", where)
	}
	if s.IntrospectionEndpoint != "" && !isHTTPURL(s.IntrospectionEndpoint) {
		add(at.Child("introspection_endpoint"), "%s: introspection_endpoint %q is not an http(s) URL", where, s.IntrospectionEndpoint)
	}
	if s.ClientID == "" {
		add(at.Child("client_id"), "%s: client_id is required (the STS authenticates to the introspection endpoint, RFC 7662 §2.1)", where)
	}
	if (s.ClientSecret != "") == (s.ClientSecretFile != "") {
		add(at, "%s: an introspection IDP needs exactly one of client_secret, client_secret_file", where)
	}
	if s.CacheTTL != nil && (*s.CacheTTL < 0 || *s.CacheTTL > time.Hour) {
		add(at.Child("cache_ttl"), "%s: cache_ttl %s is outside 0..1h", where, *s.CacheTTL)
	}
	if s.TokenPrefix != "" && strings.HasPrefix("eyJ", s.TokenPrefix[:min(len(s.TokenPrefix), 3)]) {
		add(at.Child("token_prefix"), "%s: token_prefix %q would match every JWT (they start with eyJ)", where, s.TokenPrefix)
	}
	return append(p, config.ClaimPaths(at.Child("claims"), where, d.Claims)...)
}

// Open builds the introspection validator of d, reading its secret from
// client_secret_file if it names one.
func (s *IntrospectionSpec) Open(_ context.Context, d config.IDP, opts Options) (Validator, error) {
	secret := s.ClientSecret
	if s.ClientSecretFile != "" {
		raw, err := opts.ReadFile(s.ClientSecretFile)
		if err != nil {
			return nil, fmt.Errorf("idp %s: client_secret_file: %w", d.Name, err)
		}
		if secret = strings.TrimSpace(string(raw)); secret == "" {
			return nil, fmt.Errorf("idp %s: client_secret_file %s is empty", d.Name, s.ClientSecretFile)
		}
	}
	v, err := NewIntrospection(IntrospectionConfig{
		Name: d.Name, Issuer: d.Issuer, Endpoint: s.IntrospectionEndpoint, Discovery: s.Discovery,
		ClientID: s.ClientID, ClientSecret: secret, TokenPrefix: s.TokenPrefix, Audiences: d.Audiences,
		CacheTTL: *cmp.Or(s.CacheTTL, new(config.DefaultCacheTTL)), ClockSkew: d.ClockSkew, Clock: opts.Clock, HTTPClient: opts.HTTPClient,
		Claims: d.Claims,
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}
