package attack

import (
	"net/http"
	"testing"
	"time"

	"github.com/idtx/idtx/mockidp"
)

// mockRows are attacks on `idtx serve --mock`, whose IDP keys are public:
// a mock token is only as good as the checks around it.
func mockRows() []row {
	mockJWT := func(o mockidp.TokenOptions) func(testing.TB, *env) string {
		return func(t testing.TB, _ *env) string {
			if o.Now.IsZero() {
				o.Now = time.Now()
			}
			tok, err := mockidp.JWT(o)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
	}
	billing := func(tok func(testing.TB, *env) string) func(testing.TB, *env) *request {
		return func(t testing.TB, e *env) *request {
			return subjectReq(tok(t, e), "audience", "billing-api", "scope", "billing:read")
		}
	}
	return []row{
		{
			name:       "control: the README's exchange",
			build:      billing(mockJWT(mockidp.TokenOptions{})),
			wantStatus: http.StatusOK, check: claimIs("idp", "mock"),
		},
		{
			name:       "mock token for another audience",
			build:      billing(mockJWT(mockidp.TokenOptions{Aud: "billing-api"})),
			wantStatus: http.StatusBadRequest, wantCode: "invalid_request", wantReason: "contains none of IDP mock's audiences",
		},
		{
			name:       "expired mock token",
			build:      billing(mockJWT(mockidp.TokenOptions{Now: time.Now().Add(-2 * time.Hour)})),
			wantStatus: http.StatusBadRequest, wantCode: "invalid_request", wantReason: "expired at",
		},
		{
			name:       "a user without seeded consent",
			build:      billing(mockJWT(mockidp.TokenOptions{Sub: "mallory"})),
			wantStatus: http.StatusBadRequest, wantCode: "consent_required", wantReason: "has not consented to billing:read for billing-api",
		},
		jwtRow("alg none on the mock", unsigned("none"), "tokens must be signed"),
		samlRow("XSW on the mock's own SAML IDP", func(t testing.TB, e *env) string {
			good := mockSigned(t, "alice")
			evil := good.Copy()
			evil.RemoveChild(evil.SelectElement("Signature"))
			evil.SelectElement("Subject").SelectElement("NameID").SetText("admin")
			r := samlResponse(statusOK, evil, good)
			r.SelectElement("Issuer").SetText(mockidp.SAMLIssuer)
			return xmlString(t, r)
		}, "the document holds 2 assertions; exactly one is accepted"),
		{
			name: "restricted-client asks for billing-api",
			build: func(t testing.TB, e *env) *request {
				return withClient(billing(mockJWT(mockidp.TokenOptions{}))(t, e), "restricted-client", "restricted-secret")
			},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_target", wantReason: "client restricted-client may not exchange for service billing-api",
		},
	}
}

// TestMockAttacks sends attacks to `idtx serve --mock`.
func TestMockAttacks(t *testing.T) {
	runRows(t, &env{fixture: newFixture(t), srv: startServer(t, serveOptions{})}, mockRows())
}
