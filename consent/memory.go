package consent

import (
	"cmp"
	"context"
	"slices"
	"sync"
)

type key struct{ user, service string }

// Memory is a Store in memory, for tests and `--store memory:`.
type Memory struct {
	mu sync.RWMutex
	m  map[key]map[string]bool
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory { return &Memory{m: map[key]map[string]bool{}} }

func (s *Memory) Grant(_ context.Context, user, service string, scopes []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := key{user, service}
	if s.m[k] == nil {
		s.m[k] = map[string]bool{}
	}
	for _, sc := range scopes {
		s.m[k][sc] = true
	}
	return nil
}

func (s *Memory) Revoke(_ context.Context, user, service string, scopes []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := key{user, service}
	if len(scopes) == 0 {
		delete(s.m, k)
		return nil
	}
	for _, sc := range scopes {
		delete(s.m[k], sc)
	}
	if len(s.m[k]) == 0 {
		delete(s.m, k)
	}
	return nil
}

func (s *Memory) List(_ context.Context, f Filter) ([]Consent, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []Consent
	for k, scopes := range s.m {
		if (f.User != "" && f.User != k.user) || (f.Service != "" && f.Service != k.service) {
			continue
		}
		c := Consent{User: k.user, Service: k.service}
		for sc := range scopes {
			c.Scopes = append(c.Scopes, sc)
		}
		slices.Sort(c.Scopes)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Consent) int {
		if a.User != b.User {
			return cmp.Compare(a.User, b.User)
		}
		return cmp.Compare(a.Service, b.Service)
	})
	return out, nil
}

func (s *Memory) Missing(_ context.Context, user, service string, scopes []string) ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return missingFrom(s.m[key{user, service}], scopes), nil
}

func (s *Memory) Close() error { return nil }
