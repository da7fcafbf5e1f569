package exchange_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/idtx/idtx/oauth"
	"github.com/idtx/idtx/store"
)

// Tests that kill mutants of the exchange's checks which the rest of the
// suite let live.

// Only the STS's own tokens may name the user's IDP in an idp claim: a
// token from another trusted IDP that carries "idp": "corp" is still a
// user of that IDP, and rides on none of corp's consents.
func TestIDPClaimOnlyFromOwnTokens(t *testing.T) {
	e := newEnv(t) // corp's alice has consented to billing:read
	tok := e.other.sign(t, e.claims(jwt.MapClaims{"iss": "https://other.test", "idp": "corp"}), nil)
	expectError(t, e.post("/token", e.form(tok, "audience", "billing-api", "scope", "billing:read")), 400, "consent_required",
		"alice of IDP other has not consented to billing:read for billing-api")
}

// Consent is checked for every target: with two audiences that both
// need consent for the scope, a consent for the first does not cover the
// second (RFC 8693 §2.1: the token is meant for each of them).
func TestConsentForEveryAudience(t *testing.T) {
	e := newEnvWith(t, store.NewMemory(), func(yaml string, _ map[string][]byte) string {
		return strings.Replace(yaml, "  - name: narrow-api\n", `  - name: ledger-api
    audience: ledger-api
    scopes: {billing:read: {consent: true}}
    token_lifetime: 5m
  - name: narrow-api
`, 1)
	})
	form := e.form(e.subject(nil), "audience", "billing-api", "scope", "billing:read")
	form.Add("audience", "ledger-api")
	expectError(t, e.post("/token", form), 400, "consent_required",
		"alice of IDP corp has not consented to billing:read for ledger-api")

	// Control: once alice has consented for ledger-api too, it passes.
	if err := e.store.Grant(t.Context(), "corp", "alice", "ledger-api", []string{"billing:read"}); err != nil {
		t.Fatal(err)
	}
	if r := e.post("/token", form); r.status != 200 {
		t.Fatalf("both consented: %d %v", r.status, r.body)
	}
}

// A client secret is only ever compared in constant time. A test that
// sends secrets cannot see a comparison turned into == or bytes.Equal, so
// this one reads the source: the digest of a plain secret (exchange's
// secretSum) and the argon2id key of a hashed one (secret's Params.key)
// are used only as arguments of subtle.ConstantTimeCompare, apart from
// being set, measured with len and tested against nil.
func TestClientSecretComparedInConstantTime(t *testing.T) {
	for _, c := range []struct{ dir, field string }{{".", "secretSum"}, {"../secret", "key"}} {
		t.Run(c.dir+" "+c.field, func(t *testing.T) { checkConstantTime(t, c.dir, c.field) })
	}
}

func checkConstantTime(t *testing.T, dir, field string) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	constantTime := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		allowed := map[ast.Expr]bool{}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				switch {
				case isSelector(n.Fun, "subtle", "ConstantTimeCompare"):
					for _, a := range n.Args {
						if isField(a, field) {
							allowed[a] = true
							constantTime++
						}
					}
				case isIdent(n.Fun, "len") && len(n.Args) == 1:
					allowed[n.Args[0]] = true
				}
			case *ast.BinaryExpr: // x.field != nil
				if isIdent(n.Y, "nil") {
					allowed[n.X] = true
				}
			case *ast.AssignStmt:
				for _, l := range n.Lhs {
					allowed[l] = true
				}
			}
			return true
		})
		ast.Inspect(f, func(n ast.Node) bool {
			if e, ok := n.(ast.Expr); ok && isField(e, field) && !allowed[e] {
				t.Errorf("%s: %s used outside subtle.ConstantTimeCompare", fset.Position(e.Pos()), field)
			}
			return true
		})
	}
	if constantTime == 0 {
		t.Fatalf("no subtle.ConstantTimeCompare of %s in %s: the secret is compared some other way", field, dir)
	}
}

func isField(e ast.Expr, name string) bool {
	s, ok := e.(*ast.SelectorExpr)
	return ok && s.Sel.Name == name
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

func isSelector(e ast.Expr, pkg, name string) bool {
	s, ok := e.(*ast.SelectorExpr)
	if !ok || s.Sel.Name != name {
		return false
	}
	id, ok := s.X.(*ast.Ident)
	return ok && id.Name == pkg
}

// A client assertion is taken with 30 s of clock skew (RFC 7523 §3
// allows "some small leeway"), and not a second more, on both ends of
// its window: nbf 30 s ahead passes, 31 s is refused; exp 29 s past
// passes, 30 s is refused.
func TestClientAssertionLeeway(t *testing.T) {
	e := newEnv(t)
	send := func(jti string, claims jwt.MapClaims) response {
		claims["jti"] = jti
		a := e.assertion(claims)
		return e.post("/token", e.form(e.subject(nil), "client_assertion_type", oauth.ClientAssertionTypeJWTBearer, "client_assertion", a))
	}
	for _, tt := range []struct {
		name   string
		claims jwt.MapClaims
		want   string // "" accepted
	}{
		{"nbf 30 s ahead", jwt.MapClaims{"nbf": e.now.Add(30 * time.Second).Unix()}, ""},
		{"nbf 31 s ahead", jwt.MapClaims{"nbf": e.now.Add(31 * time.Second).Unix()}, "client_assertion: token has invalid claims: token is not valid yet"},
		{"exp 29 s past", jwt.MapClaims{"iat": e.now.Add(-time.Minute).Unix(), "exp": e.now.Add(-29 * time.Second).Unix()}, ""},
		{"exp 30 s past", jwt.MapClaims{"iat": e.now.Add(-time.Minute).Unix(), "exp": e.now.Add(-30 * time.Second).Unix()}, "client_assertion: token has invalid claims: token is expired"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := send(tt.name, tt.claims)
			if tt.want == "" {
				if r.status != 200 {
					t.Fatalf("refused: %d %v", r.status, r.body)
				}
				return
			}
			expectError(t, r, 401, "invalid_client", tt.want)
		})
	}
}
