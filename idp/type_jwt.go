package idp

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/idtx/idtx/config"
)

// JWTSpec is the keys of a jwt IDP: where its signing keys are, and what
// it may sign with.
type JWTSpec struct {
	JWKSURI    string   `yaml:"jwks_uri"`
	JWKSFile   string   `yaml:"jwks_file"`
	Discovery  bool     `yaml:"discovery"`
	Algorithms []string `yaml:"algorithms"`
	// AccessTokenTyp is the JWT typ values accepted from a subject token
	// presented as access_token: at+jwt, JWT, or "" for no typ (RFC 7515
	// §4.1.9: compared case-insensitively, "application/" optional).
	// Empty accepts all three; [at+jwt] is strict RFC 9068.
	AccessTokenTyp []string `yaml:"access_token_typ"`
}

// allowedAlgorithms are all that a jwt IDP may list: never none, never HS*
// (RFC 8725 §3.1, §3.2).
var allowedAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// ApplyDefaults accepts config.DefaultAlgorithms from an IDP that names
// none.
func (s *JWTSpec) ApplyDefaults() {
	if len(s.Algorithms) == 0 {
		s.Algorithms = slices.Clone(config.DefaultAlgorithms)
	}
}

// Validate checks where the keys are and which algorithms and typ values
// are accepted.
func (s *JWTSpec) Validate(d config.IDP, at config.Path, where string) config.Problems {
	var p config.Problems
	n := 0
	for _, set := range []bool{s.JWKSURI != "", s.JWKSFile != "", s.Discovery} {
		if set {
			n++
		}
	}
	if n != 1 {
		p = append(p, at.Problem("%s: a jwt IDP needs exactly one of jwks_uri, jwks_file, discovery: true", where))
	}
	if s.JWKSURI != "" && !isHTTPURL(s.JWKSURI) {
		p = append(p, at.Child("jwks_uri").Problem("%s: jwks_uri %q is not an http(s) URL", where, s.JWKSURI))
	}
	for j, a := range s.Algorithms {
		if !slices.Contains(allowedAlgorithms, a) {
			p = append(p, at.Child("algorithms").Index(j).Problem("%s: algorithm %q is not allowed (allowed: %s)", where, a, strings.Join(allowedAlgorithms, " ")))
		}
	}
	for j, t := range s.AccessTokenTyp {
		if !slices.Contains([]string{"at+jwt", "jwt", ""}, config.NormalizeTyp(t)) {
			p = append(p, at.Child("access_token_typ").Index(j).Problem("%s: access_token_typ %q is not one of at+jwt, JWT, \"\" (no typ)", where, t))
		}
	}
	return append(p, config.ClaimPaths(at.Child("claims"), where, d.Claims)...)
}

// Open builds the JWT validator of d, with its keys from the file, the
// URL or the issuer's discovery document.
func (s *JWTSpec) Open(ctx context.Context, d config.IDP, opts Options) (Validator, error) {
	var keys KeySet
	var err error
	switch {
	case s.JWKSFile != "":
		var raw []byte
		if raw, err = opts.ReadFile(s.JWKSFile); err == nil {
			keys, err = StaticKeys(raw)
		}
	case s.JWKSURI != "":
		keys, err = remoteKeys(ctx, s.JWKSURI, opts.HTTPClient, fetchReporter(d.Name, opts.Metrics))
	case s.Discovery:
		keys = &discovered{ctx: ctx, issuer: d.Issuer, client: opts.HTTPClient, report: fetchReporter(d.Name, opts.Metrics)}
	}
	if err != nil {
		return nil, fmt.Errorf("idp %s: %w", d.Name, err)
	}
	return NewJWT(JWTConfig{
		Name: d.Name, Issuer: d.Issuer, Audiences: d.Audiences, Algorithms: s.Algorithms,
		ClockSkew: d.ClockSkew, Clock: opts.Clock, Keys: keys,
		AccessTokenTyp: s.AccessTokenTyp, Claims: d.Claims,
	})
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}
