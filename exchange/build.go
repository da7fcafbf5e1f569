package exchange

import (
	"cmp"
	"context"
	"crypto"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/idp"
	"github.com/idtx/idtx/keyset"
	"github.com/idtx/idtx/store"
)

// BuildOptions are what Build needs beyond the config.
type BuildOptions struct {
	Home       string // IDTX_HOME: where a generated signing key is kept
	Store      store.Store
	Clock      func() time.Time
	HTTPClient *http.Client // for remote JWKS and discovery
	// Signer, if set, signs instead of the config's key: an ephemeral
	// one (NewEphemeralSigner) lets `idtx explain` build an engine that
	// reads no key and writes nothing to disk.
	Signer *Signer
	// Keys, when set and the config names no key_file, is the key set to
	// sign with, shared by replicas through the store and rotated; nil
	// signs with a key file in Home.
	Keys store.Keys
	// KEK seals new keys in Keys and opens stored ones (nil: unsealed).
	KEK *keyset.KEK
	// Replay records client assertion jti values (default in memory).
	Replay store.ReplayCache
	// Metrics receives the engine's metrics (default a new set); the
	// Handler serves them at /metrics.
	Metrics *Metrics
	// CacheSize bounds the validation cache (idp.Options.CacheSize:
	// negative turns it off); 0 takes the config's validation_cache_size.
	CacheSize int
}

// Build assembles an engine from a validated config: the signer, the
// trusted IDPs and the store. ctx bounds background key refreshes.
func Build(ctx context.Context, cfg *config.Config, opts BuildOptions) (*Engine, error) {
	signer := opts.Signer
	var err error
	switch {
	case signer != nil:
	case cfg.Signing.KeyFile == "" && opts.Keys != nil:
		signer, err = NewKeySetSigner(ctx, opts.Keys, KeyPolicy(cfg, opts.Home, opts.KEK), opts.Clock)
	default:
		keyFile := ""
		if cfg.Signing.KeyFile != "" {
			keyFile = SigningKeyFile(cfg, opts.Home)
		}
		signer, err = LoadSigner(cfg.Signing.Alg, keyFile, opts.Home)
	}
	if err != nil {
		return nil, err
	}
	m := opts.Metrics
	if m == nil {
		m = NewMetrics()
	}
	registry, err := idp.FromConfig(ctx, cfg.IDPs, idp.Options{
		HTTPClient: opts.HTTPClient, Clock: opts.Clock, ReadFile: cfg.ReadFile, Metrics: m,
		CacheSize: cmp.Or(opts.CacheSize, cfg.ValidationCacheSize),
	})
	if err != nil {
		return nil, err
	}
	e, err := NewEngine(cfg, Options{Registry: registry, Store: opts.Store, Signer: signer, Clock: opts.Clock, Replay: opts.Replay})
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

// KeyPolicy is how a server with cfg keeps a key set in the store: the
// config's algorithm, longest token lifetime and rotation schedule. An
// empty set starts with the key an earlier idtx generated into home, if
// there is one, so that its tokens and the resource servers' cached /jwks
// stay good.
func KeyPolicy(cfg *config.Config, home string, kek *keyset.KEK) keyset.Policy {
	p := keyset.Policy{
		Alg: cfg.Signing.Alg, MaxTokenLifetime: cfg.MaxTokenLifetime(),
		RotateEvery: cfg.Signing.RotateEvery, KEK: kek,
	}
	if home != "" {
		if file := GeneratedKeyFile(home, cfg.Signing.Alg); fileExists(file) {
			p.First = func() (crypto.Signer, error) {
				data, err := os.ReadFile(file)
				if err != nil {
					return nil, fmt.Errorf("signing key: %w", err)
				}
				key, err := idp.ParsePrivateKey(data)
				if err != nil {
					return nil, fmt.Errorf("signing key %s: %w", file, err)
				}
				return key, nil
			}
		}
	}
	return p
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
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
