// Package idp validates subject and actor tokens: one Validator per kind of
// token behind one interface, and a Registry that picks the validator by the
// token's issuer before anything in the token is trusted.
package idp

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"time"

	"github.com/idtx/idtx/config"
)

// Token type URNs (RFC 8693 §3).
const (
	TokenTypeAccessToken  = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeRefreshToken = "urn:ietf:params:oauth:token-type:refresh_token"
	TokenTypeIDToken      = "urn:ietf:params:oauth:token-type:id_token"
	TokenTypeJWT          = "urn:ietf:params:oauth:token-type:jwt"
	TokenTypeSAML1        = "urn:ietf:params:oauth:token-type:saml1"
	TokenTypeSAML2        = "urn:ietf:params:oauth:token-type:saml2"
)

// Error categories. Every validation error wraps exactly one of them, so
// callers can tell a bad token from an IDP that is down with errors.Is.
var (
	// ErrMalformed: the token is not a well-formed token of its kind.
	ErrMalformed = errors.New("malformed token")
	// ErrUntrusted: no trusted IDP issues tokens like this one.
	ErrUntrusted = errors.New("untrusted issuer")
	// ErrInvalid: the token is from a trusted IDP but fails validation.
	ErrInvalid = errors.New("invalid token")
	// ErrUnavailable: the IDP's keys or metadata cannot be fetched now.
	ErrUnavailable = errors.New("idp unavailable")
)

// Identity is what a validated token says about its subject.
type Identity struct {
	IDP     string         // name of the IDP whose configuration validated it
	Issuer  string         // iss, or SAML Issuer
	Subject string         // sub, or SAML NameID
	Claims  map[string]any // every claim, verified
	Expiry  time.Time
	Scopes  []string       // scope (space-separated) or scp
	MayAct  map[string]any // may_act (RFC 8693 §4.4), nil if absent
	Act     map[string]any // act (RFC 8693 §4.1), nil if absent
}

// Validator validates one token of a kind it knows. tokenType is a token
// type URN; ctx bounds any remote call.
type Validator interface {
	Validate(ctx context.Context, token, tokenType string) (*Identity, error)
}

// Registry holds the trusted IDPs, keyed by issuer.
type Registry struct {
	jwt  map[string]*JWT
	saml map[string]*SAML
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{jwt: map[string]*JWT{}, saml: map[string]*SAML{}}
}

// AddSAML trusts v for SAML assertions whose Issuer is v's entity ID.
func (r *Registry) AddSAML(v *SAML) error {
	if _, dup := r.saml[v.cfg.Issuer]; dup {
		return fmt.Errorf("issuer %q is trusted twice", v.cfg.Issuer)
	}
	r.saml[v.cfg.Issuer] = v
	return nil
}

// AddJWT trusts v for JWTs whose iss is v's issuer.
func (r *Registry) AddJWT(v *JWT) error {
	if _, dup := r.jwt[v.issuer]; dup {
		return fmt.Errorf("issuer %q is trusted twice", v.issuer)
	}
	r.jwt[v.issuer] = v
	return nil
}

// With returns a copy of r that also trusts v; r itself is unchanged, so
// one registry can back several engines.
func (r *Registry) With(v *JWT) (*Registry, error) {
	c := *r
	c.jwt = maps.Clone(r.jwt)
	if err := c.AddJWT(v); err != nil {
		return nil, err
	}
	return &c, nil
}

// Validate picks the IDP by the token's issuer, then validates the token
// with that IDP's configuration only (RFC 8725 §3.8: no issuer mix-up).
func (r *Registry) Validate(ctx context.Context, token, tokenType string) (*Identity, error) {
	switch tokenType {
	case TokenTypeJWT, TokenTypeAccessToken, TokenTypeIDToken:
	case TokenTypeSAML1, TokenTypeSAML2:
		d, err := parseSAML(token)
		if err != nil {
			return nil, err
		}
		iss := d.issuer()
		v, ok := r.saml[iss]
		if !ok {
			return nil, fmt.Errorf("%w: SAML Issuer %q is not a trusted IDP", ErrUntrusted, clip(iss))
		}
		return v.validate(d, tokenType)
	default:
		return nil, fmt.Errorf("%w: token type %s is not accepted here", ErrUntrusted, tokenType)
	}
	p, err := peekJWT(token, tokenType)
	if err != nil {
		return nil, err
	}
	v, ok := r.jwt[p.iss]
	if !ok {
		return nil, fmt.Errorf("%w: iss %q is not a trusted IDP", ErrUntrusted, clip(p.iss))
	}
	return v.validate(ctx, p)
}

// clip shortens attacker-controlled text before it goes into an error.
func clip(s string) string {
	const max = 80
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

// Options are what building a registry from config needs from outside.
type Options struct {
	HTTPClient *http.Client
	Clock      func() time.Time
	// ReadFile reads a file named in the config (jwks_file).
	ReadFile func(name string) ([]byte, error)
}

// FromConfig builds a registry of every IDP in idps. ctx bounds the
// background refresh of remote key sets.
func FromConfig(ctx context.Context, idps []config.IDP, opts Options) (*Registry, error) {
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: FetchTimeout}
	}
	r := NewRegistry()
	for _, d := range idps {
		if d.Type == config.IDPTypeSAML {
			v, err := samlFromConfig(d, opts)
			if err != nil {
				return nil, err
			}
			if err := r.AddSAML(v); err != nil {
				return nil, err
			}
			continue
		}
		if d.Type != config.IDPTypeJWT {
			return nil, fmt.Errorf("idp %s: type %q is not supported", d.Name, d.Type)
		}
		var keys KeySet
		var err error
		switch {
		case d.JWKSFile != "":
			var raw []byte
			if raw, err = opts.ReadFile(d.JWKSFile); err == nil {
				keys, err = StaticKeys(raw)
			}
		case d.JWKSURI != "":
			keys, err = RemoteKeys(ctx, d.JWKSURI, opts.HTTPClient)
		case d.Discovery:
			keys = DiscoveredKeys(ctx, d.Issuer, opts.HTTPClient)
		}
		if err != nil {
			return nil, fmt.Errorf("idp %s: %w", d.Name, err)
		}
		v, err := NewJWT(JWTConfig{
			Name: d.Name, Issuer: d.Issuer, Audiences: d.Audiences, Algorithms: d.Algorithms,
			ClockSkew: d.ClockSkew, Clock: opts.Clock, Keys: keys,
		})
		if err != nil {
			return nil, err
		}
		if err := r.AddJWT(v); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func samlFromConfig(d config.IDP, opts Options) (*SAML, error) {
	var certs []*x509.Certificate
	switch {
	case d.CertificateFile != "":
		data, err := opts.ReadFile(d.CertificateFile)
		if err != nil {
			return nil, fmt.Errorf("idp %s: %w", d.Name, err)
		}
		if certs, err = ParseCertificates(data); err != nil {
			return nil, fmt.Errorf("idp %s: certificate_file %s: %w", d.Name, d.CertificateFile, err)
		}
	case d.MetadataFile != "":
		data, err := opts.ReadFile(d.MetadataFile)
		if err != nil {
			return nil, fmt.Errorf("idp %s: %w", d.Name, err)
		}
		entityID, mc, err := MetadataCertificates(data)
		if err != nil {
			return nil, fmt.Errorf("idp %s: metadata_file %s: %w", d.Name, d.MetadataFile, err)
		}
		if entityID != d.Issuer {
			return nil, fmt.Errorf("idp %s: metadata_file names entityID %q, not the issuer %q", d.Name, entityID, d.Issuer)
		}
		certs = mc
	}
	return NewSAML(SAMLConfig{
		Name: d.Name, Issuer: d.Issuer, Certificates: certs, Audiences: d.Audiences,
		AllowSHA1: d.AllowSHA1, ClockSkew: d.ClockSkew, Clock: opts.Clock, Claims: d.Claims,
	})
}
