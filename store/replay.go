package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ReplayCache remembers the jti of each private_key_jwt client assertion
// until the assertion expires, so that each is accepted once (RFC 7523
// §3, item 7). It is an interface so that replicas can share one (a
// database); MemoryReplayCache serves a single process.
type ReplayCache interface {
	// Use records jti for client until exp. It returns an error wrapping
	// ErrReplayed if the jti is already recorded and unexpired, or
	// ErrReplayLimit (a *ReplayLimitError) if the client holds too many
	// unexpired ones; other clients are not affected.
	Use(ctx context.Context, client, jti string, exp time.Time) error
}

// ErrReplayed is a client assertion jti that was already used.
var ErrReplayed = errors.New("jti was already used")

// ErrReplayLimit is a client with too many unexpired assertions recorded.
var ErrReplayLimit = errors.New("too many unexpired client assertions")

// ReplayLimitError says which client hit its bound, and the bound.
type ReplayLimitError struct {
	Client string
	Limit  int
}

func (e *ReplayLimitError) Error() string {
	return fmt.Sprintf("client %s has %d unexpired assertions (the limit)", e.Client, e.Limit)
}

// Is makes a ReplayLimitError match ErrReplayLimit.
func (e *ReplayLimitError) Is(target error) bool { return target == ErrReplayLimit }

// DefaultReplayLimit bounds each client's unexpired jti values. At the
// maximum assertion lifetime of 5 minutes it allows 33 new assertions a
// second from one client, sustained.
const DefaultReplayLimit = 10_000

// MemoryReplayCache is a ReplayCache in memory. Each client has its own
// bound, so that one client filling its share locks out no other, and its
// own ring of one-second buckets of expiries: each Use sweeps only the
// buckets of the seconds that passed since the client's last request, so
// a request costs O(1) amortised and never scans the cache.
type MemoryReplayCache struct {
	now   func() time.Time
	limit int

	mu      sync.Mutex
	clients map[string]*clientReplays
}

// NewMemoryReplayCache returns a cache on the given clock (nil for
// time.Now) that holds at most limit unexpired jti values per client
// (DefaultReplayLimit if 0).
func NewMemoryReplayCache(now func() time.Time, limit int) *MemoryReplayCache {
	if limit <= 0 {
		limit = DefaultReplayLimit
	}
	if now == nil {
		now = time.Now
	}
	return &MemoryReplayCache{now: now, limit: limit, clients: map[string]*clientReplays{}}
}

// replayBuckets is the ring's length in seconds: longer than any entry
// lives (an assertion's exp is at most 5 minutes ahead, plus the leeway).
// An entry that would land beyond it goes in the last bucket and moves on
// when that bucket is swept: nothing is ever forgotten before its time.
const replayBuckets = 1024

// clientReplays is one client's jti values, each kept as its SHA-256 (so
// a long jti costs nothing) with the instant it may be forgotten, and the
// ring of buckets that says which to look at when.
type clientReplays struct {
	until   map[[32]byte]time.Time
	buckets [replayBuckets][][32]byte
	swept   int64 // the last second whose bucket was swept
}

// bucketSecond is the second whose sweep may forget an entry kept until u:
// the first whole second at or after u.
func bucketSecond(u time.Time) int64 {
	sec := u.Unix()
	if u.Nanosecond() > 0 {
		sec++
	}
	return sec
}

func (c *clientReplays) add(key [32]byte, until time.Time, nowSec int64) {
	sec := min(bucketSecond(until), nowSec+replayBuckets-1)
	i := sec % replayBuckets
	c.buckets[i] = append(c.buckets[i], key)
}

// sweep forgets the entries that expired by now, looking only at the
// buckets of the seconds since the last sweep (every bucket at most once).
func (c *clientReplays) sweep(now time.Time) {
	nowSec := now.Unix()
	if c.swept == 0 {
		c.swept = nowSec
		return
	}
	from := max(c.swept+1, nowSec-replayBuckets+1)
	for sec := from; sec <= nowSec; sec++ {
		i := sec % replayBuckets
		keys := c.buckets[i]
		c.buckets[i] = nil
		for _, k := range keys {
			u, ok := c.until[k]
			switch {
			case !ok:
			case !u.After(now):
				delete(c.until, k)
			default: // not yet: an entry parked in the last bucket
				c.add(k, u, nowSec)
			}
		}
	}
	c.swept = max(c.swept, nowSec)
}

// Use implements ReplayCache in O(1) amortised: every entry is put in a
// bucket once, and looked at again only when its second comes.
func (r *MemoryReplayCache) Use(_ context.Context, client, jti string, exp time.Time) error {
	now := r.now()
	key := sha256.Sum256([]byte(jti))
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.clients[client]
	if c == nil {
		c = &clientReplays{until: map[[32]byte]time.Time{}}
		r.clients[client] = c
	}
	c.sweep(now)
	if u, ok := c.until[key]; ok && u.After(now) {
		return ErrReplayed
	}
	if len(c.until) >= r.limit {
		return &ReplayLimitError{Client: client, Limit: r.limit}
	}
	c.until[key] = exp
	c.add(key, exp, now.Unix())
	return nil
}

// Len is the number of jti values held for client, expired or not.
func (r *MemoryReplayCache) Len(client string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.clients[client]; c != nil {
		return len(c.until)
	}
	return 0
}

// pgReplay is a ReplayCache in the client_assertions table of a
// PostgreSQL store, shared by every replica: an assertion used at one
// is refused at the others. Each client has its own bound, as in
// MemoryReplayCache; a client's expired rows are deleted as it sends its
// next assertion, so no request scans the table.
type pgReplay struct {
	pool  *pgxpool.Pool
	now   func() time.Time
	limit int
}

// newPGReplay returns a cache in pool's database on the given clock,
// holding at most limit unexpired jti values per client
// (DefaultReplayLimit if 0).
func newPGReplay(pool *pgxpool.Pool, now func() time.Time, limit int) *pgReplay {
	if limit <= 0 {
		limit = DefaultReplayLimit
	}
	if now == nil {
		now = time.Now
	}
	return &pgReplay{pool: pool, now: now, limit: limit}
}

// Use implements ReplayCache in one statement: it deletes the client's
// expired rows (but the one for jti, which the insert takes over), counts
// the unexpired ones, and inserts jti unless the count is at the bound.
// The primary key makes the insert atomic across replicas: of two
// replicas given one assertion at once, one inserts and the other
// conflicts.
func (r *pgReplay) Use(ctx context.Context, client, jti string, exp time.Time) error {
	now := r.now()
	key := sha256.Sum256([]byte(jti))
	var inserted int
	err := r.pool.QueryRow(ctx, `
		WITH expired AS (
			DELETE FROM client_assertions
			WHERE client = $1 AND expires_at <= $3 AND jti_hash <> $2
		), held AS (
			SELECT count(*) AS n FROM client_assertions WHERE client = $1 AND expires_at > $3
		), ins AS (
			INSERT INTO client_assertions AS a (client, jti_hash, expires_at)
			SELECT $1, $2, $4 FROM held WHERE held.n < $5
			ON CONFLICT (client, jti_hash) DO UPDATE SET expires_at = EXCLUDED.expires_at
				WHERE a.expires_at <= $3
			RETURNING 1
		)
		SELECT count(*) FROM ins`, client, key[:], now, exp, r.limit).Scan(&inserted)
	if err != nil {
		return fmt.Errorf("replay cache: %w", pgError(err))
	}
	if inserted == 1 {
		return nil
	}
	var unexpired bool
	err = r.pool.QueryRow(ctx, `SELECT expires_at > $3 FROM client_assertions WHERE client = $1 AND jti_hash = $2`,
		client, key[:], now).Scan(&unexpired)
	switch {
	case err == nil && unexpired:
		return ErrReplayed
	case err != nil && !errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("replay cache: %w", pgError(err))
	}
	return &ReplayLimitError{Client: client, Limit: r.limit}
}
