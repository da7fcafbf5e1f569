package exchange_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/idtx/idtx/consent"
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
	e := newEnvWith(t, consent.NewMemory(), func(yaml string, _ map[string][]byte) string {
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
// this one reads the source: the stored secret's digest (secretSum) is
// used only as an argument of subtle.ConstantTimeCompare, apart from
// being set and tested against nil.
func TestClientSecretComparedInConstantTime(t *testing.T) {
	files, err := filepath.Glob("*.go")
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
		allowed := map[*ast.SelectorExpr]bool{}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				if isSelector(n.Fun, "subtle", "ConstantTimeCompare") {
					for _, a := range n.Args {
						if s, ok := a.(*ast.SelectorExpr); ok && s.Sel.Name == "secretSum" {
							allowed[s] = true
							constantTime++
						}
					}
				}
			case *ast.BinaryExpr: // c.secretSum != nil
				if id, ok := n.Y.(*ast.Ident); ok && id.Name == "nil" {
					if s, ok := n.X.(*ast.SelectorExpr); ok {
						allowed[s] = true
					}
				}
			case *ast.AssignStmt:
				for _, l := range n.Lhs {
					if s, ok := l.(*ast.SelectorExpr); ok {
						allowed[s] = true
					}
				}
			}
			return true
		})
		ast.Inspect(f, func(n ast.Node) bool {
			if s, ok := n.(*ast.SelectorExpr); ok && s.Sel.Name == "secretSum" && !allowed[s] {
				t.Errorf("%s: secretSum used outside subtle.ConstantTimeCompare", fset.Position(s.Pos()))
			}
			return true
		})
	}
	if constantTime == 0 {
		t.Fatal("no subtle.ConstantTimeCompare of secretSum found: the client secret is compared some other way")
	}
}

func isSelector(e ast.Expr, pkg, name string) bool {
	s, ok := e.(*ast.SelectorExpr)
	if !ok || s.Sel.Name != name {
		return false
	}
	id, ok := s.X.(*ast.Ident)
	return ok && id.Name == pkg
}
