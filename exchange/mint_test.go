package exchange_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/idtx/idtx/exchange"
	"github.com/idtx/idtx/workflow"
)

// With no key_file the key is generated once into IDTX_HOME, mode 0600,
// and the same key (same kid) is used at the next start.
func TestSignerGeneratesKeyOnce(t *testing.T) {
	for _, alg := range []string{"ES256", "RS256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			home := filepath.Join(t.TempDir(), "home")
			s1, err := exchange.LoadSigner(alg, "", home)
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(filepath.Join(home, "sts-"+map[string]string{"ES256": "es256", "RS256": "rs256", "EdDSA": "eddsa"}[alg]+".pem"))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("key mode %v, want 0600", fi.Mode().Perm())
			}
			s2, err := exchange.LoadSigner(alg, "", home)
			if err != nil {
				t.Fatal(err)
			}
			if s1.KeyID() != s2.KeyID() || s1.Alg() != alg {
				t.Fatalf("kid %s then %s", s1.KeyID(), s2.KeyID())
			}
			tok, err := s1.Sign(jwt.MapClaims{"sub": "x", "exp": time.Now().Add(time.Minute).Unix()})
			if err != nil {
				t.Fatal(err)
			}
			ks := s2.KeySet()
			parsed, err := jwt.Parse(tok, func(t *jwt.Token) (any, error) { return ks.Key(context.Background(), t) }, jwt.WithValidMethods([]string{alg}))
			if err != nil {
				t.Fatal(err)
			}
			if parsed.Header["typ"] != "at+jwt" || parsed.Header["kid"] != s1.KeyID() {
				t.Errorf("header %v", parsed.Header)
			}
		})
	}
}

func TestSignerRefusesMismatchedKey(t *testing.T) {
	home := t.TempDir()
	if _, err := exchange.LoadSigner("ES256", "", home); err != nil {
		t.Fatal(err)
	}
	if _, err := exchange.LoadSigner("RS256", filepath.Join(home, "sts-es256.pem"), ""); err == nil {
		t.Fatal("an EC key was accepted for RS256")
	}
	if _, err := exchange.LoadSigner("ES256", filepath.Join(home, "missing.pem"), ""); err == nil {
		t.Fatal("a missing key_file was accepted")
	}
}

// TestAccessClaimsAreReserved: every claim the STS sets is one a workflow
// may not set, so Extra can never replace it, even twice in one object.
func TestAccessClaimsAreReserved(t *testing.T) {
	c := exchange.AccessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: "i", Subject: "s", Audience: jwt.ClaimStrings{"a"}, ExpiresAt: jwt.NewNumericDate(t0),
			NotBefore: jwt.NewNumericDate(t0), IssuedAt: jwt.NewNumericDate(t0), ID: "j",
		},
		ClientID: "c", Scope: "x", IDP: "p", Act: map[string]any{"sub": "b"},
		Extra: map[string]any{"sub": "mallory", "scope": "admin", "dept": "sales"},
	}
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("%s: %v", data, err)
	}
	for k := range got {
		if k != "dept" && !workflow.Reserved(k) {
			t.Errorf("claim %q is set by the STS but not reserved for workflows", k)
		}
	}
	if got["sub"] != "s" || got["scope"] != "x" || got["dept"] != "sales" || strings.Count(string(data), `"sub"`) != 2 { // sub, act.sub
		t.Fatalf("claims = %s", data)
	}
}
