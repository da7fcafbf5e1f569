package mockidp

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/fixtures"
	"github.com/idtx/idtx/idp"
)

// IDP is the mock JWT IDP of one running mock STS: the key it signs with
// (the fixture key until a rotate-key fault rotates it), the key set it
// publishes at /mock/jwks, and the faults set on that mock. Each mock STS
// has its own, so that parallel tests never see each other's faults.
type IDP struct {
	clock  func() time.Time
	faults *Faults
	state  atomic.Pointer[keyState]
	mu     sync.Mutex // serialises rotations
	// fixture is the state it starts in, and returns to when every
	// rotate-key fault has ended.
	fixture *keyState
	// rotated are the private keys of the rotations in force, by kid.
	rotated map[string]crypto.Signer
}

// keyState is what the mock JWT IDP signs with and publishes; it is
// replaced whole, never changed.
type keyState struct {
	gen    uint64
	signer crypto.Signer
	method jwt.SigningMethod
	kid    string
	keys   map[string]crypto.PublicKey // published: kid → key
	order  []string                    // published kids, oldest first
	jwks   []byte                      // the published JWK set (RFC 7517 §5)
}

// NewIDP returns a mock JWT IDP signing with the fixture key; clock (nil:
// time.Now) is the time its tokens are minted at and its introspection
// endpoint checks tokens at.
func NewIDP(clock func() time.Time) (*IDP, error) {
	if clock == nil {
		clock = time.Now
	}
	s, err := signer()
	if err != nil {
		return nil, fmt.Errorf("mock idp key: %w", err)
	}
	jwks, err := fixtures.FS.ReadFile(fixtures.MockIDPJWKS)
	if err != nil {
		return nil, err
	}
	m := &IDP{clock: clock, rotated: map[string]crypto.Signer{}}
	m.faults = newFaults(m)
	m.fixture = &keyState{
		gen: 1, signer: s.key, method: jwt.SigningMethodRS256, kid: s.kid,
		keys: map[string]crypto.PublicKey{s.kid: s.key.Public()}, order: []string{s.kid}, jwks: jwks,
	}
	m.state.Store(m.fixture)
	return m, nil
}

// Faults is the set of faults of this mock.
func (m *IDP) Faults() *Faults { return m.faults }

// Now is the mock's clock.
func (m *IDP) Now() time.Time { return m.clock() }

// KeyID is the kid the mock JWT IDP signs with now.
func (m *IDP) KeyID() string { return m.state.Load().kid }

// JWT mints a mock subject token as JWT does, signed with the key this
// mock IDP signs with now (the fixture key until a rotation), at the
// mock's clock unless o.Now says otherwise.
func (m *IDP) JWT(o TokenOptions) (string, error) {
	if o.Now.IsZero() {
		o.Now = m.clock()
	}
	st := m.state.Load()
	return signJWT(o, st.signer, st.method, st.kid, st.keys[st.kid])
}

// rotate makes a new key the one the IDP signs with, published together
// with the keys already published (the overlap), and returns its kid.
// The new key is ES256: generated in microseconds, as a test needs.
func (m *IDP) rotate() (string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.state.Load()
	jwk, err := idp.PublicJWK(key.Public())
	if err != nil {
		return "", err
	}
	kid := idp.Thumbprint(jwk)
	keys := map[string]crypto.PublicKey{kid: key.Public()}
	order := []string{}
	for _, k := range old.order {
		keys[k] = old.keys[k]
		order = append(order, k)
	}
	order = append(order, kid)
	next := &keyState{gen: old.gen + 1, signer: key, method: jwt.SigningMethodES256, kid: kid, keys: keys, order: order}
	if next.jwks, err = publish(next); err != nil {
		return "", err
	}
	m.rotated[kid] = key
	m.state.Store(next)
	return kid, nil
}

// unrotate ends the rotation that made kid: kid is no longer published,
// and if the IDP signed with it, it signs with the key published before
// it. Once no rotation is left, the IDP is back to its fixture key: it
// signs with it and publishes only it, as `idtx mock token` expects.
func (m *IDP) unrotate(kid string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.rotated[kid]; !ok {
		return
	}
	delete(m.rotated, kid)
	old := m.state.Load()
	if len(m.rotated) == 0 {
		back := *m.fixture
		back.gen = old.gen + 1 // the STS's cache forgets the rotated key's identities
		m.state.Store(&back)
		return
	}
	next := &keyState{gen: old.gen + 1, signer: old.signer, method: old.method, kid: old.kid, keys: map[string]crypto.PublicKey{}}
	for _, k := range old.order {
		if k != kid {
			next.keys[k] = old.keys[k]
			next.order = append(next.order, k)
		}
	}
	if old.kid == kid {
		next.kid = next.order[len(next.order)-1]
		next.signer, next.method = m.rotated[next.kid], jwt.SigningMethodES256
	}
	var err error
	if next.jwks, err = publish(next); err != nil {
		return
	}
	m.state.Store(next)
}

func publish(st *keyState) ([]byte, error) {
	doc := struct {
		Keys []map[string]any `json:"keys"`
	}{}
	for _, kid := range st.order {
		jwk, err := idp.PublicJWK(st.keys[kid])
		if err != nil {
			return nil, err
		}
		jwk["kid"], jwk["use"] = kid, "sig"
		switch st.keys[kid].(type) {
		case *ecdsa.PublicKey:
			jwk["alg"] = "ES256"
		default:
			jwk["alg"] = "RS256"
		}
		doc.Keys = append(doc.Keys, jwk)
	}
	return json.MarshalIndent(doc, "", "  ")
}

// serveJWKS is GET /mock/jwks: the published key set, or 503 while a
// jwks-down fault is set.
func (m *IDP) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	if m.faults.jwksDown() {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "mock IDP key set down (fault jwks-down)", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Write(m.state.Load().jwks)
}

// Handler serves this mock's endpoints under /mock/: the JWT IDP's key
// set (as this IDP publishes it), the faults
// and, through Handler, the rest of the mock's endpoints (GET, POST and DELETE /mock/faults; docs/testing.md).
func (m *IDP) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /mock/jwks", m.serveJWKS)
	mux.Handle("/mock/", Handler(m.clock))
	mux.HandleFunc("GET "+FaultsPath, m.faults.serveList)
	mux.HandleFunc("POST "+FaultsPath, m.faults.serveSet)
	mux.HandleFunc("DELETE "+FaultsPath, m.faults.serveClear)
	mux.HandleFunc(FaultsPath, m.faults.serveOther)
	return mux
}

// keySet is the mock JWT IDP's key set as the mock STS sees it: read
// from what the IDP publishes at every validation (a real IDP's set is
// read every few minutes and on an unknown kid, docs/security.md), so
// that a rotation or an outage shows at once. While the key set is down
// the keys read last stay in use, as with a real IDP.
type keySet struct {
	m    *IDP
	last atomic.Pointer[keyState] // read last; nil: never read
	down atomic.Bool              // whether the last read failed
}

func (k *keySet) read() *keyState {
	if k.m.faults.jwksDown() {
		k.down.Store(true)
		return k.last.Load()
	}
	st := k.m.state.Load()
	k.last.Store(st)
	k.down.Store(false)
	return st
}

// Key finds the key a token names by kid, as idp's remote key sets do.
func (k *keySet) Key(_ context.Context, t *jwt.Token) (any, error) {
	st := k.read()
	kid, hasKID := t.Header["kid"].(string)
	if st == nil {
		return nil, fmt.Errorf("%w: key set unreachable and kid not cached", idp.ErrUnavailable)
	}
	if !hasKID {
		set := jwt.VerificationKeySet{}
		for _, kid := range st.order {
			set.Keys = append(set.Keys, st.keys[kid])
		}
		return set, nil
	}
	key, ok := st.keys[kid]
	if !ok {
		if k.down.Load() {
			return nil, fmt.Errorf("%w: key set unreachable and kid not cached", idp.ErrUnavailable)
		}
		return nil, fmt.Errorf("kid %q is not in the IDP's key set", clip(kid))
	}
	return key, nil
}

// Generation changes with the keys published, so that the STS's
// validation cache forgets identities verified with a retired key.
func (k *keySet) Generation() uint64 {
	if st := k.read(); st != nil {
		return st.gen
	}
	return 0
}

// Ready says whether the key set has been read at least once.
func (k *keySet) Ready() error {
	if k.read() == nil {
		return fmt.Errorf("%w: key set not fetched yet", idp.ErrUnavailable)
	}
	return nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// liveSpec is the mock JWT IDP's spec in a running mock: its config
// (fixtures/mock.yaml), with the keys this IDP publishes instead of the
// fixture file.
type liveSpec struct {
	*idp.JWTSpec
	keys *keySet
}

func (s *liveSpec) Open(_ context.Context, d config.IDP, opts idp.Options) (idp.Validator, error) {
	return idp.NewJWT(idp.JWTConfig{
		Name: d.Name, Issuer: d.Issuer, Audiences: d.Audiences, Algorithms: s.Algorithms,
		ClockSkew: d.ClockSkew, Clock: opts.Clock, Keys: s.keys,
		AccessTokenTyp: s.AccessTokenTyp, Claims: d.Claims,
	})
}

// Use makes cfg (the mock config) trust this IDP's keys as it publishes
// them (cfg is this IDP's from then on: one config per mock), and points the mock internal IDP at the introspection endpoint of
// the mock served at base (the STS's own address).
func (m *IDP) Use(cfg *config.Config, base string) error {
	UseBaseURL(cfg, base)
	for i := range cfg.IDPs {
		if cfg.IDPs[i].Name != Name || cfg.IDPs[i].Issuer != Issuer {
			continue // a config's own IDP of that name keeps its keys
		}
		spec, ok := cfg.IDPs[i].Spec.(*idp.JWTSpec)
		if !ok {
			return errors.New("mock config: IDP " + Name + " is not a jwt IDP")
		}
		ks := &keySet{m: m}
		ks.read()
		cfg.IDPs[i].Spec = &liveSpec{JWTSpec: spec, keys: ks}
	}
	return nil
}
