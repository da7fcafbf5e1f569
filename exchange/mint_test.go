package exchange_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/idtx/idtx/exchange"
	"github.com/idtx/idtx/oauth"
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
		Groups: []any{"staff"}, Roles: []any{"r"}, Entitlements: []any{"e"}, Carried: []string{"groups", "roles", "entitlements"},
		Extra: map[string]any{"sub": "mallory", "scope": "admin", "dept": "sales", "groups": []any{"admin"}},
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
	if got["sub"] != "s" || got["scope"] != "x" || got["dept"] != "sales" || strings.Count(string(data), `"sub"`) != 3 || // sub, act.sub, may_act.sub
		strings.Count(string(data), `"groups"`) != 2 || !strings.Contains(string(data), `"groups":["staff"]`) { // groups, and carried's name of it
		t.Fatalf("claims = %s", data)
	}
}

// The claims are encoded by hand on the hot path: byte for byte what
// encoding/json writes for the same struct tags, whatever the strings
// hold, and a token Sign makes reads back as the claims.
func TestAccessClaimsJSON(t *testing.T) {
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
		want, err := exchange.ClaimsStdJSON(&c)
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

// Every field of AccessClaims, set by reflection to a value that is not
// omitted, reaches the token as encoding/json would write it: a claim
// added to the struct and forgotten by appendJSON fails here, and a field
// of a kind this test cannot set fails here too, until it is taught.
func TestAccessClaimsEveryField(t *testing.T) {
	for _, audiences := range []int{1, 2} { // one aud is a string, two an array
		var c exchange.AccessClaims
		n := 0
		fillEvery(t, reflect.ValueOf(&c).Elem(), "AccessClaims", audiences, &n)
		if c.Extra == nil || c.MayAct == nil || c.RegisteredClaims.ExpiresAt == nil {
			t.Fatalf("not every field set: %+v", c)
		}
		fast, err := exchange.ClaimsJSON(&c)
		if err != nil {
			t.Fatal(err)
		}
		std, err := exchange.ClaimsStdJSON(&c)
		if err != nil {
			t.Fatal(err)
		}
		var got, want map[string]any
		if err := json.Unmarshal(fast, &got); err != nil {
			t.Fatalf("%v: %s", err, fast)
		}
		if err := json.Unmarshal(std, &want); err != nil {
			t.Fatal(err)
		}
		for k, v := range c.Extra { // json:"-": appended after the struct's claims
			b, _ := json.Marshal(v)
			var back any
			json.Unmarshal(b, &back)
			want[k] = back
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("fast encoder\n got %s\nwant %s (+ Extra %v)", fast, std, c.Extra)
		}
		// Every field was set, so none is omitted: 7 registered claims,
		// client_id, scope, idp, act, may_act, groups, roles,
		// entitlements, carried, and the Extra claim.
		if len(got) != 17 {
			t.Errorf("%d claims, want 17: %s", len(got), fast)
		}
	}
}

// BenchmarkClaimsJSON is what the hand encoder saves on every mint: the
// claims of a typical issued token, by appendJSON and by encoding/json.
//
//	go test -run '^$' -bench ClaimsJSON -benchmem -cpu 1 ./exchange
func BenchmarkClaimsJSON(b *testing.B) {
	c := &exchange.AccessClaims{RegisteredClaims: jwt.RegisteredClaims{Issuer: "http://127.0.0.1:8080", Subject: "alice",
		Audience: jwt.ClaimStrings{"billing-api"}, ExpiresAt: jwt.NewNumericDate(t0.Add(5 * time.Minute)),
		IssuedAt: jwt.NewNumericDate(t0), ID: "0123456789abcdefghijkl"},
		ClientID: "demo-client", Scope: "billing:read", IDP: "corp", Act: map[string]any{"sub": "gateway"}}
	b.Run("append", func(b *testing.B) {
		for b.Loop() {
			if _, err := exchange.ClaimsJSON(c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			if _, err := exchange.ClaimsStdJSON(c); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// fillEvery sets every field below v to a distinct value that encoding/json
// does not omit.
func fillEvery(t *testing.T, v reflect.Value, path string, audiences int, n *int) {
	t.Helper()
	*n++
	id := strconv.Itoa(*n)
	switch {
	case v.Type() == reflect.TypeFor[*jwt.NumericDate]():
		v.Set(reflect.ValueOf(jwt.NewNumericDate(time.Unix(int64(1_700_000_000+*n), 0))))
	case v.Type() == reflect.TypeFor[map[string]any]():
		if strings.HasSuffix(path, ".Extra") {
			v.Set(reflect.ValueOf(map[string]any{"tenant" + id: "t<" + id + ">"}))
		} else {
			v.Set(reflect.ValueOf(map[string]any{"sub": "actor" + id, "act": map[string]any{"sub": "older"}}))
		}
	case v.Kind() == reflect.Interface:
		v.Set(reflect.ValueOf(map[string]any{"sub": "may" + id, "iss": "https://idp.test/"}))
	case v.Kind() == reflect.String:
		v.SetString("v" + id + "\"&é")
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		s := reflect.MakeSlice(v.Type(), audiences, audiences)
		for i := range audiences {
			s.Index(i).SetString("aud" + id + "-" + strconv.Itoa(i))
		}
		v.Set(s)
	case v.Kind() == reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() {
				t.Fatalf("%s.%s is unexported: encoding/json would not write it", path, f.Name)
			}
			fillEvery(t, v.Field(i), path+"."+f.Name, audiences, n)
		}
	default:
		t.Fatalf("%s: a %s field; teach fillEvery to set it", path, v.Type())
	}
}

// The token response is encoded by hand: byte for byte what
// json.Encoder writes for the same struct.
func TestWriteResult(t *testing.T) {
	for _, res := range []oauth.Result{
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
