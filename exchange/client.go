package exchange

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/idp"
)

// Client is a configured OAuth client, ready to authenticate.
type Client struct {
	ID          string
	secretSum   []byte // SHA-256 of a plain secret, compared in constant time
	secretHash  string // bcrypt or argon2id
	keys        idp.KeySet
	allServices bool
	services    map[string]bool
	modes       []string
	serves      map[string]bool // service names (clients[].serves)

	// verified caches the SHA-256 of the last secret that matched
	// secretHash, so a slow hash is paid once, not per request.
	verified sync.Map
}

func newClient(c *config.Client, readFile func(string) ([]byte, error)) (*Client, error) {
	cl := &Client{ID: c.ID, secretHash: c.SecretHash, services: map[string]bool{}, modes: c.Modes}
	if c.Secret != "" {
		sum := sha256.Sum256([]byte(c.Secret))
		cl.secretSum = sum[:]
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

// checkSecret compares secret with the configured one in constant time.
func (c *Client) checkSecret(secret string) bool {
	sum := sha256.Sum256([]byte(secret))
	switch {
	case c.secretSum != nil:
		return subtle.ConstantTimeCompare(sum[:], c.secretSum) == 1
	case c.secretHash != "":
		if _, ok := c.verified.Load(sum); ok {
			return true
		}
		if !verifyHash(c.secretHash, secret) {
			return false
		}
		c.verified.Store(sum, struct{}{})
		return true
	}
	return false
}

// verifyHash checks secret against a bcrypt or PHC argon2id hash.
func verifyHash(hash, secret string) bool {
	if strings.HasPrefix(hash, "$argon2id$") {
		return verifyArgon2id(hash, secret)
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(secret)) == nil
}

// Limits on a private_key_jwt client assertion (RFC 7523 §3).
const (
	maxAssertionLifetime = 5 * time.Minute
	assertionLeeway      = 30 * time.Second
)

var assertionAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// authenticate identifies the client by exactly one method (RFC 6749
// §2.3: a client MUST NOT use more than one).
func (e *Engine) authenticate(ctx context.Context, req *Request, now time.Time) (*Client, string, *Error) {
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
		return nil, "", ErrInvalidRequest("more than one client authentication method used (RFC 6749 §2.3)")
	case n == 0 && formID != "":
		return nil, "", ErrInvalidClient("client %q sent no credentials; public clients may not exchange tokens", clipText(formID))
	case n == 0:
		return nil, "", ErrInvalidClient("client authentication is required")
	}

	if req.Basic != nil {
		c, err := e.checkSecretAuth(req.Basic.ID, req.Basic.Secret, formID, AuthClientSecretBasic)
		if err != nil {
			err.BasicChallenge = true
		}
		return c, AuthClientSecretBasic, err
	}
	if formSecret != "" {
		c, err := e.checkSecretAuth(formID, formSecret, formID, AuthClientSecretPost)
		return c, AuthClientSecretPost, err
	}
	if assertionType != ClientAssertionTypeJWTBearer {
		return nil, "", ErrInvalidClient("client_assertion_type must be %s", ClientAssertionTypeJWTBearer)
	}
	c, err := e.checkAssertion(ctx, assertion, formID, now)
	return c, AuthPrivateKeyJWT, err
}

func (e *Engine) checkSecretAuth(id, secret, formID, method string) (*Client, *Error) {
	if formID != "" && formID != id {
		return nil, ErrInvalidRequest("client_id %q does not match the authenticated client", clipText(formID))
	}
	c, ok := e.clients[id]
	if !ok || !c.checkSecret(secret) {
		return nil, ErrInvalidClient("client authentication failed (%s): unknown client or wrong secret", method)
	}
	return c, nil
}

// checkAssertion verifies a private_key_jwt client assertion (RFC 7523
// §3): iss and sub are the client id, aud names this STS, exp is required
// and near, and a jti is accepted once until its exp.
func (e *Engine) checkAssertion(ctx context.Context, assertion, formID string, now time.Time) (*Client, *Error) {
	if assertion == "" {
		return nil, ErrInvalidClient("client_assertion is missing")
	}
	if err := idp.Precheck(assertion); err != nil {
		return nil, ErrInvalidClient("client_assertion: %v", err)
	}
	var claims jwt.RegisteredClaims
	// The client is named by the unverified iss only to find its keys;
	// the signature then proves it.
	if _, _, err := jwt.NewParser().ParseUnverified(assertion, &claims); err != nil {
		return nil, ErrInvalidClient("client_assertion is not a JWT")
	}
	id := claims.Issuer
	if formID != "" && formID != id {
		return nil, ErrInvalidClient("client_id %q does not match the assertion's iss", clipText(formID))
	}
	c, ok := e.clients[id]
	if !ok || c.keys == nil {
		return nil, ErrInvalidClient("client authentication failed (private_key_jwt): unknown client or no registered keys")
	}
	claims = jwt.RegisteredClaims{}
	_, err := jwt.ParseWithClaims(assertion, &claims, func(t *jwt.Token) (any, error) { return c.keys.Key(ctx, t) },
		jwt.WithValidMethods(assertionAlgs),
		jwt.WithStrictDecoding(),
		jwt.WithExpirationRequired(),
		jwt.WithIssuer(id),
		jwt.WithSubject(id),
		jwt.WithAudience(e.TokenEndpoint(), e.issuer),
		jwt.WithLeeway(assertionLeeway),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	if err != nil {
		reason := err.Error()
		if errors.Is(err, jwt.ErrTokenInvalidAudience) {
			reason = fmt.Sprintf("aud must name %s or %s", e.TokenEndpoint(), e.issuer)
		}
		return nil, ErrInvalidClient("client_assertion: %s", reason)
	}
	if claims.ExpiresAt.Sub(now) > maxAssertionLifetime {
		return nil, ErrInvalidClient("client_assertion: exp is more than %s ahead", maxAssertionLifetime)
	}
	if claims.ID == "" {
		return nil, ErrInvalidClient("client_assertion: jti is required")
	}
	if !e.replay.add(id+"\x00"+claims.ID, claims.ExpiresAt.Add(assertionLeeway), now) {
		return nil, ErrInvalidClient("client_assertion: jti %q was already used", clipText(claims.ID))
	}
	return c, nil
}

// replayCache remembers client assertion jti values until they expire.
type replayCache struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

// maxReplayEntries bounds memory; past it, new assertions are refused
// rather than old ones forgotten early.
const maxReplayEntries = 100_000

func newReplayCache() *replayCache { return &replayCache{seen: map[string]time.Time{}} }

// add records key until exp and reports whether it was new.
func (r *replayCache) add(key string, exp, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if until, ok := r.seen[key]; ok && until.After(now) {
		return false
	}
	if len(r.seen) >= maxReplayEntries {
		for k, until := range r.seen {
			if !until.After(now) {
				delete(r.seen, k)
			}
		}
		if len(r.seen) >= maxReplayEntries {
			return false
		}
	}
	r.seen[key] = exp
	return true
}

// Service is a configured downstream service.
type Service struct {
	*config.Service
}

func newService(s *config.Service) *Service { return &Service{Service: s} }

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
