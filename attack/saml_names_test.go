package attack

import (
	"net/http"
	"testing"
)

// A signed NameID is the subject exactly as signed: "alice\u3000",
// "alice\u00a0" or a tab-and-CR-wrapped "admin" is refused, never trimmed
// into alice or admin (who would inherit alice's consents), and a NameID
// holding an element is refused rather than read without its text.
func TestSAMLNamesNotTrimmed(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct {
		name string
		doc  func(t testing.TB, e *env) string
		want string
	}{
		{"ideographic space", signed(samlOptions{sub: "alice\u3000"}),
			`subject_token: malformed token: NameID "alice\u3000" begins or ends with whitespace; it is taken exactly as signed, never trimmed`},
		{"no-break space", signed(samlOptions{sub: "alice\u00a0"}),
			`subject_token: malformed token: NameID "alice\u00a0" begins or ends with whitespace; it is taken exactly as signed, never trimmed`},
		{"an element inside the NameID", func(t testing.TB, e *env) string {
			a := samlAssertion(samlOptions{sub: "admin"})
			a.FindElement("./Subject/NameID").CreateElement("X").SetText("@evil.example")
			return xmlString(t, e.saml.sign(t, a))
		}, `subject_token: malformed token: NameID holds an element (X); it must hold only text`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := e.srv.do(t, samlReq(tt.doc(t, e)))
			expectRefusal(t, r, http.StatusBadRequest, "invalid_request", tt.want)
			if got := r.str("error_description"); got != tt.want {
				t.Fatalf("error_description %q, want exactly %q", got, tt.want)
			}
		})
	}
	t.Run("control: alice exactly", func(t *testing.T) {
		r := e.srv.do(t, samlReq(signed(samlOptions{sub: "alice"})(t, e)))
		if r.status != http.StatusOK || claimsOf(t, r.str("access_token"))["sub"] != "alice" {
			t.Fatalf("%d %s", r.status, r.raw)
		}
	})
}
