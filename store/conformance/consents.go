package conformance

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/idtx/idtx/consent"
)

// RunConsents checks the store.Consents contract against stores made
// fresh by open.
func RunConsents(t *testing.T, open Opener) {
	ctx := context.Background()
	t.Run("missing on empty store", func(t *testing.T) {
		s := open(t)
		got, err := s.Missing(ctx, "corp", "alice", "billing-api", []string{"billing:read", "billing:write"})
		must(t, err)
		want(t, got, []string{"billing:read", "billing:write"})
	})
	t.Run("grant is idempotent and additive", func(t *testing.T) {
		s := open(t)
		must(t, s.Grant(ctx, "corp", "alice", "billing-api", []string{"billing:read"}))
		must(t, s.Grant(ctx, "corp", "alice", "billing-api", []string{"billing:read", "billing:write"}))
		got, err := s.Missing(ctx, "corp", "alice", "billing-api", []string{"billing:write", "billing:admin", "billing:read"})
		must(t, err)
		want(t, got, []string{"billing:admin"})
		list, err := s.List(ctx, consent.Filter{})
		must(t, err)
		if len(list) != 1 || list[0].IDP != "corp" || list[0].User != "alice" || list[0].Service != "billing-api" {
			t.Fatalf("List = %+v, want one consent of corp's alice for billing-api", list)
		}
		want(t, list[0].Scopes, []string{"billing:read", "billing:write"})
	})
	t.Run("consent is per user and service", func(t *testing.T) {
		s := open(t)
		must(t, s.Grant(ctx, "corp", "alice", "billing-api", []string{"x"}))
		for _, c := range [][2]string{{"bob", "billing-api"}, {"alice", "orders-api"}, {"Alice", "billing-api"}} {
			got, err := s.Missing(ctx, "corp", c[0], c[1], []string{"x"})
			must(t, err)
			want(t, got, []string{"x"})
		}
	})
	// The attack: a user of a second trusted IDP with the same subject
	// string must not ride on the first IDP's user's consent.
	t.Run("consent is per idp", func(t *testing.T) {
		s := open(t)
		must(t, s.Grant(ctx, "corp", "alice", "billing-api", []string{"x"}))
		for _, idp := range []string{"partner", "Corp", "corp ", "idtx"} {
			got, err := s.Missing(ctx, idp, "alice", "billing-api", []string{"x"})
			must(t, err)
			want(t, got, []string{"x"})
		}
		got, err := s.Missing(ctx, "corp", "alice", "billing-api", []string{"x"})
		must(t, err)
		want(t, got, nil)
		n, err := s.Revoke(ctx, "partner", "alice", "billing-api", nil)
		must(t, err)
		if n != 0 {
			t.Fatalf("revoking partner's alice removed %d grant(s), want 0", n)
		}
		got, err = s.Missing(ctx, "corp", "alice", "billing-api", []string{"x"})
		must(t, err)
		want(t, got, nil)
	})
	t.Run("a consent names whose it is", func(t *testing.T) {
		s := open(t)
		for _, k := range [][3]string{{"", "alice", "billing-api"}, {"corp", "", "billing-api"}, {"corp", "alice", ""}} {
			if err := s.Grant(ctx, k[0], k[1], k[2], []string{"x"}); !errors.Is(err, consent.ErrEmptyKey) {
				t.Errorf("Grant(%q) = %v, want ErrEmptyKey", k, err)
			}
			if _, err := s.Revoke(ctx, k[0], k[1], k[2], nil); !errors.Is(err, consent.ErrEmptyKey) {
				t.Errorf("Revoke(%q) = %v, want ErrEmptyKey", k, err)
			}
		}
		list, err := s.List(ctx, consent.Filter{})
		must(t, err)
		if len(list) != 0 {
			t.Fatalf("List = %+v after refused grants", list)
		}
	})
	// Revoking named scopes for one IDP's user leaves another IDP's user
	// of the same name, and other users and services, alone.
	t.Run("revoking scopes is per idp, user and service", func(t *testing.T) {
		s := open(t)
		must(t, s.Grant(ctx, "corp", "alice", "billing-api", []string{"x", "y"}))
		for _, k := range [][3]string{{"partner", "alice", "billing-api"}, {"corp", "bob", "billing-api"}, {"corp", "alice", "orders-api"}} {
			n, err := s.Revoke(ctx, k[0], k[1], k[2], []string{"x"})
			must(t, err)
			if n != 0 {
				t.Fatalf("Revoke(%q, x) removed %d grant(s), want 0", k, n)
			}
		}
		got, err := s.Missing(ctx, "corp", "alice", "billing-api", []string{"x", "y"})
		must(t, err)
		want(t, got, nil)
	})
	t.Run("revoke some scopes", func(t *testing.T) {
		s := open(t)
		must(t, s.Grant(ctx, "corp", "alice", "billing-api", []string{"a", "b", "c"}))
		n, err := s.Revoke(ctx, "corp", "alice", "billing-api", []string{"b", "zzz"})
		must(t, err)
		if n != 1 {
			t.Fatalf("Revoke removed %d, want 1 (b; zzz was never granted)", n)
		}
		got, err := s.Missing(ctx, "corp", "alice", "billing-api", []string{"a", "b", "c"})
		must(t, err)
		want(t, got, []string{"b"})
		n, err = s.Revoke(ctx, "corp", "alice", "billing-api", []string{"b"})
		must(t, err)
		if n != 0 {
			t.Fatalf("Revoke of a revoked scope removed %d, want 0", n)
		}
	})
	t.Run("revoke all scopes", func(t *testing.T) {
		s := open(t)
		must(t, s.Grant(ctx, "corp", "alice", "billing-api", []string{"a", "b"}))
		must(t, s.Grant(ctx, "corp", "alice", "orders-api", []string{"a"}))
		must(t, s.Grant(ctx, "partner", "alice", "billing-api", []string{"a"}))
		n, err := s.Revoke(ctx, "corp", "alice", "billing-api", nil)
		must(t, err)
		if n != 2 {
			t.Fatalf("Revoke removed %d, want 2", n)
		}
		list, err := s.List(ctx, consent.Filter{User: "alice"})
		must(t, err)
		if got := keys(list); !slices.Equal(got, []string{"corp/alice/orders-api", "partner/alice/billing-api"}) {
			t.Fatalf("List = %q, want corp's orders-api and partner's billing-api", got)
		}
		n, err = s.Revoke(ctx, "corp", "alice", "billing-api", nil)
		must(t, err)
		if n != 0 {
			t.Fatalf("second Revoke removed %d, want 0", n)
		}
	})
	t.Run("list filters and sorts by idp, user, service", func(t *testing.T) {
		s := open(t)
		must(t, s.Grant(ctx, "partner", "alice", "billing-api", []string{"b"}))
		must(t, s.Grant(ctx, "corp", "bob", "orders-api", []string{"o"}))
		must(t, s.Grant(ctx, "corp", "alice", "orders-api", []string{"o2", "o1"}))
		must(t, s.Grant(ctx, "corp", "alice", "billing-api", []string{"b"}))
		must(t, s.Grant(ctx, "acme", "zed", "orders-api", []string{"o"}))
		all, err := s.List(ctx, consent.Filter{})
		must(t, err)
		want(t, keys(all), []string{"acme/zed/orders-api", "corp/alice/billing-api", "corp/alice/orders-api", "corp/bob/orders-api", "partner/alice/billing-api"})
		want(t, all[2].Scopes, []string{"o1", "o2"})
		for _, c := range []struct {
			f    consent.Filter
			want []string
		}{
			{consent.Filter{Service: "orders-api"}, []string{"acme/zed/orders-api", "corp/alice/orders-api", "corp/bob/orders-api"}},
			{consent.Filter{IDP: "corp"}, []string{"corp/alice/billing-api", "corp/alice/orders-api", "corp/bob/orders-api"}},
			{consent.Filter{IDP: "partner"}, []string{"partner/alice/billing-api"}},
			{consent.Filter{IDP: "corp", User: "alice", Service: "billing-api"}, []string{"corp/alice/billing-api"}},
			{consent.Filter{User: "alice", Service: "billing-api"}, []string{"corp/alice/billing-api", "partner/alice/billing-api"}},
			{consent.Filter{IDP: "nobody"}, nil},
			{consent.Filter{User: "carol"}, nil},
		} {
			got, err := s.List(ctx, c.f)
			must(t, err)
			if k := keys(got); !slices.Equal(k, c.want) {
				t.Errorf("List(%+v) = %q, want %q", c.f, k, c.want)
			}
		}
	})
}

// keys names each consent idp/user/service.
func keys(list []consent.Consent) []string {
	var out []string
	for _, c := range list {
		out = append(out, c.IDP+"/"+c.User+"/"+c.Service)
	}
	return out
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
