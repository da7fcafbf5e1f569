// Package mockserver assembles the mock STS: the configuration of
// `idtx serve --mock` (fixtures/mock.yaml) with its mock IDPs, seeded
// consents, live traces and faults. `idtx serve --mock` serves it on a
// port and package idtxtest on an httptest server: the same server.
package mockserver

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/exchange"
	"github.com/idtx/idtx/mockidp"
	"github.com/idtx/idtx/store"
)

// Options are what the mock STS needs besides its fixtures.
type Options struct {
	// BaseURL is where the server is reached: its issuer (unless the
	// config names one) and the base of the mock IDPs' endpoints.
	BaseURL string
	// Config replaces the mock configuration (nil: mockidp.Config()).
	Config *config.Config
	// Store holds consents (the mock's are seeded into it) and, through
	// Replay, client assertion jti values.
	Store store.Store
	// Clock is the server's time (nil: time.Now).
	Clock func() time.Time
	// Home is the folder of the signing key file, unless Signer is set.
	Home string
	// Signer signs instead of a key file (an ephemeral key in tests).
	Signer *exchange.Signer
	// Replay records client assertion jti values (default: in memory).
	Replay store.ReplayCache
	// HTTPClient calls remote IDPs (the internal IDP's introspection).
	HTTPClient *http.Client
	// Log hears every exchange (nil: discarded).
	Log *slog.Logger
	// Faults are set from the start (serve --mock --fault).
	Faults []mockidp.Fault
	// CacheSize is exchange.BuildOptions.CacheSize.
	CacheSize int
}

// Server is a mock STS, ready to serve.
type Server struct {
	http.Handler
	Config  *config.Config
	Engine  *exchange.Engine
	STS     *exchange.Handler
	IDP     *mockidp.IDP
	Traces  int // how many traces it keeps a client
	BaseURL string
}

// New builds the mock STS. ctx bounds its background work.
func New(ctx context.Context, o Options) (*Server, error) {
	clock := o.Clock
	if clock == nil {
		clock = time.Now
	}
	cfg := o.Config
	if cfg == nil {
		var err error
		if cfg, err = mockidp.Config(); err != nil {
			return nil, err
		}
	}
	if cfg.Issuer == "" {
		cfg.Issuer = o.BaseURL
	}
	m, err := mockidp.NewIDP(clock)
	if err != nil {
		return nil, err
	}
	if err := m.Faults().Set(o.Faults...); err != nil {
		return nil, err
	}
	if err := m.Use(cfg, o.BaseURL); err != nil {
		return nil, err
	}
	if o.Store != nil {
		if err := mockidp.SeedConsents(ctx, o.Store); err != nil {
			return nil, fmt.Errorf("seed mock consents: %w", err)
		}
	}
	replay := o.Replay
	if replay == nil && o.Store != nil {
		replay = o.Store.Replay(clock, 0)
	}
	engine, err := exchange.Build(ctx, cfg, exchange.BuildOptions{
		Home: o.Home, Store: o.Store, Clock: clock, Replay: replay, Signer: o.Signer,
		HTTPClient: o.HTTPClient, CacheSize: o.CacheSize,
	})
	if err != nil {
		return nil, err
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := exchange.NewHandler(engine, log)
	h.Handle("/mock/", m.Handler())
	traces := cfg.Traces
	if traces == 0 {
		traces = config.DefaultMockTraces
	}
	// The mock's traces are open to loopback callers (docs/explain.md).
	h.EnableTraces(traces, true)
	faults := m.Faults()
	h.SetFaults(func() *exchange.Fault {
		hit := faults.Hit()
		if hit == nil {
			return nil
		}
		return &exchange.Fault{Delay: hit.Delay, Drop: hit.Drop, Error: hit.Error, Notes: hit.Notes, Done: hit.Done}
	})
	return &Server{Handler: markMock(h), Config: cfg, Engine: engine, STS: h, IDP: m, Traces: traces, BaseURL: o.BaseURL}, nil
}

// markMock adds "idtx_mock": true to the mock's RFC 8414 metadata (§2
// allows additional members), so that `idtx exchange` with no client
// sends the public demo client only to an idtx mock.
func markMock(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || (r.URL.Path != "/.well-known/oauth-authorization-server" && r.URL.Path != "/.well-known/openid-configuration") {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		var doc map[string]any
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &doc) != nil {
			h.ServeHTTP(w, r)
			return
		}
		doc["idtx_mock"] = true
		body, _ := json.MarshalIndent(doc, "", "  ")
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.Write(body)
	})
}
