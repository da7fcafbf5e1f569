package cmd

import (
	"github.com/spf13/pflag"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/store"
)

// addStoreFlag defines --store on fs, the one way every command that
// opens the store (consent, keys, serve, explain, walk) takes it; note,
// when set, says what this command does with it. Which store is used is
// decided by pickStore.
func addStoreFlag(fs *pflag.FlagSet, p *string, note string) {
	usage := "store URL: sqlite:PATH, memory: or postgres://... (default " + store.EnvStore + ", the store of --config, or IDTX_HOME/idtx.db)"
	if note != "" {
		usage += "; " + note
	}
	fs.StringVar(p, "store", "", usage)
}

// pickStore is the store a command opens: --store, else IDTX_STORE, else
// cfg's store (cfg may be nil), else the default (store.URL decides).
func pickStore(flag string, cfg *config.Config) (string, error) {
	var fromConfig string
	if cfg != nil {
		fromConfig = cfg.StoreURL()
	}
	return store.URL(flag, fromConfig)
}
