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
		ClientID: "c", Scope: "x", IDP: "p", Act: map[string]any{"sub": "b"}, MayAct: map[string]any{"sub": "g"},
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
	if got["sub"] != "s" || got["scope"] != "x" || got["dept"] != "sales" || strings.Count(string(data), `"sub"`) != 3 { // sub, act.sub, may_act.sub
		t.Fatalf("claims = %s", data)
	}
}

// The claims are encoded by hand on the hot path: byte for byte what
// encoding/json writes for the same struct tags, whatever the strings
// hold, and a token Sign makes reads back as the claims.
func TestAccessClaimsJSON(t *testing.T) {
	type plain struct { // AccessClaims' fields and tags, without its MarshalJSON
		jwt.RegisteredClaims
		ClientID string         `json:"client_id"`
		Scope    string         `json:"scope,omitempty"`
		IDP      string         `json:"idp,omitempty"`
		Act      map[string]any `json:"act,omitempty"`
		MayAct   any            `json:"may_act,omitempty"`
	}
	frac := jwt.NewNumericDate(t0.Add(1500 * time.Millisecond))
	cases := []exchange.AccessClaims{
		{ClientID: ""},
		{RegisteredClaims: jwt.RegisteredClaims{Issuer: "http://127.0.0.1:1/", Subject: "alice", Audience: jwt.ClaimStrings{"billing-api"},
			ExpiresAt: jwt.NewNumericDate(t0.Add(5 * time.Minute)), IssuedAt: jwt.NewNumericDate(t0), ID: "abc_-"},
			ClientID: "demo-client", Scope: "billing:read orders:read", IDP: "mock"},
		{RegisteredClaims: jwt.RegisteredClaims{Subject: "a\"b\\c</script>&\u2028\x00\x7f\xff é 𝄞", Audience: jwt.ClaimStrings{"x", "y\n"},
			NotBefore: frac, IssuedAt: jwt.NewNumericDate(time.Unix(-1, 0))},
			ClientID: "c\t", Act: map[string]any{"sub": "svc", "act": map[string]any{"sub": "<old>"}},
			MayAct: map[string]any{"sub": "gw", "iss": "https://idp.test"}},
		{ClientID: "c", MayAct: json.RawMessage("null")},
	}
	for _, odd := range []string{"\"", "\\", "<", ">", "&", "\x00", "\x1f", "\x7f", "\xff", "é", "\u2028", "\u2029"} {
		cases = append(cases, exchange.AccessClaims{RegisteredClaims: jwt.RegisteredClaims{Subject: "a" + odd + "b"}, ClientID: odd})
	}
	for _, c := range cases {
		want, err := json.Marshal(plain{c.RegisteredClaims, c.ClientID, c.Scope, c.IDP, c.Act, c.MayAct})
		if err != nil {
			t.Fatal(err)
		}
		got, err := exchange.ClaimsJSON(&c)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("claims\n got %s\nwant %s", got, want)
		}
	}

	signer, err := exchange.NewEphemeralSigner("ES256")
	if err != nil {
		t.Fatal(err)
	}
	c := &exchange.AccessClaims{RegisteredClaims: jwt.RegisteredClaims{Subject: "<é>", Audience: jwt.ClaimStrings{"a"},
		ExpiresAt: jwt.NewNumericDate(t0)}, ClientID: "c", Extra: map[string]any{"tenant": "t1", "n": 2}}
	tok, err := signer.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	var back jwt.MapClaims
	parsed, err := jwt.ParseWithClaims(tok, &back, func(*jwt.Token) (any, error) {
		return signer.KeySet().Key(context.Background(), &jwt.Token{Header: map[string]any{"kid": signer.KeyID()}, Method: jwt.SigningMethodES256})
	}, jwt.WithoutClaimsValidation())
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Header["typ"] != "at+jwt" || parsed.Header["kid"] != signer.KeyID() || back["sub"] != "<é>" ||
		back["tenant"] != "t1" || back["n"] != 2.0 || back["client_id"] != "c" {
		t.Fatalf("header %v claims %v", parsed.Header, back)
	}
}

// The token response is encoded by hand: byte for byte what
// json.Encoder writes for the same struct.
func TestWriteResult(t *testing.T) {
	for _, res := range []exchange.Result{
		{AccessToken: "a.b.c", IssuedTokenType: "urn:ietf:params:oauth:token-type:access_token", TokenType: "Bearer", ExpiresIn: 300, Scope: "x y"},
		{AccessToken: "a<b>&\"\\é\x01", TokenType: "N_A", ExpiresIn: -1},
	} {
		var want strings.Builder
		if err := json.NewEncoder(&want).Encode(res); err != nil {
			t.Fatal(err)
		}
		if got := exchange.ResultJSON(&res); string(got) != want.String() {
			t.Errorf("got %s\nwant %s", got, want.String())
		}
	}
}
