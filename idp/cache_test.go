package idp_test

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/golang-jwt/jwt/v5"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/idp"
	"github.com/idtx/idtx/mockidp"
	"github.com/idtx/idtx/oauth"
)

// countedKeys counts the keys asked for: one per signature verified.
type countedKeys struct {
	idp.KeySet
	n atomic.Int32
}

func (c *countedKeys) Key(ctx context.Context, t *jwt.Token) (any, error) {
	c.n.Add(1)
	return c.KeySet.Key(ctx, t)
}

// lookups counts cache hits and misses, and key fetches.
type lookups struct {
	mu                   sync.Mutex
	hits, misses         int
	fetched, fetchFailed map[string]int
}

func (l *lookups) CacheLookup(hit bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if hit {
		l.hits++
	} else {
		l.misses++
	}
}

func (l *lookups) KeyFetch(name string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fetched == nil {
		l.fetched, l.fetchFailed = map[string]int{}, map[string]int{}
	}
	if err != nil {
		l.fetchFailed[name]++
	} else {
		l.fetched[name]++
	}
}

func (l *lookups) counts() (hits, misses int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.hits, l.misses
}

// clock is a fake clock the test moves.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func cachedRegistry(t *testing.T, size int, clk *clock, keys idp.KeySet, m idp.Metrics, mod ...func(*idp.JWTConfig)) *idp.Registry {
	t.Helper()
	cfg := idp.JWTConfig{
		Name: "corp", Issuer: "https://idp.test", Audiences: []string{"sts"}, Algorithms: []string{"RS256"},
		ClockSkew: 30 * time.Second, Clock: clk.now, Keys: keys,
	}
	for _, f := range mod {
		f(&cfg)
	}
	v, err := idp.NewJWT(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := idp.NewRegistry().WithCache(size, clk.now, m)
	if err := r.Add(v); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestCacheHitSkipsVerification(t *testing.T) {
	s := newSigner(t)
	static, err := idp.StaticKeys(s.jwks)
	if err != nil {
		t.Fatal(err)
	}
	keys := &countedKeys{KeySet: static}
	m := &lookups{}
	clk := &clock{t: now}
	r := cachedRegistry(t, 10, clk, keys, m)
	tok := s.sign(t, jwt.MapClaims{"iss": "https://idp.test", "sub": "alice", "aud": "sts",
		"exp": now.Add(time.Hour).Unix(), "scope": "a b", "may_act": map[string]any{"sub": "svc"}})
	for i := range 3 {
		id, err := r.Validate(t.Context(), tok, oauth.TokenTypeJWT)
		if err != nil {
			t.Fatal(err)
		}
		if id.Subject != "alice" || id.Claims["scope"] != "a b" || len(id.Scopes) != 2 || id.MayAct["sub"] != "svc" {
			t.Fatalf("use %d: identity %+v", i, id)
		}
		// A caller that changes its copy changes nobody else's.
		id.Claims["sub"], id.Claims["scope"] = "mallory", "admin"
		id.Scopes[0] = "admin"
		clk.set(now.Add(time.Duration(i+1) * time.Minute))
	}
	if n := keys.n.Load(); n != 1 {
		t.Fatalf("signatures verified = %d, want 1 (then cache hits)", n)
	}
	if hits, misses := m.counts(); hits != 2 || misses != 1 {
		t.Fatalf("hits, misses = %d, %d; want 2, 1", hits, misses)
	}
}

// A cached identity is reused only before its exp; at exp the token is
// refused with the reason an uncached registry gives.
func TestCacheExpiredTokenRefused(t *testing.T) {
	s := newSigner(t)
	static, _ := idp.StaticKeys(s.jwks)
	clk := &clock{t: now}
	cached := cachedRegistry(t, 10, clk, static, nil)
	uncached := cachedRegistry(t, 0, clk, static, nil)
	exp := now.Add(10 * time.Minute)
	tok := s.sign(t, jwt.MapClaims{"iss": "https://idp.test", "sub": "alice", "aud": "sts", "exp": exp.Unix()})
	if _, err := cached.Validate(t.Context(), tok, oauth.TokenTypeJWT); err != nil {
		t.Fatal(err)
	}
	clk.set(exp.Add(-time.Second))
	if _, err := cached.Validate(t.Context(), tok, oauth.TokenTypeJWT); err != nil {
		t.Fatalf("a second before exp: %v", err)
	}
	for _, at := range []time.Time{exp, exp.Add(time.Hour)} {
		clk.set(at)
		_, got := cached.Validate(t.Context(), tok, oauth.TokenTypeJWT)
		_, want := uncached.Validate(t.Context(), tok, oauth.TokenTypeJWT)
		if got == nil || want == nil || got.Error() != want.Error() || !errors.Is(got, idp.ErrInvalid) || !strings.Contains(got.Error(), "expired at") {
			t.Fatalf("at %s: cached %v, uncached %v", at, got, want)
		}
	}
}

// SAML: the bearer confirmation's NotOnOrAfter ends the reuse, with the
// reason the validator gives.
func TestCacheSAMLBearerExpiry(t *testing.T) {
	clk := &clock{t: samlNow}
	v, err := idp.NewSAML(idp.SAMLConfig{Name: "mock-saml", Issuer: mockidp.SAMLIssuer, Certificates: []*x509.Certificate{mockSAMLSigner(t).cert},
		Audiences: []string{"idtx-sts"}, ClockSkew: 30 * time.Second, Clock: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	m := &lookups{}
	r := idp.NewRegistry().WithCache(10, clk.now, m)
	if err := r.Add(v); err != nil {
		t.Fatal(err)
	}
	bearerUntil := samlNow.Add(10 * time.Minute)
	tok := b64(xmlOf(t, signedAssertion(t, mockidp.TokenOptions{Sub: "alice"}, func(a *etree.Element) {
		bearerData(a).CreateAttr("NotOnOrAfter", bearerUntil.UTC().Format(time.RFC3339))
	})))
	for _, at := range []time.Time{samlNow, bearerUntil.Add(-time.Second)} {
		clk.set(at)
		if _, err := r.Validate(t.Context(), tok, oauth.TokenTypeSAML2); err != nil {
			t.Fatalf("at %s: %v", at, err)
		}
	}
	if hits, misses := m.counts(); hits != 1 || misses != 1 {
		t.Fatalf("hits, misses = %d, %d; want 1, 1", hits, misses)
	}
	clk.set(bearerUntil.Add(30 * time.Second)) // past the skew too
	_, err = r.Validate(t.Context(), tok, oauth.TokenTypeSAML2)
	_, want := v.Validate(t.Context(), tok, oauth.TokenTypeSAML2)
	if err == nil || want == nil || err.Error() != want.Error() || !strings.Contains(err.Error(), "bearer confirmation expired at") {
		t.Fatalf("after the bearer NotOnOrAfter: %v, want %v", err, want)
	}
	// The same assertion presented as SAML 1.1 is another entry, refused.
	clk.set(samlNow)
	if _, err := r.Validate(t.Context(), tok, oauth.TokenTypeSAML1); err == nil || !strings.Contains(err.Error(), "presented as saml1") {
		t.Fatalf("as saml1: %v", err)
	}
}

// When the IDP's remote key set changes, identities verified before are
// verified again.
func TestCacheKeyChangeInvalidates(t *testing.T) {
	a, b := newSigner(t), newSigner(t)
	srv := newJWKSServer(t, a.jwks)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	keys, err := idp.RemoteKeys(ctx, srv.URL, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	m := &lookups{}
	clk := &clock{t: now}
	r := cachedRegistry(t, 10, clk, keys, m)
	tokA, tokB := a.token(t), b.token(t)
	for range 2 {
		if _, err := r.Validate(ctx, tokA, oauth.TokenTypeJWT); err != nil {
			t.Fatal(err)
		}
	}
	if hits, misses := m.counts(); hits != 1 || misses != 1 {
		t.Fatalf("before the change: hits, misses = %d, %d; want 1, 1", hits, misses)
	}
	srv.current.Store(&b.jwks) // the IDP replaces key a with key b
	if _, err := r.Validate(ctx, tokB, oauth.TokenTypeJWT); err != nil {
		t.Fatal(err) // b's unknown kid fetches the new set
	}
	_, err = r.Validate(ctx, tokA, oauth.TokenTypeJWT)
	if err == nil || !strings.Contains(err.Error(), "is not in the IDP's key set") {
		t.Fatalf("a token of the retired key after the change: %v", err)
	}
	if hits, misses := m.counts(); hits != 1 || misses != 3 {
		t.Fatalf("after the change: hits, misses = %d, %d; want 1, 3", hits, misses)
	}
}

// The cache holds at most its size, dropping the least recently used.
func TestCacheBound(t *testing.T) {
	s := newSigner(t)
	static, _ := idp.StaticKeys(s.jwks)
	keys := &countedKeys{KeySet: static}
	clk := &clock{t: now}
	r := cachedRegistry(t, 3, clk, keys, nil)
	toks := make([]string, 5)
	for i := range toks {
		toks[i] = s.sign(t, jwt.MapClaims{"iss": "https://idp.test", "sub": "u" + string(rune('a'+i)), "aud": "sts", "exp": now.Add(time.Hour).Unix()})
	}
	validate := func(i int) {
		t.Helper()
		if _, err := r.Validate(t.Context(), toks[i], oauth.TokenTypeJWT); err != nil {
			t.Fatal(err)
		}
	}
	for i := range toks {
		validate(i) // 5 verifications; holds 2, 3, 4
	}
	validate(2) // hit; 2 is now the most recent
	validate(3) // hit
	if n := keys.n.Load(); n != 5 {
		t.Fatalf("verifications = %d, want 5", n)
	}
	validate(0) // evicted: verified again, evicts 4
	validate(1) // evicted: verified again, evicts 2
	if n := keys.n.Load(); n != 7 {
		t.Fatalf("verifications = %d, want 7", n)
	}
	validate(3) // still held
	if n := keys.n.Load(); n != 7 {
		t.Fatalf("verifications = %d, want 7 (3 still cached)", n)
	}
}

// A token validated as one type is no evidence for another: an ID token
// presented as an access token is checked as one.
func TestCacheTokenTypesNotConfused(t *testing.T) {
	s := newSigner(t)
	static, _ := idp.StaticKeys(s.jwks)
	clk := &clock{t: now}
	r := cachedRegistry(t, 10, clk, static, nil, func(c *idp.JWTConfig) { c.AccessTokenTyp = []string{"at+jwt"} })
	tok := s.token(t) // typ JWT
	if _, err := r.Validate(t.Context(), tok, oauth.TokenTypeJWT); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		_, err := r.Validate(t.Context(), tok, oauth.TokenTypeAccessToken)
		if err == nil || !strings.Contains(err.Error(), "access_token_typ") {
			t.Fatalf("as access_token: %v", err)
		}
	}
	if _, err := r.Validate(t.Context(), tok, oauth.TokenTypeJWT); err != nil {
		t.Fatal(err)
	}
}

// Introspection IDPs keep their own answers for cache_ttl: the registry
// does not keep them longer.
func TestCacheLeavesIntrospectionToItsTTL(t *testing.T) {
	srv := newIntrospectionServer(t)
	clk := &clock{t: now}
	r := idp.NewRegistry().WithCache(10, clk.now, nil)
	if err := r.Add(introspectionValidator(t, srv.URL, clk.now)); err != nil {
		t.Fatal(err)
	}
	tok := srv.issue("int_", goodAnswer())
	for i, at := range []time.Duration{0, 59 * time.Second, 60 * time.Second} {
		clk.set(now.Add(at))
		if _, err := r.Validate(t.Context(), tok, oauth.TokenTypeAccessToken); err != nil {
			t.Fatal(err)
		}
		want := 1
		if i == 2 {
			want = 2
		}
		if got := srv.callCount(); got != want {
			t.Fatalf("at +%s: introspection calls = %d, want %d", at, got, want)
		}
	}
}

// An IDP whose JWKS endpoint fails keeps its cached keys: a refresh that
// fails (a 500, then no server at all) replaces nothing, and the registry
// reports the failed fetches and stays ready.
func TestRemoteKeysDownKeepsCachedKeys(t *testing.T) {
	a, c := newSigner(t), newSigner(t)
	srv := newJWKSServer(t, a.jwks)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := &lookups{}
	reg, err := idp.FromConfig(ctx, []config.IDP{{Name: "corp", Type: "jwt", Issuer: "https://idp.test",
		Spec:      &idp.JWTSpec{JWKSURI: srv.URL, Algorithms: []string{"RS256"}},
		Audiences: []string{"sts"}, ClockSkew: 30 * time.Second}},
		idp.Options{HTTPClient: srv.Client(), Clock: func() time.Time { return now }, Metrics: m, CacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	if nr := reg.Ready(); nr != nil {
		t.Fatalf("Ready = %v", nr)
	}
	fail := []byte(`not json`)
	srv.current.Store(&fail)
	_, err = reg.Validate(ctx, c.token(t), oauth.TokenTypeJWT) // unknown kid: one refresh, which fails
	if err == nil || !strings.Contains(err.Error(), "is not in the IDP's key set") {
		t.Fatalf("unknown kid with a broken JWKS: %v", err)
	}
	if _, err := reg.Validate(ctx, a.token(t), oauth.TokenTypeJWT); err != nil {
		t.Fatalf("cached key after a failed refresh: %v", err)
	}
	srv.Close()
	if _, err := reg.Validate(ctx, a.token(t), oauth.TokenTypeJWT); err != nil {
		t.Fatalf("cached key with the IDP down: %v", err)
	}
	if nr := reg.Ready(); nr != nil {
		t.Fatalf("Ready with the IDP down after a fetch = %v", nr)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fetched["corp"] != 1 {
		t.Fatalf("fetches reported = %v, failures %v; want 1 fetch", m.fetched, m.fetchFailed)
	}
}

// An IDP whose remote keys were never fetched is not ready, and says so.
func TestRegistryReadyBeforeFirstFetch(t *testing.T) {
	srv := newJWKSServer(t, nil)
	url := srv.URL
	srv.Close()
	m := &lookups{}
	reg, err := idp.FromConfig(t.Context(), []config.IDP{{Name: "corp", Type: "jwt", Issuer: "https://idp.test",
		Spec:      &idp.JWTSpec{JWKSURI: url, Algorithms: []string{"RS256"}},
		Audiences: []string{"sts"}, ClockSkew: 30 * time.Second}},
		idp.Options{Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	nr := reg.Ready()
	if err := nr["corp"]; err == nil || !errors.Is(err, idp.ErrUnavailable) || !strings.Contains(err.Error(), "key set not fetched yet") {
		t.Fatalf("Ready = %v", nr)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fetchFailed["corp"] != 1 || m.fetched["corp"] != 0 {
		t.Fatalf("fetches %v, failures %v; want one failure", m.fetched, m.fetchFailed)
	}
}

// A refresh that brings the same keys keeps the cached identities.
func TestCacheKeptWhenKeysUnchanged(t *testing.T) {
	a, c := newSigner(t), newSigner(t)
	srv := newJWKSServer(t, a.jwks)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	keys, err := idp.RemoteKeys(ctx, srv.URL, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	m := &lookups{}
	r := cachedRegistry(t, 10, &clock{t: now}, keys, m)
	tokA := a.token(t)
	if _, err := r.Validate(ctx, tokA, oauth.TokenTypeJWT); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Validate(ctx, c.token(t), oauth.TokenTypeJWT); err == nil { // unknown kid: a refresh, same keys
		t.Fatal("a token of a key the IDP does not publish validated")
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("fetches = %d, want 2", n)
	}
	if _, err := r.Validate(ctx, tokA, oauth.TokenTypeJWT); err != nil {
		t.Fatal(err)
	}
	if hits, misses := m.counts(); hits != 1 || misses != 2 {
		t.Fatalf("hits, misses = %d, %d; want 1, 2 (a still cached)", hits, misses)
	}
}

// A registry copied by With (one per engine, each adding its own STS)
// gets a cache of its own: an identity the copy vouched for is never
// handed out by the original, which does not trust that issuer.
func TestWithHasItsOwnCache(t *testing.T) {
	s := newSigner(t)
	static, err := idp.StaticKeys(s.jwks)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: now}
	base := idp.NewRegistry().WithCache(10, clk.now, nil)
	self, err := idp.NewJWT(idp.JWTConfig{
		Name: "idtx", Issuer: "https://sts.test", Audiences: []string{"sts"}, Algorithms: []string{"RS256"},
		ClockSkew: 30 * time.Second, Clock: clk.now, Keys: static,
	})
	if err != nil {
		t.Fatal(err)
	}
	engineRegistry, err := base.With(self)
	if err != nil {
		t.Fatal(err)
	}
	tok := s.sign(t, jwt.MapClaims{"iss": "https://sts.test", "sub": "alice", "aud": "sts", "exp": now.Add(time.Hour).Unix()})
	if _, err := engineRegistry.Validate(t.Context(), tok, oauth.TokenTypeJWT); err != nil {
		t.Fatal(err)
	}
	if _, err := base.Validate(t.Context(), tok, oauth.TokenTypeJWT); !errors.Is(err, idp.ErrUntrusted) {
		t.Fatalf("the original registry answered %v for a token only its copy trusts; want ErrUntrusted", err)
	}
}
