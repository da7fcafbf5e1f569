package idp

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"

	"github.com/idtx/idtx/internal/fetch"
)

// KeySet finds the key that verifies a token. Keys come from configuration
// only: a token's kid is a map key into its IDP's set, nothing more.
type KeySet interface {
	Key(ctx context.Context, t *jwt.Token) (any, error)
}

// Remote key set behaviour (docs/security.md, "The server around it").
const (
	// RefreshInterval is how often a remote JWKS is fetched again, and the
	// least time between two fetches caused by an unknown kid.
	RefreshInterval = 5 * time.Minute
	// FetchTimeout bounds one fetch of a JWKS or of IDP metadata.
	FetchTimeout = fetch.Timeout
	// maxDocument caps a fetched JWKS or metadata document.
	maxDocument = fetch.MaxBytes
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
	return remoteKeys(ctx, url, client, nil)
}

// remoteKeys is RemoteKeys that reports each fetch to report (if not nil):
// nil for keys fetched and stored, the error of a fetch that failed.
func remoteKeys(ctx context.Context, url string, client *http.Client, report func(error)) (KeySet, error) {
	if report == nil {
		report = func(error) {}
	}
	tr := &trackingTransport{next: client.Transport, report: report}
	if tr.next == nil {
		tr.next = http.DefaultTransport
	}
	hc := *client
	hc.Transport = tr
	held := &heldKeys{Storage: jwkset.NewMemoryStorage(), report: report}
	cached, err := jwkset.NewStorageFromHTTP(url, jwkset.HTTPClientStorageOptions{
		Client:                    &hc,
		Ctx:                       ctx,
		HTTPTimeout:               FetchTimeout,
		NoErrorReturnFirstHTTPReq: true, // an IDP down at start is retried, not fatal
		RefreshInterval:           RefreshInterval,
		Storage:                   held,
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
	return &kfKeys{kf: kf, down: tr.down.Load, held: held, refresh: func(ctx context.Context, kid string) error {
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
	report func(error) // nil: nobody hears of fetches

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
		d.lastErr = fmt.Errorf("%w: discovery at %s: %w", ErrUnavailable, url, err)
		if d.report != nil {
			d.report(d.lastErr)
		}
		return nil, d.lastErr
	}
	// OpenID Connect Discovery §4.3: the issuer in the document must be
	// exactly the one it was fetched for.
	if meta.Issuer != d.issuer || meta.JWKSURI == "" {
		d.lastErr = fmt.Errorf("%w: discovery at %s names issuer %q and jwks_uri %q", ErrUnavailable, url, clip(meta.Issuer), clip(meta.JWKSURI))
		return nil, d.lastErr
	}
	keys, err := remoteKeys(d.ctx, meta.JWKSURI, d.client, d.report)
	if err != nil {
		d.lastErr = fmt.Errorf("%w: %w", ErrUnavailable, err)
		return nil, d.lastErr
	}
	d.keys = keys
	return keys, nil
}

// FetchJSON GETs a JSON document of bounded size (metadata, a JWKS),
// within FetchTimeout. The status is 0 when no answer came at all.
func FetchJSON(ctx context.Context, client *http.Client, url string, v any) (int, error) {
	return fetch.JSON(ctx, client, url, v)
}

// Generation grows each time the discovered key set changes; 0 until it
// is found.
func (d *discovered) Generation() uint64 {
	d.mu.Lock()
	keys := d.keys
	d.mu.Unlock()
	if g, ok := keys.(generations); ok {
		return g.Generation()
	}
	return 0
}

// Ready says whether the discovered key set has been fetched. It runs the
// discovery if no token has needed it yet (at most once per
// RefreshInterval while the IDP is down), so that a replica that has had
// no traffic can become ready.
func (d *discovered) Ready() error {
	keys, err := d.resolve()
	if err != nil {
		return err
	}
	return keys.(readiness).Ready()
}

// kfKeys adapts keyfunc, which binds a key to its JWK alg, and refuses
// weak keys it returns.
type kfKeys struct {
	kf      keyfunc.Keyfunc
	down    func() bool                                 // whether the last fetch failed
	refresh func(ctx context.Context, kid string) error // fetch again for an unknown kid, if allowed
	held    *heldKeys                                   // a remote set's keys; nil for a static set
}

// Generation grows each time a fetch brings keys other than those held;
// a static set stays at 0.
func (k *kfKeys) Generation() uint64 {
	if k.held == nil {
		return 0
	}
	return k.held.gen.Load()
}

// Ready says whether the key set has keys to verify with: a static set
// always, a remote one once a fetch has succeeded (it keeps them while
// the IDP is down).
func (k *kfKeys) Ready() error {
	if k.held == nil || k.held.fetched.Load() {
		return nil
	}
	return fmt.Errorf("%w: key set not fetched yet", ErrUnavailable)
}

// heldKeys is the storage of a remote key set. jwkset replaces its keys
// after each fetch that succeeds (never after one that fails, so keys stay
// in use while the IDP is down); heldKeys counts the replacements that
// change the keys, so that identities verified with the old ones are not
// reused (the validation cache compares generations).
type heldKeys struct {
	jwkset.Storage
	report  func(error)
	fetched atomic.Bool
	gen     atomic.Uint64

	mu          sync.Mutex
	fingerprint [32]byte
}

func (h *heldKeys) KeyReplaceAll(ctx context.Context, given []jwkset.JWK) error {
	if err := h.Storage.KeyReplaceAll(ctx, given); err != nil {
		return err
	}
	sum := fingerprint(given)
	h.mu.Lock()
	if sum != h.fingerprint || !h.fetched.Load() {
		h.fingerprint = sum
		h.gen.Add(1)
	}
	h.mu.Unlock()
	h.fetched.Store(true)
	h.report(nil)
	return nil
}

// fingerprint is a digest of a key set as published (public keys with
// their kid and alg), in any order.
func fingerprint(keys []jwkset.JWK) [32]byte {
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		b, _ := json.Marshal(k.Marshal())
		parts = append(parts, string(b))
	}
	slices.Sort(parts)
	return sha256.Sum256([]byte(strings.Join(parts, "\n")))
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
	next   http.RoundTripper
	down   atomic.Bool
	report func(error) // hears of failed fetches
}

func (t *trackingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		t.down.Store(true)
		t.report(err)
		return nil, err
	}
	t.down.Store(resp.StatusCode >= 500)
	if resp.StatusCode != http.StatusOK {
		t.report(fmt.Errorf("%s: status %s", req.URL, resp.Status))
	}
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.LimitReader(resp.Body, maxDocument), resp.Body}
	return resp, nil
}
