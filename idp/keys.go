package idp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// KeySet finds the key that verifies a token. Keys come from configuration
// only: a token's kid is a map key into its IDP's set, nothing more.
type KeySet interface {
	Key(ctx context.Context, t *jwt.Token) (any, error)
}

// Remote key set behaviour (SECURITY.md, "The server around it").
const (
	// RefreshInterval is how often a remote JWKS is fetched again, and the
	// least time between two fetches caused by an unknown kid.
	RefreshInterval = 5 * time.Minute
	// FetchTimeout bounds one fetch of a JWKS or of IDP metadata.
	FetchTimeout = 10 * time.Second
	// maxDocument caps a fetched JWKS or metadata document.
	maxDocument = 1 << 20
)

// StaticKeys returns the key set of a JWKS document (RFC 7517 §5).
func StaticKeys(jwks []byte) (KeySet, error) {
	kf, err := keyfunc.NewJWKSetJSON(jwks)
	if err != nil {
		return nil, fmt.Errorf("parse JWKS: %w", err)
	}
	return &kfKeys{kf: kf}, nil
}

// RemoteKeys returns the key set served at url: fetched now, refreshed
// every RefreshInterval and on an unknown kid at most once per interval.
// While the IDP is down its cached keys stay in use. ctx ends the refresh.
func RemoteKeys(ctx context.Context, url string, client *http.Client) (KeySet, error) {
	tr := &trackingTransport{next: client.Transport}
	if tr.next == nil {
		tr.next = http.DefaultTransport
	}
	hc := *client
	hc.Transport = tr
	cached, err := jwkset.NewStorageFromHTTP(url, jwkset.HTTPClientStorageOptions{
		Client:                    &hc,
		Ctx:                       ctx,
		HTTPTimeout:               FetchTimeout,
		NoErrorReturnFirstHTTPReq: true, // an IDP down at start is retried, not fatal
		RefreshInterval:           RefreshInterval,
	})
	if err != nil {
		return nil, err
	}
	// jwkset's client refreshes on every unknown kid it is asked for; the
	// limiter below decides when it is asked, without ever waiting.
	// (jwkset's own RateLimitWaitMax would also cut the fetch short.)
	refresher, err := jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		HTTPURLs:          map[string]jwkset.Storage{url: cached},
		RefreshUnknownKID: rate.NewLimiter(rate.Inf, 1),
	})
	if err != nil {
		return nil, err
	}
	kf, err := keyfunc.New(keyfunc.Options{Ctx: ctx, Storage: cached})
	if err != nil {
		return nil, err
	}
	limit := rate.NewLimiter(rate.Every(RefreshInterval), 1)
	return &kfKeys{kf: kf, down: tr.down.Load, refresh: func(ctx context.Context, kid string) error {
		if !limit.Allow() {
			return errors.New("refreshed less than " + RefreshInterval.String() + " ago")
		}
		_, err := refresher.KeyRead(ctx, kid)
		return err
	}}, nil
}

// DiscoveredKeys finds the IDP's jwks_uri in its OpenID Connect discovery
// document (OpenID Connect Discovery 1.0 §4), on first use, and retries a
// failed discovery at most once per RefreshInterval.
func DiscoveredKeys(ctx context.Context, issuer string, client *http.Client) KeySet {
	return &discovered{ctx: ctx, issuer: issuer, client: client}
}

type discovered struct {
	ctx    context.Context
	issuer string
	client *http.Client

	mu      sync.Mutex
	keys    KeySet
	lastTry time.Time
	lastErr error
}

func (d *discovered) Key(ctx context.Context, t *jwt.Token) (any, error) {
	keys, err := d.resolve()
	if err != nil {
		return nil, err
	}
	return keys.Key(ctx, t)
}

func (d *discovered) resolve() (KeySet, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.keys != nil {
		return d.keys, nil
	}
	if !d.lastTry.IsZero() && time.Since(d.lastTry) < RefreshInterval {
		return nil, d.lastErr
	}
	d.lastTry = time.Now()
	var meta struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	url := strings.TrimSuffix(d.issuer, "/") + "/.well-known/openid-configuration"
	if _, err := FetchJSON(d.ctx, d.client, url, &meta); err != nil {
		d.lastErr = fmt.Errorf("%w: discovery at %s: %v", ErrUnavailable, url, err)
		return nil, d.lastErr
	}
	// OpenID Connect Discovery §4.3: the issuer in the document must be
	// exactly the one it was fetched for.
	if meta.Issuer != d.issuer || meta.JWKSURI == "" {
		d.lastErr = fmt.Errorf("%w: discovery at %s names issuer %q and jwks_uri %q", ErrUnavailable, url, clip(meta.Issuer), clip(meta.JWKSURI))
		return nil, d.lastErr
	}
	keys, err := RemoteKeys(d.ctx, meta.JWKSURI, d.client)
	if err != nil {
		d.lastErr = fmt.Errorf("%w: %v", ErrUnavailable, err)
		return nil, d.lastErr
	}
	d.keys = keys
	return keys, nil
}

// FetchJSON GETs a JSON document of bounded size (metadata, a JWKS),
// within FetchTimeout. The status is 0 when no answer came at all.
func FetchJSON(ctx context.Context, client *http.Client, url string, v any) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, FetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, fmt.Errorf("%s: status %s", url, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxDocument)).Decode(v); err != nil {
		return resp.StatusCode, fmt.Errorf("%s: not a JSON document", url)
	}
	return resp.StatusCode, nil
}

// kfKeys adapts keyfunc, which binds a key to its JWK alg, and refuses
// weak keys it returns.
type kfKeys struct {
	kf      keyfunc.Keyfunc
	down    func() bool                                 // whether the last fetch failed
	refresh func(ctx context.Context, kid string) error // fetch again for an unknown kid, if allowed
}

func (k *kfKeys) Key(ctx context.Context, t *jwt.Token) (any, error) {
	if kid, ok := t.Header["kid"].(string); ok {
		// Look the kid up first, so that an unknown kid is told apart
		// from a key that does not fit; a remote set may fetch again.
		_, err := k.kf.Storage().KeyRead(ctx, kid)
		if err != nil && k.refresh != nil {
			if rerr := k.refresh(ctx, kid); rerr == nil {
				_, err = k.kf.Storage().KeyRead(ctx, kid)
			}
		}
		if err != nil {
			if k.down != nil && k.down() {
				return nil, fmt.Errorf("%w: key set unreachable and kid not cached", ErrUnavailable)
			}
			return nil, fmt.Errorf("kid %q is not in the IDP's key set", clip(kid))
		}
	}
	key, err := k.kf.KeyfuncCtx(ctx)(t)
	if err != nil {
		return nil, err
	}
	if set, ok := key.(jwt.VerificationKeySet); ok { // no kid: any strong key
		strong := set.Keys[:0:0]
		for _, k := range set.Keys {
			if checkKey(k) == nil {
				strong = append(strong, k)
			}
		}
		if len(strong) == 0 {
			return nil, fmt.Errorf("no key of sufficient strength in the IDP's key set")
		}
		return jwt.VerificationKeySet{Keys: strong}, nil
	}
	if err := checkKey(key); err != nil {
		return nil, err
	}
	return key, nil
}

// trackingTransport records whether the last fetch reached the IDP, and
// caps what it reads.
type trackingTransport struct {
	next http.RoundTripper
	down atomic.Bool
}

func (t *trackingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		t.down.Store(true)
		return nil, err
	}
	t.down.Store(resp.StatusCode >= 500)
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.LimitReader(resp.Body, maxDocument), resp.Body}
	return resp, nil
}
