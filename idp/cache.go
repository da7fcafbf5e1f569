package idp

import (
	"container/list"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/idtx/idtx/config"
)

// DefaultCacheSize bounds the validation cache of a registry built by
// FromConfig when Options.CacheSize is 0.
const DefaultCacheSize = config.DefaultValidationCacheSize

// cache remembers the identities of tokens already validated, so that a
// token presented again (one subject token exchanged for several
// audiences, a chained token passed down a call graph) is not verified
// again before its own exp.
//
// An entry is keyed by the SHA-256 of the token type and the token (the
// token itself is never kept), and holds the identity with the window in
// which reusing it is exactly what validating again would decide:
//
//   - from the instant it was validated: every lower bound (nbf, iat,
//     NotBefore, IssueInstant) held then and holds at any later instant;
//   - until the identity's Expiry: every upper bound (exp, NotOnOrAfter,
//     the bearer confirmation's NotOnOrAfter, max_age) holds before it.
//
// Outside the window, the token is validated again from scratch, so an
// expired token is refused with the same reason as one never seen. An
// entry also records the generation of its IDP's keys: once the IDP's
// remote key set changes, its entries are not used again.
type cache struct {
	max int
	now func() time.Time

	mu      sync.Mutex
	entries map[[sha256.Size]byte]*list.Element
	lru     list.List // front: most recently used *cacheEntry
}

type cacheEntry struct {
	key        [sha256.Size]byte
	id         *Identity // private copy; handed out as clones
	from, till time.Time
	keys       generations // nil: keys that never change
	gen        uint64
}

// generations is a key set whose keys may change: the generation grows
// each time a fetch brings keys different from the ones held before.
type generations interface {
	Generation() uint64
}

func newCache(size int, now func() time.Time) *cache {
	if now == nil {
		now = time.Now
	}
	return &cache{max: size, now: now, entries: make(map[[sha256.Size]byte]*list.Element, min(size, 1024))}
}

// cacheKey hashes the token type with the token: a token presented as
// another type (an ID token as an access token) is another entry.
func cacheKey(token, tokenType string) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(tokenType))
	h.Write([]byte{0})
	h.Write([]byte(token))
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

// get returns a copy of the identity cached for key, if it is in its
// window at now and its IDP's keys have not changed since.
func (c *cache) get(key [sha256.Size]byte, now time.Time) *Identity {
	c.mu.Lock()
	el, ok := c.entries[key]
	if !ok {
		c.mu.Unlock()
		return nil
	}
	e := el.Value.(*cacheEntry)
	if now.Before(e.from) || !now.Before(e.till) || (e.keys != nil && e.keys.Generation() != e.gen) {
		c.lru.Remove(el)
		delete(c.entries, key)
		c.mu.Unlock()
		return nil
	}
	c.lru.MoveToFront(el)
	id := e.id
	c.mu.Unlock()
	return cloneIdentity(id)
}

// put remembers id, validated at now with keys at generation gen, and
// drops the least recently used entry beyond the bound.
func (c *cache) put(key [sha256.Size]byte, id *Identity, now time.Time, keys generations, gen uint64) {
	if !now.Before(id.Expiry) {
		return
	}
	e := &cacheEntry{key: key, id: cloneIdentity(id), from: now, till: id.Expiry, keys: keys, gen: gen}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		el.Value = e
		c.lru.MoveToFront(el)
		return
	}
	c.entries[key] = c.lru.PushFront(e)
	for len(c.entries) > c.max {
		last := c.lru.Back()
		c.lru.Remove(last)
		delete(c.entries, last.Value.(*cacheEntry).key)
	}
}
