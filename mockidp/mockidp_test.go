package mockidp_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/consent"
	"github.com/idtx/idtx/idp"
	"github.com/idtx/idtx/mockidp"
	"github.com/idtx/idtx/oauth"
	"github.com/idtx/idtx/store"
)

// The embedded JWKS is the public half of the embedded key: a mock token
// validates under the mock config's IDP.
func TestMockTokenValidatesUnderMockConfig(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cfg, reg := mockRegistry(t, now)
	tok, err := mockidp.JWT(mockidp.TokenOptions{Sub: "dave", Scope: "x y", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	id, err := reg.Validate(t.Context(), tok, oauth.TokenTypeJWT)
	if err != nil {
		t.Fatal(err)
	}
	if id.IDP != mockidp.Name || id.Subject != "dave" || len(id.Scopes) != 2 {
		t.Fatalf("identity %+v", id)
	}
	if cfg.IDPs[0].Issuer != mockidp.Issuer || cfg.IDPs[0].Type != config.IDPTypeJWT {
		t.Fatalf("mock IDP %+v", cfg.IDPs[0])
	}
}

func TestSeedConsentsIsIdempotent(t *testing.T) {
	s := store.NewMemory()
	ctx := context.Background()
	for range 2 {
		if err := mockidp.SeedConsents(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	list, _ := s.List(ctx, consent.Filter{})
	if len(list) != 3 {
		t.Fatalf("seeded %+v, want alice of each of the mock's JWT and SAML IDPs, and carol of the JWT IDP", list)
	}
	for i, want := range []struct{ idp, user string }{{mockidp.Name, "alice"}, {mockidp.Name, "carol"}, {mockidp.SAMLName, "alice"}} {
		if c := list[i]; c.IDP != want.idp || c.User != want.user || c.Service != "billing-api" || len(c.Scopes) != 1 || c.Scopes[0] != "billing:read" {
			t.Errorf("seeded %+v, want %s of %s for billing-api billing:read", c, want.user, want.idp)
		}
	}
	// Every seeded IDP is one the mock trusts.
	cfg, err := mockidp.Config()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range list {
		if !slices.ContainsFunc(cfg.IDPs, func(d config.IDP) bool { return d.Name == c.IDP }) {
			t.Errorf("seeded consent of IDP %q, which the mock config does not trust", c.IDP)
		}
	}
}

// Mock SAML assertions of both versions validate under the mock config,
// with --claim values as mapped claims.
func TestMockSAMLValidatesUnderMockConfig(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	_, reg := mockRegistry(t, now)
	for version, tokenType := range map[int]string{1: oauth.TokenTypeSAML1, 2: oauth.TokenTypeSAML2} {
		tok, err := mockidp.SAML(mockidp.TokenOptions{Sub: "erin", Scope: "a b", Now: now, Claims: map[string]any{"groups": []any{"ops", "dev"}}}, version)
		if err != nil {
			t.Fatal(err)
		}
		id, err := reg.Validate(t.Context(), tok, tokenType)
		if err != nil {
			t.Fatalf("SAML %d: %v", version, err)
		}
		g, _ := id.Claims["groups"].([]any)
		if id.IDP != mockidp.SAMLName || id.Subject != "erin" || len(g) != 2 || strings.Join(id.Scopes, " ") != "a b" {
			t.Fatalf("SAML %d identity %+v", version, id)
		}
		if !id.Expiry.Equal(now.Add(time.Hour)) {
			t.Errorf("SAML %d expiry %v", version, id.Expiry)
		}
	}
}

// mockRegistry is the mock config and its IDPs, with the clock at now.
func mockRegistry(t *testing.T, now time.Time) (*config.Config, *idp.Registry) {
	t.Helper()
	cfg, err := mockidp.Config()
	if err != nil {
		t.Fatal(err)
	}
	reg, err := idp.FromConfig(t.Context(), cfg.IDPs, idp.Options{Clock: func() time.Time { return now }, ReadFile: cfg.ReadFile})
	if err != nil {
		t.Fatal(err)
	}
	return cfg, reg
}
