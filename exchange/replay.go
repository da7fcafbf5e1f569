package exchange

import (
	"time"

	"github.com/idtx/idtx/store"
)

// ReplayCache remembers the jti of each private_key_jwt client assertion
// until the assertion expires, so that each is accepted once (RFC 7523
// §3, item 7). The store gives one (store.Store's Replay): shared by
// replicas on PostgreSQL, this process's otherwise.
type ReplayCache = store.ReplayCache

// ErrReplayed is a client assertion jti that was already used.
var ErrReplayed = store.ErrReplayed

// ErrReplayLimit is a client with too many unexpired assertions recorded.
var ErrReplayLimit = store.ErrReplayLimit

// ReplayLimitError says which client hit its bound, and the bound.
type ReplayLimitError = store.ReplayLimitError

// DefaultReplayLimit bounds each client's unexpired jti values.
const DefaultReplayLimit = store.DefaultReplayLimit

// MemoryReplayCache is a ReplayCache in this process's memory, the
// engine's when Options.Replay is nil.
type MemoryReplayCache = store.MemoryReplayCache

// NewMemoryReplayCache returns a cache on the given clock that holds at
// most limit unexpired jti values per client (DefaultReplayLimit if 0).
func NewMemoryReplayCache(now func() time.Time, limit int) *MemoryReplayCache {
	return store.NewMemoryReplayCache(now, limit)
}
