package store

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/idtx/idtx/consent"
)

type key struct{ idp, user, service string }

// memory is a Store in memory, for tests and `--store memory:`: one
// process's consents and key set.
type memory struct {
	mu   sync.RWMutex
	m    map[key]map[string]bool
	keys *memoryKeys
}

// NewMemory returns an empty store in memory.
func NewMemory() Store { return &memory{m: map[key]map[string]bool{}, keys: &memoryKeys{}} }

// Keys is the store's key set, in memory too.
func (s *memory) Keys() Keys { return s.keys }

// Replay remembers in this process: no other process shares the store.
func (s *memory) Replay(now func() time.Time, limit int) ReplayCache {
	return NewMemoryReplayCache(now, limit)
}

func (s *memory) Grant(_ context.Context, idp, user, service string, scopes []string) error {
	if err := consent.CheckKey(idp, user, service); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := key{idp, user, service}
	if s.m[k] == nil {
		s.m[k] = map[string]bool{}
	}
	for _, sc := range scopes {
		s.m[k][sc] = true
	}
	return nil
}

func (s *memory) Revoke(_ context.Context, idp, user, service string, scopes []string) (int, error) {
	if err := consent.CheckKey(idp, user, service); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := key{idp, user, service}
	have := s.m[k]
	removed := 0
	if len(scopes) == 0 {
		removed = len(have)
		delete(s.m, k)
		return removed, nil
	}
	for _, sc := range scopes {
		if have[sc] {
			delete(have, sc)
			removed++
		}
	}
	if len(have) == 0 {
		delete(s.m, k)
	}
	return removed, nil
}

func (s *memory) List(_ context.Context, f consent.Filter) ([]consent.Consent, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []consent.Consent
	for k, scopes := range s.m {
		if (f.IDP != "" && f.IDP != k.idp) || (f.User != "" && f.User != k.user) || (f.Service != "" && f.Service != k.service) {
			continue
		}
		c := consent.Consent{IDP: k.idp, User: k.user, Service: k.service}
		for sc := range scopes {
			c.Scopes = append(c.Scopes, sc)
		}
		slices.Sort(c.Scopes)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b consent.Consent) int {
		return cmp.Or(cmp.Compare(a.IDP, b.IDP), cmp.Compare(a.User, b.User), cmp.Compare(a.Service, b.Service))
	})
	return out, nil
}

func (s *memory) Missing(_ context.Context, idp, user, service string, scopes []string) ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return missingFrom(s.m[key{idp, user, service}], scopes), nil
}

// Ping always answers: the store is this process's memory.
func (s *memory) Ping(context.Context) error { return nil }

func (s *memory) Close() error { return nil }
