package exchange_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/idtx/idtx/exchange"
	"github.com/idtx/idtx/keyset"
	"github.com/idtx/idtx/store"
)

func jwksKids(t *testing.T, jwks []byte) map[string]bool {
	t.Helper()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &set); err != nil {
		t.Fatal(err)
	}
	kids := map[string]bool{}
	for _, k := range set.Keys {
		kids[k.Kid] = true
	}
	return kids
}

// A resource server that caches /jwks for its max-age never sees a token
// whose kid it cannot find, across a rotation made by `idtx keys rotate`
// at an arbitrary moment (another process writing to the store), and the
// old key leaves /jwks once every token it signed has expired. Resource
// servers fetch /jwks at every phase of the server's refresh cycle.
func TestRotationNeverStrandsACachedJWKS(t *testing.T) {
	ctx := context.Background()
	now := t0
	clock := func() time.Time { return now }
	store := store.NewMemory().Keys()
	const lifetime = 10 * time.Minute
	p := keyset.Policy{Alg: "ES256", MaxTokenLifetime: lifetime}
	s, err := exchange.NewKeySetSigner(ctx, store, p, clock)
	if err != nil {
		t.Fatal(err)
	}
	first := s.KeyID()

	// Resource server i first fetches /jwks at +5s·i, then at each expiry.
	type rs struct {
		fetched time.Time
		kids    map[string]bool
	}
	var servers []*rs
	for phase := time.Duration(0); phase < keyset.JWKSMaxAge; phase += 5 * time.Second {
		servers = append(servers, &rs{fetched: t0.Add(phase - keyset.JWKSMaxAge)})
	}
	if len(servers) != 60 {
		t.Fatalf("%d resource servers", len(servers))
	}
	type token struct {
		kid string
		exp time.Time
	}
	var tokens []token
	rotateAt := t0.Add(17*time.Minute + 3*time.Second)
	var next string
	step := 5 * time.Second
	for now = t0; now.Before(t0.Add(time.Hour)); now = now.Add(step) {
		if now.Sub(t0)%keyset.RefreshInterval == 0 {
			if err := s.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if next == "" && !now.Before(rotateAt) {
			k, err := keyset.Rotate(ctx, store, now, now.Add(keyset.PublishLead), "ES256", p)
			if err != nil {
				t.Fatal(err)
			}
			next = k.ID
		}
		tok, err := s.Sign(jwt.MapClaims{"sub": "alice", "exp": now.Add(lifetime).Unix()})
		if err != nil {
			t.Fatal(err)
		}
		parsed, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, token{parsed.Header["kid"].(string), now.Add(lifetime)})
		for i, r := range servers {
			if now.Before(r.fetched.Add(keyset.JWKSMaxAge)) && r.kids == nil {
				continue // not started yet
			}
			if !now.Before(r.fetched.Add(keyset.JWKSMaxAge)) {
				r.fetched, r.kids = now, jwksKids(t, s.JWKS())
			}
			for _, tk := range tokens {
				if now.Before(tk.exp) && !r.kids[tk.kid] {
					t.Fatalf("at +%s resource server %d (fetched /jwks at +%s) cannot find kid %s of a token valid until +%s",
						now.Sub(t0), i, r.fetched.Sub(t0), tk.kid, tk.exp.Sub(t0))
				}
			}
		}
	}
	if next == "" || s.KeyID() != next {
		t.Fatalf("signing with %s at the end, want the rotated key %s", s.KeyID(), next)
	}
	kids := jwksKids(t, s.JWKS())
	if kids[first] || !kids[next] || len(kids) != 1 {
		t.Fatalf("/jwks at the end has %v: the first key %s should have retired", kids, first)
	}
}

// The self-IDP verifies with every published key, and refuses a kid that
// has retired, or a token whose alg is not its key's.
func TestSignerKeySetFollowsPublication(t *testing.T) {
	ctx := context.Background()
	now := t0
	store := store.NewMemory().Keys()
	p := keyset.Policy{Alg: "ES256", MaxTokenLifetime: 5 * time.Minute}
	s, err := exchange.NewKeySetSigner(ctx, store, p, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	old, err := s.Sign(jwt.MapClaims{"sub": "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keyset.Rotate(ctx, store, now, now.Add(time.Minute), "EdDSA", p); err != nil {
		t.Fatal(err)
	}
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	verify := func(tok string) error {
		_, err := jwt.Parse(tok, func(t *jwt.Token) (any, error) { return s.KeySet().Key(ctx, t) },
			jwt.WithValidMethods(s.Algs()), jwt.WithoutClaimsValidation())
		return err
	}
	now = t0.Add(2 * time.Minute)
	if s.Alg() != "EdDSA" {
		t.Fatalf("alg %s after the rotation, want EdDSA", s.Alg())
	}
	fresh, _ := s.Sign(jwt.MapClaims{"sub": "alice"})
	for _, tok := range []string{old, fresh} {
		if err := verify(tok); err != nil {
			t.Fatalf("a published key's token: %v", err)
		}
	}
	// The old key's header relabelled with the new key's kid: the key
	// fixes the algorithm.
	oldKid := strings.Split(old, ".")
	hdr, _ := json.Marshal(map[string]string{"alg": "ES256", "typ": "at+jwt", "kid": s.KeyID()})
	swapped := strings.Join([]string{base64.RawURLEncoding.EncodeToString(hdr), oldKid[1], oldKid[2]}, ".")
	if err := verify(swapped); err == nil || !strings.Contains(err.Error(), "signs EdDSA, not ES256") {
		t.Fatalf("a token with the wrong alg for its kid: %v", err)
	}
	now = t0.Add(time.Minute + 5*time.Minute)
	if err := verify(old); err == nil || !strings.Contains(err.Error(), "is not in the IDP's key set") {
		t.Fatalf("a retired key's token: %v", err)
	}
}
