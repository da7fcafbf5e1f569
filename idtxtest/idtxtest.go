// Package idtxtest runs the mock STS of `idtx serve --mock` inside Go
// tests: an RFC 8693 token exchange server that validates subject tokens
// for real, on an httptest server, in memory, in milliseconds. It mints
// the mock IDPs' subject tokens (also broken ones, on purpose), grants
// and revokes consents, records the exchanges it answers with their
// traces, and misbehaves when told to (faults), so that a service's
// handling of each answer can be tested. docs/testing.md shows its uses.
//
// It is not for use outside tests: the mock's keys and clients are
// public, and it trusts anyone who asks.
package idtxtest

import (
	"context"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/exchange"
	"github.com/idtx/idtx/internal/mockserver"
	"github.com/idtx/idtx/mockidp"
	"github.com/idtx/idtx/store"
)

// The mock's fixed names, as `idtx serve --mock` has them
// (docs/mock.md).
const (
	// Client and Secret are the demo client, which may exchange for every
	// service, in impersonation and delegation.
	Client = mockidp.DemoClient
	Secret = mockidp.DemoSecret
	// IDP is the mock JWT IDP, SAMLIDP the mock SAML IDP and InternalIDP
	// the mock internal IDP of opaque tokens: the idp of Grant.
	IDP         = mockidp.Name
	SAMLIDP     = mockidp.SAMLName
	InternalIDP = mockidp.InternalName
	// Audience is what a mock subject token is issued for: the STS.
	Audience = mockidp.Audience
)

// STS is a running mock STS. Its methods are safe for concurrent use.
type STS struct {
	// URL is the base URL of the STS and its issuer (the iss of the
	// tokens it issues); its endpoints and the mock IDPs' are under it
	// as in `idtx serve --mock`.
	URL string

	srv   *httptest.Server
	mock  *mockserver.Server
	store store.Store
	clock func() time.Time

	mu        sync.Mutex
	exchanges []Exchange
}

// Option configures New.
type Option func(*settings)

type settings struct {
	cfg    *config.Config
	yaml   string
	clock  func() time.Time
	faults []string
	alg    string
}

// WithConfig runs cfg instead of the mock configuration (fixtures/mock.yaml):
// its IDPs, services and clients. New fills in its issuer if it has none
// and makes cfg its own: parse one config per STS.
func WithConfig(cfg *config.Config) Option { return func(s *settings) { s.cfg = cfg } }

// WithConfigYAML runs a configuration given as YAML, as `idtx serve
// --config` reads it (files it names are read relative to the working
// directory).
func WithConfigYAML(yaml string) Option { return func(s *settings) { s.yaml = yaml } }

// WithClock runs the STS, and mints its subject tokens, on clock instead
// of time.Now: a *Clock, or any func() time.Time.
func WithClock(clock func() time.Time) Option { return func(s *settings) { s.clock = clock } }

// WithFaults sets faults from the start, as `idtx serve --mock --fault`
// does (Fault lists the specs).
func WithFaults(specs ...string) Option {
	return func(s *settings) { s.faults = append(s.faults, specs...) }
}

// WithSigningAlg signs the STS's tokens with a fresh key of alg (ES256,
// RS256 or EdDSA) instead of the config's algorithm.
func WithSigningAlg(alg string) Option { return func(s *settings) { s.alg = alg } }

// New starts a mock STS for the test and stops it when the test ends.
// Each call starts one of its own: parallel tests never share keys,
// consents, faults or exchanges. Nothing is written to disk.
func New(t testing.TB, opts ...Option) *STS {
	t.Helper()
	var set settings
	for _, o := range opts {
		o(&set)
	}
	cfg := set.cfg
	if set.yaml != "" {
		if cfg != nil {
			t.Fatalf("idtxtest.New: give WithConfig or WithConfigYAML, not both")
		}
		var err error
		if cfg, err = config.Parse([]byte(set.yaml), "", os.ReadFile); err != nil {
			t.Fatalf("idtxtest.New: WithConfigYAML: %v", err)
		}
	}
	if cfg != nil {
		if _, taken := configsInUse.LoadOrStore(cfg, true); taken {
			t.Fatalf("idtxtest.New: WithConfig: this config already runs another STS; parse one config per New")
		}
		t.Cleanup(func() { configsInUse.Delete(cfg) })
	}
	clock := set.clock
	if clock == nil {
		clock = time.Now
	}
	faults, err := mockidp.ParseFaults(set.faults)
	if err != nil {
		t.Fatalf("idtxtest.New: WithFaults: %v", err)
	}
	alg := set.alg
	if alg == "" && cfg != nil {
		alg = cfg.Signing.Alg
	}
	signer, err := exchange.NewEphemeralSigner(cmpOr(alg, config.DefaultAlg))
	if err != nil {
		t.Fatalf("idtxtest.New: signing key: %v", err)
	}

	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	st := store.NewMemory()
	s := &STS{URL: base, srv: srv, store: st, clock: clock}
	mock, err := mockserver.New(ctx, mockserver.Options{
		BaseURL: base, Config: cfg, Store: st, Clock: clock, Signer: signer, Faults: faults,
	})
	if err != nil {
		cancel()
		srv.Listener.Close()
		t.Fatalf("idtxtest.New: %v", err)
	}
	s.mock = mock
	mock.STS.Observe(s.observe)
	srv.Config.Handler = mock
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		cancel()
		st.Close()
	})
	return s
}

// configsInUse are the configs of running STSs: New fills in their
// issuer and keys, so that one config cannot serve two.
var configsInUse sync.Map

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Now is the STS's clock.
func (s *STS) Now() time.Time { return s.clock() }

// TokenURL is the token endpoint (RFC 8693 §2.1), URL + "/token".
func (s *STS) TokenURL() string { return s.URL + "/token" }

// JWKSURL is where the STS publishes the keys its tokens are signed
// with, for a resource server to verify them.
func (s *STS) JWKSURL() string { return s.URL + "/jwks" }

// Config is the configuration the STS runs (do not change it).
func (s *STS) Config() *config.Config { return s.mock.Config }

// Grant stores idp's user's consent to service's scopes, as `idtx consent
// grant` does; the STS sees it at its next exchange.
func (s *STS) Grant(t testing.TB, idp, user, service string, scopes ...string) {
	t.Helper()
	s.checkService(t, "Grant", idp, service, scopes)
	if len(scopes) == 0 {
		t.Fatalf("idtxtest: Grant(%s, %s, %s): name at least one scope", idp, user, service)
	}
	if err := s.store.Grant(context.Background(), idp, user, service, scopes); err != nil {
		t.Fatalf("idtxtest: Grant: %v", err)
	}
}

// Revoke removes idp's user's consent to service's scopes, or to all of
// them when none is named, as `idtx consent revoke` does.
func (s *STS) Revoke(t testing.TB, idp, user, service string, scopes ...string) {
	t.Helper()
	s.checkService(t, "Revoke", idp, service, scopes)
	if _, err := s.store.Revoke(context.Background(), idp, user, service, scopes); err != nil {
		t.Fatalf("idtxtest: Revoke: %v", err)
	}
}

// checkService fails the test for an IDP, service or scope the STS does
// not know: a consent to it could never be used.
func (s *STS) checkService(t testing.TB, op, idp, service string, scopes []string) {
	t.Helper()
	cfg := s.mock.Config
	if !slices.ContainsFunc(cfg.IDPs, func(d config.IDP) bool { return d.Name == idp }) {
		names := []string{}
		for _, d := range cfg.IDPs {
			names = append(names, d.Name)
		}
		t.Fatalf("idtxtest: %s: idp %q is not an IDP of this STS (IDPs: %s)", op, idp, strings.Join(names, ", "))
	}
	i := slices.IndexFunc(cfg.Services, func(sv config.Service) bool { return sv.Name == service })
	if i < 0 {
		names := []string{}
		for _, sv := range cfg.Services {
			names = append(names, sv.Name)
		}
		t.Fatalf("idtxtest: %s: service %q is not a service of this STS (services: %s)", op, service, strings.Join(names, ", "))
	}
	for _, sc := range scopes {
		if _, ok := cfg.Services[i].Scopes[sc]; !ok {
			t.Fatalf("idtxtest: %s: scope %q is not a scope of service %s", op, sc, service)
		}
	}
}
