package attack

import (
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestMockBreaks mints a token of every failure scenario with the
// binary's `idtx mock token --break` and sends it to a running `idtx
// serve --mock`: each is refused, with the reason docs/testing.md names.
func TestMockBreaks(t *testing.T) {
	mint := func(args ...string) func(testing.TB, *env) string {
		return func(t testing.TB, _ *env) string {
			out, err := exec.Command(idtxBin, append([]string{"mock", "token"}, args...)...).Output()
			if err != nil {
				t.Fatalf("idtx mock token %v: %v", args, err)
			}
			return strings.TrimSpace(string(out))
		}
	}
	breakRow := func(kind, format, tokenType, reason string) row {
		tok := mint("--break", kind, "--format", format)
		return row{
			name: format + " " + kind,
			build: func(t testing.TB, e *env) *request {
				return subjectReq(tok(t, e), "subject_token_type", tokenType)
			},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_request", wantReason: reason,
		}
	}
	const jwtType, atType, saml2 = "urn:ietf:params:oauth:token-type:jwt", tokenTypeAccessToken, tokenTypeSAML2
	runRows(t, &env{fixture: newFixture(t), srv: startServer(t, serveOptions{})}, []row{
		breakRow("expired", "jwt", jwtType, "subject_token: invalid token: expired at "),
		breakRow("not-yet-valid", "jwt", jwtType, "subject_token: invalid token: not valid before "),
		breakRow("wrong-issuer", "jwt", jwtType, `subject_token: untrusted issuer: iss "https://wrong-issuer.idtx.test" is not a trusted IDP`),
		breakRow("wrong-audience", "jwt", jwtType, `subject_token: invalid token: aud ["not-idtx-sts"] contains none of IDP mock's audiences ["idtx-sts"]`),
		breakRow("bad-signature", "jwt", jwtType, "subject_token: invalid token: signature does not verify with IDP mock's key"),
		breakRow("unknown-kid", "jwt", jwtType, `subject_token: invalid token: no usable key: kid "mock-unknown-kid" is not in the IDP's key set`),
		breakRow("alg-none", "jwt", jwtType, `subject_token: invalid token: alg "none" is refused: tokens must be signed`),
		breakRow("hs256-with-public-key", "jwt", jwtType, `subject_token: invalid token: alg "HS256" is not allowed for IDP mock`),
		breakRow("no-exp", "jwt", jwtType, "subject_token: invalid token: exp is required"),
		breakRow("typ-id-token", "jwt", atType, `subject_token: invalid token: typ "JWT" is not one of IDP mock's access_token_typ [at+jwt]`),
		breakRow("unsigned", "saml2", saml2, "subject_token: invalid token: neither the assertion nor the response is signed"),
		breakRow("wrapped", "saml2", saml2, "subject_token: malformed token: the document holds 2 assertions; exactly one is accepted"),
		breakRow("expired", "saml2", saml2, "subject_token: invalid token: expired at "),
		breakRow("wrong-audience", "saml2", saml2, `subject_token: invalid token: audience ["not-idtx-sts"] names none of IDP mock-saml's audiences ["idtx-sts"]`),
	})
}

// TestMockFaults: a drop fault closes the connection unanswered, and a
// mock IDP whose key set is down from the start leaves the STS unable to
// validate its tokens (503) until DELETE /mock/faults clears it.
func TestMockFaults(t *testing.T) {
	srv := startServer(t, serveOptions{faults: []string{"drop,times=1", "jwks-down"}})
	out, err := exec.Command(idtxBin, "mock", "token").Output()
	if err != nil {
		t.Fatal(err)
	}
	req := subjectReq(strings.TrimSpace(string(out)))

	hreq, _ := http.NewRequest(http.MethodPost, srv.URL+"/token", strings.NewReader(req.form.Encode()))
	hreq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	hreq.SetBasicAuth("demo-client", "demo-secret")
	client := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	if resp, err := client.Do(hreq); err == nil {
		resp.Body.Close()
		t.Fatalf("drop: got %d, want the connection closed unanswered", resp.StatusCode)
	}
	expectRefusal(t, srv.do(t, req), http.StatusServiceUnavailable, "temporarily_unavailable", "")
	if got := srv.do(t, &request{method: http.MethodGet, path: "/mock/jwks"}); got.status != http.StatusServiceUnavailable {
		t.Fatalf("GET /mock/jwks while down: %d", got.status)
	}
	if got := srv.do(t, &request{method: http.MethodDelete, path: "/mock/faults"}); got.status != http.StatusOK || string(got.raw) != "{\"faults\":[]}\n" {
		t.Fatalf("DELETE /mock/faults: %d %s", got.status, got.raw)
	}
	if got := srv.do(t, req); got.status != http.StatusOK {
		t.Fatalf("after DELETE /mock/faults: %d %s", got.status, got.raw)
	}
}
