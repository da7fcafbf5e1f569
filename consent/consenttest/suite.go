// Package consenttest is the conformance suite every consent.Store backend
// runs, so that memory, SQLite and later Postgres behave the same.
package consenttest

import (
	"context"
	"slices"
	"testing"

	"github.com/idtx/idtx/consent"
)

// Run checks the Store contract against stores made fresh by open.
func Run(t *testing.T, open func(t *testing.T) consent.Store) {
	ctx := context.Background()
	t.Run("missing on empty store", func(t *testing.T) {
		s := open(t)
		got, err := s.Missing(ctx, "alice", "billing-api", []string{"billing:read", "billing:write"})
		must(t, err)
		want(t, got, []string{"billing:read", "billing:write"})
	})
	t.Run("grant is idempotent and additive", func(t *testing.T) {
		s := open(t)
		must(t, s.Grant(ctx, "alice", "billing-api", []string{"billing:read"}))
		must(t, s.Grant(ctx, "alice", "billing-api", []string{"billing:read", "billing:write"}))
		got, err := s.Missing(ctx, "alice", "billing-api", []string{"billing:write", "billing:admin", "billing:read"})
		must(t, err)
		want(t, got, []string{"billing:admin"})
		list, err := s.List(ctx, consent.Filter{})
		must(t, err)
		if len(list) != 1 {
			t.Fatalf("List = %v, want one consent", list)
		}
		want(t, list[0].Scopes, []string{"billing:read", "billing:write"})
	})
	t.Run("consent is per user and service", func(t *testing.T) {
		s := open(t)
		must(t, s.Grant(ctx, "alice", "billing-api", []string{"x"}))
		for _, c := range [][2]string{{"bob", "billing-api"}, {"alice", "orders-api"}, {"Alice", "billing-api"}} {
			got, err := s.Missing(ctx, c[0], c[1], []string{"x"})
			must(t, err)
			want(t, got, []string{"x"})
		}
	})
	t.Run("revoke some scopes", func(t *testing.T) {
		s := open(t)
		must(t, s.Grant(ctx, "alice", "billing-api", []string{"a", "b", "c"}))
		must(t, s.Revoke(ctx, "alice", "billing-api", []string{"b", "zzz"}))
		got, err := s.Missing(ctx, "alice", "billing-api", []string{"a", "b", "c"})
		must(t, err)
		want(t, got, []string{"b"})
	})
	t.Run("revoke all scopes", func(t *testing.T) {
		s := open(t)
		must(t, s.Grant(ctx, "alice", "billing-api", []string{"a", "b"}))
		must(t, s.Grant(ctx, "alice", "orders-api", []string{"a"}))
		must(t, s.Revoke(ctx, "alice", "billing-api", nil))
		list, err := s.List(ctx, consent.Filter{User: "alice"})
		must(t, err)
		if len(list) != 1 || list[0].Service != "orders-api" {
			t.Fatalf("List = %v, want only orders-api", list)
		}
	})
	t.Run("list filters and sorts", func(t *testing.T) {
		s := open(t)
		must(t, s.Grant(ctx, "bob", "orders-api", []string{"o"}))
		must(t, s.Grant(ctx, "alice", "orders-api", []string{"o2", "o1"}))
		must(t, s.Grant(ctx, "alice", "billing-api", []string{"b"}))
		all, err := s.List(ctx, consent.Filter{})
		must(t, err)
		var got []string
		for _, c := range all {
			got = append(got, c.User+"/"+c.Service)
		}
		want(t, got, []string{"alice/billing-api", "alice/orders-api", "bob/orders-api"})
		want(t, all[1].Scopes, []string{"o1", "o2"})
		bySvc, err := s.List(ctx, consent.Filter{Service: "orders-api"})
		must(t, err)
		if len(bySvc) != 2 {
			t.Fatalf("List(service) = %v, want 2", bySvc)
		}
		none, err := s.List(ctx, consent.Filter{User: "carol"})
		must(t, err)
		if len(none) != 0 {
			t.Fatalf("List(carol) = %v, want none", none)
		}
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func want(t *testing.T, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}
