package idp

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/oauth"
)

// MinRSABits is the smallest RSA modulus accepted from any key set
// (RFC 7518 §3.3 requires 2048).
const MinRSABits = 2048

// JWT validates JWTs from one IDP (RFC 7519, RFC 8725, RFC 9068).
type JWT struct {
	name      string
	issuer    string
	audiences []string
	algs      []string
	skew      time.Duration
	now       func() time.Time
	keys      KeySet
	parser    *jwt.Parser
	atTyps    []string // accepted typ of access tokens, normalized
	claims    ClaimMap
}

// JWTConfig configures a JWT validator.
type JWTConfig struct {
	Name       string
	Issuer     string
	Audiences  []string // aud must contain one of these
	Algorithms []string // the allow-list; never none or HS*
	ClockSkew  time.Duration
	Clock      func() time.Time
	Keys       KeySet
	// AccessTokenTyp narrows the typ accepted from a token presented as
	// access_token (at+jwt, JWT, "" for none); empty accepts all three.
	AccessTokenTyp []string
	// Claims maps canonical claim names to where this IDP keeps them.
	Claims ClaimMap
}

// defaultAccessTokenTyps are accepted from an access_token when the IDP
// names none: RFC 9068's at+jwt, JWT, and no typ at all.
var defaultAccessTokenTyps = []string{"at+jwt", "jwt", ""}

// NewJWT returns a validator for cfg.
func NewJWT(cfg JWTConfig) (*JWT, error) {
	for _, a := range cfg.Algorithms {
		if strings.EqualFold(a, "none") || strings.HasPrefix(strings.ToUpper(a), "HS") {
			return nil, fmt.Errorf("idp %s: algorithm %s is never accepted from an IDP", cfg.Name, a)
		}
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	v := &JWT{
		name: cfg.Name, issuer: cfg.Issuer, audiences: cfg.Audiences, algs: cfg.Algorithms,
		skew: cfg.ClockSkew, now: cfg.Clock, keys: cfg.Keys, claims: cfg.Claims,
		atTyps: defaultAccessTokenTyps,
	}
	if len(cfg.AccessTokenTyp) > 0 {
		v.atTyps = nil
		for _, t := range cfg.AccessTokenTyp {
			v.atTyps = append(v.atTyps, config.NormalizeTyp(t))
		}
	}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods(cfg.Algorithms),
		jwt.WithStrictDecoding(),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.ClockSkew),
		jwt.WithTimeFunc(cfg.Clock),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audiences...),
	)
	return v, nil
}

// Validate checks a compact JWT presented as tokenType.
func (v *JWT) Validate(ctx context.Context, token, tokenType string) (*Identity, error) {
	p, err := peekJWT(token, tokenType)
	if err != nil {
		return nil, err
	}
	if p.iss != v.issuer {
		return nil, fmt.Errorf("%w: iss %q is not %q", ErrUntrusted, clip(p.iss), v.issuer)
	}
	return v.validate(ctx, p)
}

func (v *JWT) validate(ctx context.Context, p *peeked) (*Identity, error) {
	if !slices.Contains(v.algs, p.alg) {
		return nil, fmt.Errorf("%w: alg %q is not allowed for IDP %s (allowed: %s)", ErrInvalid, clip(p.alg), v.name, strings.Join(v.algs, " "))
	}
	if p.ttype == oauth.TokenTypeAccessToken && !slices.Contains(v.atTyps, config.NormalizeTyp(p.typ)) {
		return nil, fmt.Errorf("%w: typ %q is not one of IDP %s's access_token_typ [%s] for subject_token_type access_token (RFC 9068 §2.1)",
			ErrInvalid, clip(p.typ), v.name, typList(v.atTyps))
	}
	var keyErr error
	var kid string
	claims := jwt.MapClaims{}
	_, err := v.parser.ParseWithClaims(p.raw, claims, func(t *jwt.Token) (any, error) {
		kid, _ = t.Header["kid"].(string)
		key, err := v.keys.Key(ctx, t)
		keyErr = err
		return key, err
	})
	if err != nil {
		return nil, v.explain(err, keyErr, claims)
	}
	exp, _ := claims.GetExpirationTime()
	now := v.now()
	// golang-jwt applies the leeway to exp too; an STS must not extend a
	// token's life, so exp is held to the clock exactly.
	if !exp.After(now) {
		return nil, fmt.Errorf("%w: expired at %s (now %s)", ErrInvalid, exp.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	sub, _ := claims["sub"].(string)
	if sub == "" {
		return nil, fmt.Errorf("%w: token has no sub claim", ErrInvalid)
	}
	id := &Identity{
		IDP: v.name, Issuer: v.issuer, Subject: sub, Claims: claims, Expiry: exp.Time,
		KeyID: kid, Algorithm: p.alg, Skew: v.skew, Route: v.Route(),
	}
	id.MayAct, _ = claims["may_act"].(map[string]any)
	id.Act, _ = claims["act"].(map[string]any)
	id.Scopes = v.claims.identityClaims(claims)
	return id, nil
}

// typList shows normalized typ values as a config would name them.
func typList(typs []string) string {
	out := make([]string, len(typs))
	for i, t := range typs {
		switch t {
		case "":
			out[i] = `""`
		case "jwt":
			out[i] = "JWT"
		default:
			out[i] = t
		}
	}
	return strings.Join(out, " ")
}

// explain turns a golang-jwt error into a reason a developer can act on.
func (v *JWT) explain(err, keyErr error, claims jwt.MapClaims) error {
	now := v.now().UTC().Format(time.RFC3339)
	switch {
	case keyErr != nil && errors.Is(keyErr, ErrUnavailable):
		return keyErr
	case keyErr != nil:
		return fmt.Errorf("%w: no usable key: %w", ErrInvalid, keyErr)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		for _, c := range []string{"exp", "aud"} {
			if _, ok := claims[c]; !ok {
				return fmt.Errorf("%w: %s is required", ErrInvalid, c)
			}
		}
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	case errors.Is(err, jwt.ErrTokenExpired):
		exp, _ := claims.GetExpirationTime()
		return fmt.Errorf("%w: expired at %s (now %s)", ErrInvalid, exp.UTC().Format(time.RFC3339), now)
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		nbf, _ := claims.GetNotBefore()
		return fmt.Errorf("%w: not valid before %s (now %s)", ErrInvalid, nbf.UTC().Format(time.RFC3339), now)
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		iat, _ := claims.GetIssuedAt()
		return fmt.Errorf("%w: issued in the future at %s (now %s)", ErrInvalid, iat.UTC().Format(time.RFC3339), now)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		aud, _ := claims.GetAudience()
		return fmt.Errorf("%w: aud %q contains none of IDP %s's audiences %q", ErrInvalid, clipAll(aud), v.name, v.audiences)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return fmt.Errorf("%w: signature does not verify with IDP %s's key", ErrInvalid, v.name)
	case errors.Is(err, jwt.ErrTokenMalformed):
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		return fmt.Errorf("%w: claims: %w", ErrInvalid, err)
	}
	return fmt.Errorf("%w: %w", ErrInvalid, err)
}

func clipAll(ss []string) []string {
	out := make([]string, 0, min(len(ss), 5))
	for i, s := range ss {
		if i == 5 {
			break
		}
		out = append(out, clip(s))
	}
	return out
}

// scopesOf reads scope (RFC 8693 §4.2, space-separated) or scp (a list,
// as Okta and Azure AD write it).
func scopesOf(claims map[string]any) []string {
	if s, ok := claims["scope"].(string); ok {
		return strings.Fields(s)
	}
	switch scp := claims["scp"].(type) {
	case string:
		return strings.Fields(scp)
	case []any:
		out := make([]string, 0, len(scp))
		for _, x := range scp {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// checkKey refuses keys too weak to trust (RFC 7518 §3.3).
func checkKey(key any) error {
	if k, ok := key.(*rsa.PublicKey); ok && k.N.BitLen() < MinRSABits {
		return fmt.Errorf("RSA key of %d bits is under %d", k.N.BitLen(), MinRSABits)
	}
	return nil
}
