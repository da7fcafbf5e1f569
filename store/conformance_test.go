package store_test

import (
	"path/filepath"
	"testing"

	"github.com/idtx/idtx/store"
	"github.com/idtx/idtx/store/conformance"
	"github.com/idtx/idtx/store/pgtest"
)

// Every backend runs every suite: what one store promises, all do.
func TestConformance(t *testing.T) {
	for name, url := range map[string]func(t *testing.T) string{
		"memory":   func(*testing.T) string { return store.MemoryURL },
		"sqlite":   func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "idtx.db") },
		"postgres": func(t *testing.T) string { return pgtest.NewDatabase(t, pgtest.Server(t)) },
	} {
		t.Run(name, func(t *testing.T) {
			conformance.Run(t, func(t *testing.T) store.Store {
				s, err := store.Open(url(t))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			})
		})
	}
}
