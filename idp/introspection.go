package idp

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/internal/fetch"
	"github.com/idtx/idtx/internal/strictjson"
	"github.com/idtx/idtx/oauth"
)

// Introspection behaviour.
const (
	// IntrospectionTimeout bounds one call to an introspection endpoint:
	// it runs inside a token request.
	IntrospectionTimeout = 5 * time.Second
	// MaxCachedAnswers bounds the cache of positive answers per IDP.
	MaxCachedAnswers = 10_000
)

// IntrospectionConfig configures an introspection validator.
type IntrospectionConfig struct {
	Name   string
	Issuer string
	// Endpoint is the introspection_endpoint; with Discovery it is found
	// in the issuer's RFC 8414 or OpenID Connect metadata instead.
	Endpoint  string
	Discovery bool
	// ClientID and ClientSecret authenticate the STS to the endpoint
	// (client_secret_basic, RFC 7662 §2.1, RFC 6749 §2.3.1).
	ClientID, ClientSecret string
	// TokenPrefix routes the opaque tokens that start with it here.
	TokenPrefix string
	// Audiences: the answer's aud must contain one of them.
	Audiences []string
	// CacheTTL is the longest a positive answer is reused; never past the
	// token's exp. 0 disables the cache.
	CacheTTL   time.Duration
	ClockSkew  time.Duration
	Clock      func() time.Time
	HTTPClient *http.Client
	Claims     ClaimMap
}

// Introspection validates tokens by asking their IDP (RFC 7662): opaque
// tokens, and JWTs whose issuer should be checked live (revocation).
//
// What it requires of an answer: "active": true (false is an invalid
// token); sub, the user; exp, in the future, so that an issued token never
// outlives the subject token; aud, when present, containing one of the
// IDP's audiences, as for a jwt IDP. RFC 7662 §2.2 makes aud optional, and
// some endpoints (zitadel/oidc's example OP) leave it out and answer
// active only to a client the token is meant for (RFC 7662 §4): then that
// answer, given to the STS's own credentials, binds the token to this STS.
// iss, when present, must equal the IDP's issuer; nbf, when present, not
// be in the future. A refresh token (Dex's token_use,
// Keycloak's typ Refresh) is refused. Positive answers are cached, keyed
// by the token's SHA-256, until exp or CacheTTL, whichever is sooner: a
// token revoked at the IDP is accepted for at most CacheTTL more.
type Introspection struct {
	cfg    IntrospectionConfig
	client *http.Client

	mu       sync.Mutex
	endpoint string
	lastTry  time.Time
	lastErr  error
	cache    map[[sha256.Size]byte]cachedAnswer
}

type cachedAnswer struct {
	id    *Identity
	until time.Time
}

// NewIntrospection returns a validator for cfg.
func NewIntrospection(cfg IntrospectionConfig) (*Introspection, error) {
	if cfg.Endpoint == "" && !cfg.Discovery {
		return nil, fmt.Errorf("idp %s: no introspection_endpoint", cfg.Name)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	hc := http.DefaultClient
	if cfg.HTTPClient != nil {
		hc = cfg.HTTPClient
	}
	// The token and the STS's credentials go to the configured endpoint
	// only: a redirect is an error, never followed.
	c := *hc
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Introspection{cfg: cfg, client: &c, endpoint: cfg.Endpoint, cache: map[[sha256.Size]byte]cachedAnswer{}}, nil
}

// Route names the issuer and token prefix this validator answers for.
func (v *Introspection) Route() Route {
	return Route{Name: v.cfg.Name, Kind: config.IDPTypeIntrospection, By: RouteIntrospection, Issuer: v.cfg.Issuer, TokenPrefix: v.cfg.TokenPrefix}
}

// Validate introspects token, presented as tokenType: access_token
// (opaque or a JWT) or jwt (a JWT). An id_token is for a jwt IDP, and a
// refresh_token is never a subject token.
func (v *Introspection) Validate(ctx context.Context, token, tokenType string) (*Identity, error) {
	if err := v.acceptType(tokenType); err != nil {
		return nil, err
	}
	prefixed := v.cfg.TokenPrefix != "" && strings.HasPrefix(token, v.cfg.TokenPrefix)
	if !prefixed && strings.Count(token, ".") == 2 {
		p, err := peekJWT(token, tokenType)
		if err != nil {
			return nil, err
		}
		if p.iss != v.cfg.Issuer {
			return nil, fmt.Errorf("%w: iss %q is not %q", ErrUntrusted, clip(p.iss), v.cfg.Issuer)
		}
		return v.validate(ctx, p)
	}
	if v.cfg.TokenPrefix != "" && !prefixed {
		return nil, fmt.Errorf("%w: the token does not start with IDP %s's token_prefix %q", ErrUntrusted, v.cfg.Name, v.cfg.TokenPrefix)
	}
	if tokenType == oauth.TokenTypeJWT {
		return nil, fmt.Errorf("%w: presented as a jwt, but the token is opaque; send it as access_token", ErrMalformed)
	}
	return v.introspect(ctx, token)
}

// acceptType refuses the token types an introspection answer does not
// vouch for: RFC 7662 says whether an access token is active, never that
// a token is an ID token.
func (v *Introspection) acceptType(tokenType string) error {
	switch tokenType {
	case oauth.TokenTypeAccessToken, oauth.TokenTypeJWT:
		return nil
	case oauth.TokenTypeIDToken:
		return fmt.Errorf("%w: IDP %s is an introspection IDP, and an id_token is not introspected (RFC 7662 answers for access tokens)", ErrInvalid, v.cfg.Name)
	}
	return fmt.Errorf("%w: token type %s is not accepted by introspection IDP %s", ErrUntrusted, tokenType, v.cfg.Name)
}

// validate introspects a JWT the registry routed here by its iss: the
// IDP decides, not a local signature check. The registry calls it
// directly, so it checks the presented type itself.
func (v *Introspection) validate(ctx context.Context, p *peeked) (*Identity, error) {
	if err := v.acceptType(p.ttype); err != nil {
		return nil, err
	}
	return v.introspect(ctx, p.raw)
}

func (v *Introspection) introspect(ctx context.Context, token string) (*Identity, error) {
	key := sha256.Sum256([]byte(token))
	now := v.cfg.Clock()
	if id := v.cached(key, now); id != nil {
		return id, nil
	}
	endpoint, err := v.resolve(ctx)
	if err != nil {
		return nil, err
	}
	answer, err := v.ask(ctx, endpoint, token)
	if err != nil {
		return nil, err
	}
	id, err := v.identity(answer, now)
	if err != nil {
		return nil, err
	}
	id.Endpoint, id.Skew, id.Route = endpoint, v.cfg.ClockSkew, v.Route()
	v.remember(key, id, now)
	return cloneIdentity(id), nil
}

// ask POSTs the token to the endpoint (RFC 7662 §2.1) and returns the
// answer's members. Anything but a 200 with a JSON object is the IDP being
// unavailable, not a verdict on the token.
func (v *Introspection) ask(ctx context.Context, endpoint, token string) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(ctx, IntrospectionTimeout)
	defer cancel()
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	// No error below names the endpoint: its text reaches the client and
	// the trace; the server's log gets the URL, query values redacted,
	// from fetch.Detailed.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fetch.Detailed(fmt.Errorf("%w: introspection endpoint of IDP %s: the request cannot be made", ErrUnavailable, v.cfg.Name), endpoint, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// RFC 6749 §2.3.1: the id and secret are form-encoded before Basic.
	req.SetBasicAuth(url.QueryEscape(v.cfg.ClientID), url.QueryEscape(v.cfg.ClientSecret))
	resp, err := v.client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fetch.Detailed(fmt.Errorf("%w: introspection endpoint of IDP %s did not answer in time (at most %s)", ErrUnavailable, v.cfg.Name, IntrospectionTimeout), endpoint, err)
		}
		return nil, fetch.Detailed(fmt.Errorf("%w: introspection endpoint of IDP %s is unreachable", ErrUnavailable, v.cfg.Name), endpoint, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument))
	if err != nil {
		return nil, fetch.Detailed(fmt.Errorf("%w: introspection endpoint of IDP %s: the answer was cut off", ErrUnavailable, v.cfg.Name), endpoint, err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, fmt.Errorf("%w: introspection endpoint of IDP %s refused the STS's client credentials (status %d): check client_id and client_secret", ErrUnavailable, v.cfg.Name, resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%w: introspection endpoint of IDP %s answered status %d", ErrUnavailable, v.cfg.Name, resp.StatusCode)
	}
	// A trusted endpoint still gets no say in which of two duplicate
	// members a reader sees.
	answer, err := strictjson.Object(body)
	if err != nil {
		return nil, fmt.Errorf("%w: introspection endpoint of IDP %s: the answer is not a JSON object: %w", ErrUnavailable, v.cfg.Name, err)
	}
	return answer, nil
}

// identity holds the answer to what the STS needs of a subject.
func (v *Introspection) identity(answer map[string]any, now time.Time) (*Identity, error) {
	active, ok := answer["active"].(bool)
	switch {
	case !ok:
		return nil, fmt.Errorf("%w: introspection endpoint of IDP %s answered without a boolean active (RFC 7662 §2.2)", ErrUnavailable, v.cfg.Name)
	case !active:
		return nil, fmt.Errorf("%w: IDP %s says the token is not active (RFC 7662 §2.2: expired, revoked or never issued)", ErrInvalid, v.cfg.Name)
	}
	if isRefreshToken(answer) {
		return nil, fmt.Errorf("%w: IDP %s says this is a refresh token; exchange an access token", ErrInvalid, v.cfg.Name)
	}
	if iss, present := answer["iss"]; present {
		if s, _ := iss.(string); s != v.cfg.Issuer {
			return nil, fmt.Errorf("%w: the introspection answer's iss %q is not IDP %s's issuer %q", ErrUntrusted, clip(fmt.Sprint(iss)), v.cfg.Name, v.cfg.Issuer)
		}
	}
	sub, _ := answer["sub"].(string)
	if sub == "" {
		return nil, fmt.Errorf("%w: the introspection answer of IDP %s has no sub: it must name the user", ErrInvalid, v.cfg.Name)
	}
	expN, ok := answer["exp"].(float64)
	if !ok {
		return nil, fmt.Errorf("%w: the introspection answer of IDP %s has no exp: an exchanged token may not outlive its subject token", ErrInvalid, v.cfg.Name)
	}
	exp := time.Unix(int64(expN), 0)
	if !exp.After(now) {
		return nil, fmt.Errorf("%w: expired at %s (now %s)", ErrInvalid, exp.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if nbf, ok := answer["nbf"].(float64); ok {
		if t := time.Unix(int64(nbf), 0); t.After(now.Add(v.cfg.ClockSkew)) {
			return nil, fmt.Errorf("%w: not valid before %s (now %s)", ErrInvalid, t.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
		}
	}
	if raw, present := answer["aud"]; present {
		aud := stringList(raw)
		if s, single := raw.(string); single {
			aud = []string{s}
		}
		if !slices.ContainsFunc(aud, func(a string) bool { return slices.Contains(v.cfg.Audiences, a) }) {
			return nil, fmt.Errorf("%w: aud %q contains none of IDP %s's audiences %q", ErrInvalid, clipAll(aud), v.cfg.Name, v.cfg.Audiences)
		}
	}
	claims := answer
	delete(claims, "active")
	if _, ok := claims["iss"]; !ok {
		claims["iss"] = v.cfg.Issuer
	}
	id := &Identity{IDP: v.cfg.Name, Issuer: v.cfg.Issuer, Subject: sub, Claims: claims, Expiry: exp}
	id.MayAct, _ = claims["may_act"].(map[string]any)
	id.Act, _ = claims["act"].(map[string]any)
	id.Scopes = v.cfg.Claims.identityClaims(claims)
	return id, nil
}

// isRefreshToken reads the ways real endpoints say an answer is about a
// refresh token: Dex's token_use, Keycloak's typ, a token_type naming it.
func isRefreshToken(answer map[string]any) bool {
	for _, k := range []string{"token_use", "typ", "token_type"} {
		if s, ok := answer[k].(string); ok {
			if s = strings.ToLower(s); s == "refresh_token" || s == "refresh" {
				return true
			}
		}
	}
	return false
}

func (v *Introspection) cached(key [sha256.Size]byte, now time.Time) *Identity {
	v.mu.Lock()
	defer v.mu.Unlock()
	c, ok := v.cache[key]
	if !ok {
		return nil
	}
	if !now.Before(c.until) {
		delete(v.cache, key)
		return nil
	}
	return cloneIdentity(c.id)
}

// remember caches a positive answer until the token's exp or CacheTTL,
// whichever is sooner. A full cache drops its expired answers, then
// arbitrary ones: memory is bounded whatever the traffic.
func (v *Introspection) remember(key [sha256.Size]byte, id *Identity, now time.Time) {
	if v.cfg.CacheTTL <= 0 {
		return
	}
	until := now.Add(v.cfg.CacheTTL)
	if id.Expiry.Before(until) {
		until = id.Expiry
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.cache) >= MaxCachedAnswers {
		for k, c := range v.cache {
			if !now.Before(c.until) {
				delete(v.cache, k)
			}
		}
		for k := range v.cache {
			if len(v.cache) < MaxCachedAnswers*9/10 {
				break
			}
			delete(v.cache, k)
		}
	}
	v.cache[key] = cachedAnswer{id: id, until: until}
}

// cloneIdentity copies what a caller might change.
func cloneIdentity(id *Identity) *Identity {
	c := *id
	c.Claims = maps.Clone(id.Claims)
	c.Scopes = slices.Clone(id.Scopes)
	return &c
}

// resolve returns the introspection endpoint, discovering it on first
// use when configured so; a failed discovery is retried at most once per
// RefreshInterval.
func (v *Introspection) resolve(ctx context.Context) (string, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.endpoint != "" {
		return v.endpoint, nil
	}
	if !v.lastTry.IsZero() && time.Since(v.lastTry) < RefreshInterval {
		return "", v.lastErr
	}
	v.lastTry = time.Now()
	var errs []string
	for _, u := range metadataURLs(v.cfg.Issuer) {
		var meta struct {
			Issuer                string `json:"issuer"`
			IntrospectionEndpoint string `json:"introspection_endpoint"`
		}
		if _, err := FetchJSON(ctx, v.client, u, &meta); err != nil {
			errs = append(errs, err.Error())
			continue
		}
		// RFC 8414 §3.3: the metadata's issuer is exactly the one asked for.
		if meta.Issuer != v.cfg.Issuer {
			errs = append(errs, fmt.Sprintf("%s names issuer %q", u, clip(meta.Issuer)))
			continue
		}
		if pu, err := url.Parse(meta.IntrospectionEndpoint); err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" {
			errs = append(errs, fmt.Sprintf("%s has no http(s) introspection_endpoint", u))
			continue
		}
		v.endpoint = meta.IntrospectionEndpoint
		return v.endpoint, nil
	}
	v.lastErr = fmt.Errorf("%w: discovery of IDP %s's introspection_endpoint: %s", ErrUnavailable, v.cfg.Name, strings.Join(errs, "; "))
	return "", v.lastErr
}

// metadataURLs are where an issuer's metadata may be: RFC 8414 §3's
// well-known URI (inserted before the issuer's path), then OpenID Connect
// Discovery 1.0 §4's (appended to it).
func metadataURLs(issuer string) []string {
	oidc := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	u, err := url.Parse(issuer)
	if err != nil {
		return []string{oidc}
	}
	path := strings.TrimSuffix(u.Path, "/")
	u.Path = "/.well-known/oauth-authorization-server" + path
	u.RawPath = ""
	return []string{u.String(), oidc}
}
