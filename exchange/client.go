package exchange

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/idp"
	"github.com/idtx/idtx/oauth"
	"github.com/idtx/idtx/secret"
	"github.com/idtx/idtx/store"
)

// Client is a configured OAuth client, ready to authenticate.
type Client struct {
	ID          string
	secretSum   []byte         // SHA-256 of a plain secret, compared in constant time
	secretHash  *secret.Params // bcrypt or argon2id
	keys        idp.KeySet
	allServices bool
	services    map[string]bool
	modes       []string
	serves      map[string]bool // service names (clients[].serves)

	// verified remembers secrets that matched secretHash for a while, so
	// that a legitimate client pays the slow hash once, not per request.
	verified verifiedSecrets
}

func newClient(c *config.Client, readFile func(string) ([]byte, error)) (*Client, error) {
	cl := &Client{ID: c.ID, services: map[string]bool{}, modes: c.Modes}
	if c.Secret != "" {
		sum := sha256.Sum256([]byte(c.Secret))
		cl.secretSum = sum[:]
	}
	if c.SecretHash != "" {
		h, err := secret.ParseHash(c.SecretHash)
		if err != nil {
			return nil, fmt.Errorf("client %s: secret_hash: %w", c.ID, err)
		}
		cl.secretHash = h
	}
	if c.JWKSFile != "" {
		raw, err := readFile(c.JWKSFile)
		if err != nil {
			return nil, fmt.Errorf("client %s: %w", c.ID, err)
		}
		if cl.keys, err = idp.StaticKeys(raw); err != nil {
			return nil, fmt.Errorf("client %s: %w", c.ID, err)
		}
	}
	if len(c.Serves) > 0 {
		cl.serves = make(map[string]bool, len(c.Serves))
		for _, s := range c.Serves {
			cl.serves[s] = true
		}
	}
	for _, s := range c.Services {
		if s == "*" {
			cl.allServices = true
		}
		cl.services[s] = true
	}
	return cl, nil
}

// MayUse reports whether the client may exchange for service.
func (c *Client) MayUse(service string) bool { return c.allServices || c.services[service] }

// How long, and how many, verified secrets a hashed client keeps.
const (
	verifiedTTL = 5 * time.Minute
	maxVerified = 4 // a client has one secret, two while rotating it
)

// verifiedSecrets maps the SHA-256 of a secret that matched the client's
// hash to when that stops counting, on the engine's clock. Only matches
// are kept, so a flood of wrong secrets cannot grow it.
type verifiedSecrets struct {
	mu    sync.Mutex
	until map[[32]byte]time.Time
}

func (v *verifiedSecrets) has(sum [32]byte, now time.Time) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	until, ok := v.until[sum]
	if ok && !until.After(now) {
		delete(v.until, sum)
		return false
	}
	return ok
}

func (v *verifiedSecrets) add(sum [32]byte, now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.until == nil {
		v.until = map[[32]byte]time.Time{}
	}
	if _, ok := v.until[sum]; !ok && len(v.until) >= maxVerified { // forget the one that expires first
		var oldest [32]byte
		var first time.Time
		for k, u := range v.until {
			if first.IsZero() || u.Before(first) {
				oldest, first = k, u
			}
		}
		delete(v.until, oldest)
	}
	v.until[sum] = now.Add(verifiedTTL)
}

// checkSecret compares plain with the client's secret: a plain secret in
// constant time; a hashed one from the verified cache or through the
// engine's bounded pool, which may answer secret.ErrBusy.
func (e *Engine) checkSecret(ctx context.Context, c *Client, plain string, now time.Time) (bool, error) {
	sum := sha256.Sum256([]byte(plain))
	switch {
	case c.secretSum != nil:
		return subtle.ConstantTimeCompare(sum[:], c.secretSum) == 1, nil
	case c.secretHash != nil:
		if c.verified.has(sum, now) {
			return true, nil
		}
		ok, err := e.pool.Verify(ctx, c.secretHash, plain)
		if ok {
			c.verified.add(sum, now)
		}
		return ok, err
	}
	return false, nil
}

// Limits on a private_key_jwt client assertion (RFC 7523 §3).
const (
	maxAssertionLifetime = 5 * time.Minute
	assertionLeeway      = 30 * time.Second
	maxJTIBytes          = 256
)

var assertionAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// authenticate identifies the client by exactly one method (RFC 6749
// §2.3: a client MUST NOT use more than one). It also returns the client
// id that was tried, for the audit line of a failure.
func (e *Engine) authenticate(ctx context.Context, req *Request, now time.Time) (c *Client, method, tried string, err *oauth.Error) {
	form := req.Form
	formID, formSecret := form.Get("client_id"), form.Get("client_secret")
	assertion, assertionType := form.Get("client_assertion"), form.Get("client_assertion_type")
	n := 0
	for _, used := range []bool{req.Basic != nil, formSecret != "", assertion != "" || assertionType != ""} {
		if used {
			n++
		}
	}
	switch {
	case n > 1:
		return nil, "", formID, oauth.ErrInvalidRequest("more than one client authentication method used (RFC 6749 §2.3)")
	case n == 0 && formID != "":
		return nil, "", formID, oauth.ErrInvalidClient("client %q sent no credentials; public clients may not exchange tokens", clipText(formID))
	case n == 0:
		return nil, "", "", oauth.ErrInvalidClient("client authentication is required")
	}

	if req.Basic != nil {
		c, err := e.checkSecretAuth(ctx, req.Basic.ID, req.Basic.Secret, formID, oauth.AuthClientSecretBasic, now)
		if err != nil && err.Status == http.StatusUnauthorized {
			err.BasicChallenge = true
		}
		return c, oauth.AuthClientSecretBasic, req.Basic.ID, err
	}
	if formSecret != "" {
		c, err := e.checkSecretAuth(ctx, formID, formSecret, formID, oauth.AuthClientSecretPost, now)
		return c, oauth.AuthClientSecretPost, formID, err
	}
	if assertionType != oauth.ClientAssertionTypeJWTBearer {
		return nil, "", formID, oauth.ErrInvalidClient("client_assertion_type must be %s", oauth.ClientAssertionTypeJWTBearer)
	}
	c, tried, err = e.checkAssertion(ctx, assertion, formID, now)
	return c, oauth.AuthPrivateKeyJWT, tried, err
}

func (e *Engine) checkSecretAuth(ctx context.Context, id, plain, formID, method string, now time.Time) (*Client, *oauth.Error) {
	if formID != "" && formID != id {
		return nil, oauth.ErrInvalidRequest("client_id %q does not match the authenticated client", clipText(formID))
	}
	c, known := e.clients[id]
	var ok bool
	var err error
	if known {
		ok, err = e.checkSecret(ctx, c, plain, now)
	} else if e.dummy != nil {
		// An unknown id pays what a hashed client pays, through the same
		// pool, so that response times do not list the client ids.
		_, err = e.pool.Verify(ctx, e.dummy, plain)
	}
	if err != nil {
		oerr := oauth.ErrTemporarilyUnavailable("client authentication (%s): every secret hash verifier is busy; retry in %s", method, e.pool.MaxWait())
		oerr.Cause, oerr.RetryAfter = err, e.pool.MaxWait()
		return nil, oerr
	}
	if !ok {
		return nil, oauth.ErrInvalidClient("client authentication failed (%s): unknown client or wrong secret", method)
	}
	return c, nil
}

// checkAssertion verifies a private_key_jwt client assertion (RFC 7523
// §3): iss and sub are the client id, aud names this STS and nothing
// else, exp is required and near, and a jti is accepted once until its
// exp. It returns the client id the assertion claims, for the audit line.
func (e *Engine) checkAssertion(ctx context.Context, assertion, formID string, now time.Time) (*Client, string, *oauth.Error) {
	if assertion == "" {
		return nil, formID, oauth.ErrInvalidClient("client_assertion is missing")
	}
	if err := idp.Precheck(assertion); err != nil {
		return nil, formID, oauth.ErrInvalidClient("client_assertion: %v", err)
	}
	var claims jwt.RegisteredClaims
	// The client is named by the unverified iss only to find its keys;
	// the signature then proves it.
	if _, _, err := jwt.NewParser().ParseUnverified(assertion, &claims); err != nil {
		return nil, formID, oauth.ErrInvalidClient("client_assertion is not a JWT")
	}
	id := claims.Issuer
	if formID != "" && formID != id {
		return nil, formID, oauth.ErrInvalidClient("client_id %q does not match the assertion's iss", clipText(formID))
	}
	c, ok := e.clients[id]
	if !ok || c.keys == nil {
		return nil, id, oauth.ErrInvalidClient("client authentication failed (private_key_jwt): unknown client or no registered keys")
	}
	claims = jwt.RegisteredClaims{}
	tok, err := jwt.ParseWithClaims(assertion, &claims, func(t *jwt.Token) (any, error) { return c.keys.Key(ctx, t) },
		jwt.WithValidMethods(assertionAlgs),
		jwt.WithStrictDecoding(),
		jwt.WithExpirationRequired(),
		jwt.WithIssuer(id),
		jwt.WithSubject(id),
		jwt.WithLeeway(assertionLeeway),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	if err != nil {
		return nil, id, oauth.ErrInvalidClient("client_assertion: %v", err)
	}
	if oerr := e.checkAssertionType(tok.Header["typ"], claims.Audience); oerr != nil {
		return nil, id, oerr
	}
	if claims.ExpiresAt.Sub(now) > maxAssertionLifetime {
		return nil, id, oauth.ErrInvalidClient("client_assertion: exp is more than %s ahead", maxAssertionLifetime)
	}
	if claims.ID == "" {
		return nil, id, oauth.ErrInvalidClient("client_assertion: jti is required")
	}
	if len(claims.ID) > maxJTIBytes {
		return nil, id, oauth.ErrInvalidClient("client_assertion: jti is longer than %d bytes", maxJTIBytes)
	}
	switch err := e.replay.Use(ctx, id, claims.ID, claims.ExpiresAt.Add(assertionLeeway)); {
	case err == nil:
	case errors.Is(err, store.ErrReplayed):
		return nil, id, oauth.ErrInvalidClient("client_assertion: jti %q was already used", clipText(claims.ID))
	case errors.Is(err, store.ErrReplayLimit):
		return nil, id, oauth.ErrInvalidClient("client_assertion: %v; use shorter-lived assertions", err)
	case errors.Is(err, store.ErrUnavailable):
		oerr := oauth.ErrTemporarilyUnavailable("client_assertion: the jti replay cache is unavailable; retry shortly")
		oerr.Cause = err
		return nil, id, oerr
	default:
		return nil, id, oauth.ErrServer(fmt.Errorf("replay cache: %w", err))
	}
	return c, id, nil
}

// typClientAuth is the explicit type of a client assertion
// (draft-ietf-oauth-rfc7523bis).
const typClientAuth = "client-authentication+jwt"

// checkAssertionType holds typ to JWT or client-authentication+jwt, and
// aud to one value that names this STS: the
// issuer identifier, or the token endpoint URL that clients such as
// oauth2c send (RFC 7523 §3). Another value beside it is refused: an
// assertion a client made for another server that also names this one
// must not work here (the audience injection that
// draft-ietf-oauth-rfc7523bis closes). An assertion typed
// client-authentication+jwt follows the draft and names the issuer alone.
// Introspection authenticates with this same check: the draft names the
// issuer identifier for every endpoint, so the introspection endpoint URL
// is not an accepted aud.
func (e *Engine) checkAssertionType(typ any, aud jwt.ClaimStrings) *oauth.Error {
	raw, _ := typ.(string)
	// RFC 7515 §4.1.9: the media type is case-insensitive and may omit
	// "application/".
	t := strings.TrimPrefix(strings.ToLower(raw), "application/")
	if t != "" && t != "jwt" && t != typClientAuth {
		// RFC 8725 §3.11: another kind of JWT (an access token, a
		// logout token) does not pass for a client assertion.
		return oauth.ErrInvalidClient("client_assertion: typ %q is not JWT or %s", clipText(raw), typClientAuth)
	}
	if len(aud) != 1 {
		return oauth.ErrInvalidClient("client_assertion: aud has %d values; it must be exactly one, %s or %s (audience injection, draft-ietf-oauth-rfc7523bis)",
			len(aud), e.issuer, e.TokenEndpoint())
	}
	switch {
	case t == typClientAuth && aud[0] != e.issuer:
		return oauth.ErrInvalidClient("client_assertion: typ %s requires aud to be the issuer %s alone, not %q (draft-ietf-oauth-rfc7523bis)",
			typClientAuth, e.issuer, clipText(aud[0]))
	case aud[0] != e.issuer && aud[0] != e.TokenEndpoint():
		return oauth.ErrInvalidClient("client_assertion: aud %q must be %s or %s (RFC 7523 §3)", clipText(aud[0]), e.issuer, e.TokenEndpoint())
	}
	return nil
}

// Service is a configured downstream service.
type Service struct {
	*config.Service
}

func newService(s *config.Service) *Service { return &Service{Service: s} }

// NeedConsent is those of the granted scopes for which the service asks
// a stored consent (scopes: {name: {consent: true}}), in the order given.
func (s *Service) NeedConsent(granted []string) []string {
	var need []string
	for _, sc := range granted {
		if def, ok := s.Scopes[sc]; ok && def.Consent {
			need = append(need, sc)
		}
	}
	return need
}

// offers reports whether the service has the scope.
func (s *Service) offers(scope string) bool {
	_, ok := s.Scopes[scope]
	return ok
}

// clipText shortens client-sent text before it is echoed in an error.
func clipText(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
