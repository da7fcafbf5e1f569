package consent

import (
	"cmp"
	"context"
	"slices"
	"sync"
)

type key struct{ idp, user, service string }

// Memory is a Store in memory, for tests and `--store memory:`.
type Memory struct {
	mu sync.RWMutex
	m  map[key]map[string]bool
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory { return &Memory{m: map[key]map[string]bool{}} }

func (s *Memory) Grant(_ context.Context, idp, user, service string, scopes []string) error {
	if err := checkKey(idp, user, service); err != nil {
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

func (s *Memory) Revoke(_ context.Context, idp, user, service string, scopes []string) (int, error) {
	if err := checkKey(idp, user, service); err != nil {
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

func (s *Memory) List(_ context.Context, f Filter) ([]Consent, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []Consent
	for k, scopes := range s.m {
		if (f.IDP != "" && f.IDP != k.idp) || (f.User != "" && f.User != k.user) || (f.Service != "" && f.Service != k.service) {
			continue
		}
		c := Consent{IDP: k.idp, User: k.user, Service: k.service}
		for sc := range scopes {
			c.Scopes = append(c.Scopes, sc)
		}
		slices.Sort(c.Scopes)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Consent) int {
		return cmp.Or(cmp.Compare(a.IDP, b.IDP), cmp.Compare(a.User, b.User), cmp.Compare(a.Service, b.Service))
	})
	return out, nil
}

func (s *Memory) Missing(_ context.Context, idp, user, service string, scopes []string) ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return missingFrom(s.m[key{idp, user, service}], scopes), nil
}

// Ping always answers: the store is this process's memory.
func (s *Memory) Ping(context.Context) error { return nil }

func (s *Memory) Close() error { return nil }
