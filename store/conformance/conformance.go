// Package conformance is the test suite every store backend runs, one
// suite per kind of data (consents, jti replay, signing keys, ping), so
// that memory, SQLite and PostgreSQL behave the same and a new backend
// is held to what the others promise. A backend's test calls Run with a
// function that opens a fresh, empty store.
package conformance

import (
	"context"
	"testing"

	"github.com/idtx/idtx/store"
)

// Opener opens a fresh, empty store, closed when t ends.
type Opener func(t *testing.T) store.Store

// Run runs every suite against the stores open makes.
func Run(t *testing.T, open Opener) {
	t.Run("consents", func(t *testing.T) { RunConsents(t, open) })
	t.Run("replay", func(t *testing.T) { RunReplay(t, open) })
	t.Run("keys", func(t *testing.T) { RunKeys(t, open) })
	t.Run("ping", func(t *testing.T) { RunPing(t, open) })
}

// RunPing checks that a store that is open answers Ping.
func RunPing(t *testing.T, open Opener) {
	if err := open(t).Ping(context.Background()); err != nil {
		t.Fatalf("Ping = %v", err)
	}
}
