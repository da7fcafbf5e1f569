package exchange

import (
	"context"
	"net/http"
	"path/filepath"
	"time"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/consent"
	"github.com/idtx/idtx/idp"
)

// BuildOptions are what Build needs beyond the config.
type BuildOptions struct {
	Home       string // IDTX_HOME: where a generated signing key is kept
	Store      consent.Store
	Clock      func() time.Time
	HTTPClient *http.Client // for remote JWKS and discovery
	// Metrics receives the engine's metrics (default a new set); the
	// Handler serves them at /metrics.
	Metrics *Metrics
	// CacheSize bounds the validation cache (idp.Options.CacheSize: 0 is
	// idp.DefaultCacheSize, negative turns it off).
	CacheSize int
}

// Build assembles an engine from a validated config: the signer, the
// trusted IDPs and the store. ctx bounds background key refreshes.
func Build(ctx context.Context, cfg *config.Config, opts BuildOptions) (*Engine, error) {
	keyFile := ""
	if cfg.Signing.KeyFile != "" {
		keyFile = SigningKeyFile(cfg, opts.Home)
	}
	signer, err := LoadSigner(cfg.Signing.Alg, keyFile, opts.Home)
	if err != nil {
		return nil, err
	}
	m := opts.Metrics
	if m == nil {
		m = NewMetrics()
	}
	registry, err := idp.FromConfig(ctx, cfg.IDPs, idp.Options{
		HTTPClient: opts.HTTPClient, Clock: opts.Clock, ReadFile: cfg.ReadFile, Metrics: m,
		CacheSize: opts.CacheSize,
	})
	if err != nil {
		return nil, err
	}
	e, err := NewEngine(cfg, Options{Registry: registry, Store: opts.Store, Signer: signer, Clock: opts.Clock})
	if err != nil {
		return nil, err
	}
	// Wrapped after NewEngine, which sees the store as it was opened.
	e.metrics = m
	if e.store != nil {
		e.store = newMeasuredStore(e.store, m)
	}
	return e, nil
}

// SigningKeyFile is the file Build signs with: the config's key_file
// (relative to the config's folder), or else the key generated for the
// config's algorithm in home.
func SigningKeyFile(cfg *config.Config, home string) string {
	keyFile := cfg.Signing.KeyFile
	if keyFile == "" {
		return GeneratedKeyFile(home, cfg.Signing.Alg)
	}
	if !filepath.IsAbs(keyFile) && cfg.Dir != "" {
		keyFile = filepath.Join(cfg.Dir, keyFile)
	}
	return keyFile
}
