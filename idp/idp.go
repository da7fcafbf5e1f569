// Package idp validates subject and actor tokens: one Validator per kind of
// token behind one interface, and a Registry that picks the validator by the
// token's issuer before anything in the token is trusted.
package idp

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/oauth"
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

	// How it was verified, for explanations (never the token itself).
	KeyID     string        // JWT kid of the verifying key, if the header named one
	Algorithm string        // JWT alg, or the SAML SignatureMethod URI
	Endpoint  string        // introspection endpoint that vouched for it
	Skew      time.Duration // clock skew allowed in the time checks
	Route     Route         // what the Registry routes this IDP's tokens on
}

// Validator validates one token of a kind it knows. tokenType is a token
// type URN; ctx bounds any remote call. Route says which tokens the
// Registry sends it.
type Validator interface {
	Validate(ctx context.Context, token, tokenType string) (*Identity, error)
	Route() Route
}

// Route is what the Registry routes on, before anything in a token is
// trusted.
type Route struct {
	Name string // the IDP's name
	// Kind is the IDP's type (config.IDPTypeJWT, IDPTypeSAML,
	// IDPTypeIntrospection, or another registered type), for
	// explanations.
	Kind string
	// By is which tokens the Registry sends it.
	By Routing
	// Issuer is the JWT iss (RouteJWT, RouteIntrospection) or SAML Issuer
	// (RouteSAML) the validator answers for.
	Issuer string
	// TokenPrefix, for RouteIntrospection, claims the opaque tokens that
	// start with it; "" takes every opaque token, and only a registry's
	// single introspection IDP may have it.
	TokenPrefix string
}

// Routing is how the Registry finds the one validator of a token. A new
// kind of IDP picks the one its tokens are routed by.
type Routing int

const (
	// RouteJWT: compact JWTs whose iss is the Route's Issuer, verified
	// locally, so that the Registry may cache their identities.
	RouteJWT Routing = iota + 1
	// RouteSAML: SAML assertions whose Issuer is the Route's Issuer.
	RouteSAML
	// RouteIntrospection: compact JWTs whose iss is the Route's Issuer,
	// and opaque access tokens (by TokenPrefix), vouched for by a remote
	// endpoint: never cached by the Registry, which cannot tell when the
	// endpoint changes its mind.
	RouteIntrospection
)

// jwtValidator and samlValidator take a token the registry has already
// split or parsed to route it, so that it is not read twice.
type jwtValidator interface {
	validate(ctx context.Context, p *peeked) (*Identity, error)
}

type samlValidator interface {
	validate(d *document, tokenType string) (*Identity, error)
}

// Registry holds the trusted IDPs and sends each token to exactly one of
// them (RFC 8725 §3.8: no issuer mix-up):
//
//   - saml1, saml2: the SAML IDP named by the assertion's Issuer;
//   - an opaque token whose start is an introspection IDP's token_prefix:
//     that IDP;
//   - a compact JWT: the IDP named by iss, verified locally by a jwt IDP
//     or introspected by an introspection IDP;
//   - any other opaque access token (a JWE included): the single
//     introspection IDP, when there is one without token_prefix.
type Registry struct {
	byIssuer map[string]Validator // JWT iss: jwt and introspection IDPs
	saml     map[string]Validator
	opaque   []Validator // introspection IDPs, for opaque tokens
	all      []Validator // in the order added

	cache   *cache // nil: every token is validated every time
	metrics Metrics
}

// NewRegistry returns an empty registry, without a validation cache.
func NewRegistry() *Registry {
	return &Registry{byIssuer: map[string]Validator{}, saml: map[string]Validator{}, metrics: noMetrics{}}
}

// WithCache gives r a validation cache of at most size identities (see
// Validate), read against clock (time.Now if nil), and reports its hits
// and misses to m (if not nil). It returns r.
func (r *Registry) WithCache(size int, clock func() time.Time, m Metrics) *Registry {
	if size > 0 {
		r.cache = newCache(size, clock)
	}
	if m != nil {
		r.metrics = m
	}
	return r
}

// Add trusts v for the tokens its Route names. It refuses an issuer
// trusted twice, and an introspection IDP whose token_prefix would leave
// an opaque token's IDP ambiguous.
func (r *Registry) Add(v Validator) error {
	rt := v.Route()
	switch rt.By {
	case RouteSAML:
		if _, dup := r.saml[rt.Issuer]; dup {
			return fmt.Errorf("issuer %q is trusted twice", rt.Issuer)
		}
		r.saml[rt.Issuer] = v
		r.all = append(r.all, v)
		return nil
	case RouteJWT, RouteIntrospection:
	default:
		return fmt.Errorf("idp %s: kind %q cannot be routed", rt.Name, rt.Kind)
	}
	if _, dup := r.byIssuer[rt.Issuer]; dup {
		return fmt.Errorf("issuer %q is trusted twice", rt.Issuer)
	}
	if rt.By == RouteIntrospection {
		for _, o := range r.opaque {
			op := o.Route().TokenPrefix
			if op == "" || rt.TokenPrefix == "" {
				return fmt.Errorf("idp %s: introspection IDPs %s and %s need distinct token_prefix values", rt.Name, o.Route().Name, rt.Name)
			}
			if strings.HasPrefix(op, rt.TokenPrefix) || strings.HasPrefix(rt.TokenPrefix, op) {
				return fmt.Errorf("idp %s: token_prefix %q overlaps IDP %s's %q", rt.Name, rt.TokenPrefix, o.Route().Name, op)
			}
		}
		r.opaque = append(r.opaque, v)
	}
	r.byIssuer[rt.Issuer] = v
	r.all = append(r.all, v)
	return nil
}

// With returns a copy of r that also trusts v; r itself is unchanged, so
// one registry can back several engines.
func (r *Registry) With(v Validator) (*Registry, error) {
	c := *r
	c.byIssuer, c.saml = maps.Clone(r.byIssuer), maps.Clone(r.saml)
	c.opaque, c.all = slices.Clone(r.opaque), slices.Clone(r.all)
	// A cache of its own: an identity one copy's validators vouched for
	// (its own tokens, say) must never be handed out by another copy
	// that does not trust them.
	if r.cache != nil {
		c.cache = newCache(r.cache.max, r.cache.now)
	}
	if err := c.Add(v); err != nil {
		return nil, err
	}
	return &c, nil
}

// Validate sends the token to the one IDP that may have issued it, and
// validates it with that IDP's configuration only.
//
// With a cache (WithCache), a token this registry validated before is not
// verified again while every check would still decide the same: from the
// instant it was validated until its Expiry, and while its IDP's keys are
// the ones that verified it. Past that window it is validated afresh, so
// an expired token is refused with the same reason whether it was cached
// or not. Introspection IDPs are not cached here: they keep their own
// answers no longer than their cache_ttl. Each caller gets its own copy of
// the identity's Claims and Scopes; the values inside Claims (nested
// objects such as act and may_act) are shared and must not be changed.
func (r *Registry) Validate(ctx context.Context, token, tokenType string) (*Identity, error) {
	if r.cache == nil {
		return r.validate(ctx, token, tokenType)
	}
	key := cacheKey(token, tokenType)
	if id := r.cache.get(key, r.cache.now()); id != nil {
		r.metrics.CacheLookup(true)
		return id, nil
	}
	r.metrics.CacheLookup(false)
	rt, err := r.route(ctx, token, tokenType)
	if err != nil {
		return nil, err
	}
	// The generation is read before verifying: keys that change meanwhile
	// leave the entry already stale.
	keys, gen := keyGenerationOf(rt.v)
	id, err := rt.identity()
	if err != nil || rt.v.Route().By == RouteIntrospection {
		return id, err
	}
	// Validated no earlier than now: every lower bound holds from here.
	r.cache.put(key, id, r.cache.now(), keys, gen)
	return id, nil
}

// keyGenerationOf returns v's key set, if its keys can change, with its
// generation now.
func keyGenerationOf(v Validator) (generations, uint64) {
	if j, ok := v.(*JWT); ok {
		if g, ok := j.keys.(generations); ok {
			return g, g.Generation()
		}
	}
	return nil, 0
}

// validate is Validate without the cache.
func (r *Registry) validate(ctx context.Context, token, tokenType string) (*Identity, error) {
	rt, err := r.route(ctx, token, tokenType)
	if err != nil {
		return nil, err
	}
	return rt.identity()
}

// identity runs the validation and refuses a subject with a control
// character (NUL, newline, escape...): no IDP means one, it would split a
// log line or a terminal's text, and PostgreSQL refuses NUL in text, so
// the consent lookup would answer differently on each store.
func (rt routed) identity() (*Identity, error) {
	id, err := rt.run()
	if err != nil || id == nil {
		return id, err
	}
	if i := strings.IndexFunc(id.Subject, unicode.IsControl); i >= 0 {
		r, _ := utf8.DecodeRuneInString(id.Subject[i:])
		return nil, fmt.Errorf("%w: its subject contains the control character U+%04X: a sub must be printable text", ErrInvalid, r)
	}
	return id, nil
}

// routed is a validator chosen for a token, with the call that validates
// the token (already split or parsed) with it.
type routed struct {
	v   Validator
	run func() (*Identity, error)
}

func (r *Registry) route(ctx context.Context, token, tokenType string) (routed, error) {
	plain := func(v Validator) routed {
		return routed{v, func() (*Identity, error) { return v.Validate(ctx, token, tokenType) }}
	}
	switch tokenType {
	case oauth.TokenTypeJWT, oauth.TokenTypeAccessToken, oauth.TokenTypeIDToken:
	case oauth.TokenTypeSAML1, oauth.TokenTypeSAML2:
		d, err := parseSAML(token)
		if err != nil {
			return routed{}, err
		}
		iss := d.issuer()
		v, ok := r.saml[iss]
		if !ok {
			return routed{}, fmt.Errorf("%w: SAML Issuer %q is not a trusted IDP", ErrUntrusted, clip(iss))
		}
		if sv, ok := v.(samlValidator); ok {
			return routed{v, func() (*Identity, error) { return sv.validate(d, tokenType) }}, nil
		}
		return plain(v), nil
	case oauth.TokenTypeRefreshToken:
		return routed{}, fmt.Errorf("%w: a refresh_token is for the authorization server that issued it only (RFC 6749 §1.5); exchange an access token", ErrUntrusted)
	default:
		return routed{}, fmt.Errorf("%w: token type %s is not accepted here", ErrUntrusted, tokenType)
	}
	for _, v := range r.opaque {
		if p := v.Route().TokenPrefix; p != "" && strings.HasPrefix(token, p) {
			return plain(v), nil
		}
	}
	// Opaque to the STS: anything but a compact JWS. A JWE is opaque too
	// (zitadel/oidc issues its access tokens so); only its IDP reads it.
	opaque := strings.Count(token, ".") != 2
	if opaque && tokenType == oauth.TokenTypeAccessToken && len(r.opaque) > 0 {
		if v := r.opaque[0]; len(r.opaque) == 1 && v.Route().TokenPrefix == "" {
			return plain(v), nil
		}
		return routed{}, fmt.Errorf("%w: an opaque token that starts with no introspection IDP's token_prefix (%s)", ErrUntrusted, r.prefixes())
	}
	p, err := peekJWT(token, tokenType)
	if err != nil {
		if opaque && tokenType == oauth.TokenTypeAccessToken {
			return routed{}, fmt.Errorf("%w: no introspection IDP is configured for opaque access tokens", err)
		}
		return routed{}, err
	}
	v, ok := r.byIssuer[p.iss]
	if !ok {
		return routed{}, fmt.Errorf("%w: iss %q is not a trusted IDP", ErrUntrusted, clip(p.iss))
	}
	if jv, ok := v.(jwtValidator); ok {
		return routed{v, func() (*Identity, error) { return jv.validate(ctx, p) }}, nil
	}
	return plain(v), nil
}

func (r *Registry) prefixes() string {
	var out []string
	for _, v := range r.opaque {
		out = append(out, strconv.Quote(v.Route().TokenPrefix))
	}
	return strings.Join(out, ", ")
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
	// CacheSize bounds the registry's validation cache: 0 is
	// DefaultCacheSize, a negative size turns the cache off.
	CacheSize int
	// Metrics hears cache lookups and remote key fetches (nil: nobody).
	Metrics Metrics
}

// Spec is the part of a configured IDP only its type has (its keys, how
// they are checked) and the constructor of its validator, as Dex's
// ConnectorConfig is with Open.
type Spec interface {
	config.IDPSpec
	// Open builds the validator of d, whose Spec is this spec. ctx bounds
	// background work such as key refreshes.
	Open(ctx context.Context, d config.IDP, opts Options) (Validator, error)
}

// Register makes name a type an idps: entry may have, with newSpec a new
// zero spec of it (a pointer to a struct whose yaml tags are the type's
// own keys). Registering a name twice panics.
//
// Adding a kind of IDP is one file and one line:
//  1. a file that defines its spec: a struct of its own keys, Validate
//     (problems at their config.Path), Open (its Validator, whose Route
//     picks a Routing), optionally ApplyDefaults and KeyGroups;
//  2. one Register line below (or, for a test, in the test's file);
//  3. its tests run idptest.Run on the validator Open builds, and its
//     keys go in docs/config.md (the docs test walks every spec).
//
// Config then decodes its keys, names unknown ones with the nearest, and
// refuses other types' keys on it (type_recipe_test.go shows it all).
func Register(name string, newSpec func() Spec) {
	config.RegisterIDPType(name, func() config.IDPSpec { return newSpec() })
}

// The built-in types, in the order config problems list them.
func init() {
	Register(config.IDPTypeJWT, func() Spec { return new(JWTSpec) })
	Register(config.IDPTypeSAML, func() Spec { return new(SAMLSpec) })
	Register(config.IDPTypeIntrospection, func() Spec { return new(IntrospectionSpec) })
}

// FromConfig builds a registry of every IDP in idps, each by its Spec's
// Open. ctx bounds background work.
func FromConfig(ctx context.Context, idps []config.IDP, opts Options) (*Registry, error) {
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: FetchTimeout}
	}
	if opts.Metrics == nil {
		opts.Metrics = noMetrics{}
	}
	size := opts.CacheSize
	if size == 0 {
		size = DefaultCacheSize
	}
	r := NewRegistry().WithCache(size, opts.Clock, opts.Metrics)
	for _, d := range idps {
		if d.Spec == nil { // a config.IDP not made by config.Parse
			d.Spec = config.NewIDPSpec(d.Type)
		}
		spec, ok := d.Spec.(Spec)
		if !ok {
			return nil, fmt.Errorf("idp %s: type %q is not supported", d.Name, d.Type)
		}
		v, err := spec.Open(ctx, d, opts)
		if err != nil {
			return nil, err
		}
		if err := r.Add(v); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Route names the SAML entity ID this validator answers for.
func (v *SAML) Route() Route {
	return Route{Name: v.cfg.Name, Kind: config.IDPTypeSAML, By: RouteSAML, Issuer: v.cfg.Issuer}
}

// Route names the JWT issuer this validator answers for.
func (v *JWT) Route() Route {
	return Route{Name: v.name, Kind: config.IDPTypeJWT, By: RouteJWT, Issuer: v.issuer}
}
