package idp_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/idtx/idtx/idp"
	"github.com/idtx/idtx/oauth"
)

func TestLookup(t *testing.T) {
	claims := map[string]any{
		"https://example.com/roles": []any{"admin"},
		"realm_access":              map[string]any{"roles": []any{"a", "b"}},
		"a.b":                       "top",
		"a":                         map[string]any{"b": "nested"},
		"email":                     "alice@example.com",
		"kubernetes.io":             map[string]any{"namespace": "ci", "serviceaccount": map[string]any{"name": "builder"}},
	}
	tests := []struct {
		path string
		want any
	}{
		{"https://example.com/roles", []any{"admin"}}, // Auth0: the exact top-level name
		{"realm_access.roles", []any{"a", "b"}},       // Keycloak: nested
		{"a.b", "top"},                                // an exact top-level name wins
		{"email", "alice@example.com"},
		{"kubernetes.io.namespace", "ci"}, // a member name holding a dot
		{"kubernetes.io.serviceaccount.name", "builder"},
		{"kubernetes.io.missing", nil},
		{"realm_access.missing", nil},
		{"email.x", nil}, // not an object
		{"missing", nil},
	}
	for _, tt := range tests {
		got, ok := idp.Lookup(claims, tt.path)
		if fmt.Sprint(got) != fmt.Sprint(tt.want) || ok != (tt.want != nil) {
			t.Errorf("Lookup(%q) = %v, %v; want %v", tt.path, got, ok, tt.want)
		}
	}
}

// Claim mapping for jwt IDPs: groups, roles, email and scope in one shape
// whatever the IDP keeps them as.
func TestJWTClaimMapping(t *testing.T) {
	s := pooledSigner(0)
	keys, _ := idp.StaticKeys(s.jwks)
	validate := func(t *testing.T, m idp.ClaimMap, extra jwt.MapClaims) *idp.Identity {
		t.Helper()
		v, err := idp.NewJWT(idp.JWTConfig{Name: "corp", Issuer: confIssuer, Audiences: []string{"sts"}, Algorithms: []string{"RS256"},
			Clock: func() time.Time { return now }, Keys: keys, Claims: m})
		if err != nil {
			t.Fatal(err)
		}
		c := jwt.MapClaims{"iss": confIssuer, "sub": "alice", "aud": "sts", "exp": now.Unix() + 3600}
		for k, x := range extra {
			c[k] = x
		}
		id, err := v.Validate(t.Context(), s.sign(t, c), oauth.TokenTypeJWT)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	t.Run("keycloak", func(t *testing.T) {
		id := validate(t, idp.ClaimMap{"groups": "realm_access.roles", "email": "email", "scope": "scope"}, jwt.MapClaims{
			"realm_access": map[string]any{"roles": []any{"ops", "dev"}}, "email": "alice@example.com", "scope": "openid orders:read",
		})
		if fmt.Sprint(id.Claims["groups"]) != "[ops dev]" || id.Claims["email"] != "alice@example.com" || !slices.Equal(id.Scopes, []string{"openid", "orders:read"}) {
			t.Errorf("claims %v scopes %v", id.Claims, id.Scopes)
		}
	})
	t.Run("entra scp string and roles", func(t *testing.T) {
		id := validate(t, idp.ClaimMap{"roles": "roles", "scope": "scp", "groups": "groups"}, jwt.MapClaims{
			"roles": []any{"Orders.Read"}, "scp": "orders.read orders.write", "groups": "0f1e-single",
		})
		if !slices.Equal(id.Scopes, []string{"orders.read", "orders.write"}) || id.Claims["scope"] != "orders.read orders.write" ||
			fmt.Sprint(id.Claims["roles"]) != "[Orders.Read]" || fmt.Sprint(id.Claims["groups"]) != "[0f1e-single]" {
			t.Errorf("claims %v scopes %v", id.Claims, id.Scopes)
		}
	})
	t.Run("okta scp list", func(t *testing.T) {
		id := validate(t, idp.ClaimMap{"scope": "scp"}, jwt.MapClaims{"scp": []any{"a", "b"}, "scope": "ignored"})
		if !slices.Equal(id.Scopes, []string{"a", "b"}) || id.Claims["scope"] != "a b" {
			t.Errorf("claims %v scopes %v", id.Claims, id.Scopes)
		}
	})
	t.Run("auth0 namespaced", func(t *testing.T) {
		id := validate(t, idp.ClaimMap{"roles": "https://example.com/roles", "groups": "https://example.com/groups"}, jwt.MapClaims{
			"https://example.com/roles": []any{"admin"}, "https://example.com/groups": []any{"eng"},
		})
		if fmt.Sprint(id.Claims["roles"]) != "[admin]" || fmt.Sprint(id.Claims["groups"]) != "[eng]" {
			t.Errorf("claims %v", id.Claims)
		}
	})
	t.Run("absent path removes the canonical claim", func(t *testing.T) {
		id := validate(t, idp.ClaimMap{"groups": "realm_access.roles", "scope": "scp"}, jwt.MapClaims{
			"groups": []any{"admins"}, "scope": "a b",
		})
		if _, ok := id.Claims["groups"]; ok {
			t.Errorf("groups %v survives a mapping whose path is absent", id.Claims["groups"])
		}
		if len(id.Scopes) != 0 {
			t.Errorf("scopes %v, want none: the mapped scp is absent", id.Scopes)
		}
	})
	// The issue-16 case: groups from the token's roles, roles from
	// realm_access.roles. Read in map order, groups was sometimes the
	// mapped roles ([admin]) and an admin-only rule let a non-admin in.
	t.Run("mappings read the token's own claims, in any order", func(t *testing.T) {
		m := idp.ClaimMap{"groups": "roles", "roles": "realm_access.roles", "email": "groups"}
		for i := range 64 {
			id := validate(t, m, jwt.MapClaims{
				"roles": []any{"viewer"}, "realm_access": map[string]any{"roles": []any{"admin"}}, "groups": "eng",
			})
			if g, r, e := fmt.Sprint(id.Claims["groups"]), fmt.Sprint(id.Claims["roles"]), id.Claims["email"]; g != "[viewer]" || r != "[admin]" || e != "eng" {
				t.Fatalf("run %d: groups %s roles %s email %v, want [viewer] [admin] eng", i, g, r, e)
			}
		}
	})
	t.Run("no mapping keeps scope or scp", func(t *testing.T) {
		id := validate(t, nil, jwt.MapClaims{"scp": []any{"x"}})
		if !slices.Equal(id.Scopes, []string{"x"}) {
			t.Errorf("scopes %v", id.Scopes)
		}
	})
}
