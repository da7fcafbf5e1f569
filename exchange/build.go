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
	// Signer, if set, signs instead of the config's key: an ephemeral
	// one (NewEphemeralSigner) lets `idtx explain` build an engine that
	// reads no key and writes nothing to disk.
	Signer *Signer
}

// Build assembles an engine from a validated config: the signer, the
// trusted IDPs and the store. ctx bounds background key refreshes.
func Build(ctx context.Context, cfg *config.Config, opts BuildOptions) (*Engine, error) {
	signer := opts.Signer
	if signer == nil {
		keyFile := ""
		if cfg.Signing.KeyFile != "" {
			keyFile = SigningKeyFile(cfg, opts.Home)
		}
		var err error
		if signer, err = LoadSigner(cfg.Signing.Alg, keyFile, opts.Home); err != nil {
			return nil, err
		}
	}
	registry, err := idp.FromConfig(ctx, cfg.IDPs, idp.Options{
		HTTPClient: opts.HTTPClient, Clock: opts.Clock, ReadFile: cfg.ReadFile,
	})
	if err != nil {
		return nil, err
	}
	return NewEngine(cfg, Options{Registry: registry, Store: opts.Store, Signer: signer, Clock: opts.Clock})
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
