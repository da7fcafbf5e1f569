package attack

import (
	"net/http"
	"net/url"
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

// TestMockFaultsEndpointHardening: a running `idtx serve --mock` refuses
// to take faults from a web page of another site (403), faults out of
// bounds or past 16 (400), another method (405 with Allow); and after a
// rotate-key fault ends, used up or cleared, tokens of `idtx mock token`
// (the fixture key) are accepted again.
func TestMockFaultsEndpointHardening(t *testing.T) {
	srv := startServer(t, serveOptions{})
	host := strings.TrimPrefix(srv.URL, "http://")
	faults := func(method string, header http.Header, specs ...string) *response {
		t.Helper()
		r := &request{method: method, path: "/mock/faults", header: header, basic: &[2]string{"", ""}}
		if method == http.MethodPost {
			r.form = url.Values{"fault": specs}
		}
		return srv.do(t, r)
	}
	exact := func(what string, got *response, status int, code, desc string) {
		t.Helper()
		if got.status != status || got.str("error") != code || got.str("error_description") != desc || got.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("%s: %d %s\nwant %d %s %q", what, got.status, got.raw, status, code, desc)
		}
	}
	exact("Origin of another site", faults(http.MethodPost, http.Header{"Origin": {"https://evil.example"}}, "drop"),
		http.StatusForbidden, "access_denied", `POST /mock/faults from a web page of another site is refused (Origin "https://evil.example" is not "`+host+`"): set faults with curl, --fault or idtxtest`)
	exact("Sec-Fetch-Site: cross-site", faults(http.MethodDelete, http.Header{"Sec-Fetch-Site": {"cross-site"}}),
		http.StatusForbidden, "access_denied", "DELETE /mock/faults from a web page of another site is refused (Sec-Fetch-Site: cross-site): set faults with curl, --fault or idtxtest")
	exact("slow=1000000h", faults(http.MethodPost, nil, "slow=1000000h"),
		http.StatusBadRequest, "invalid_request", `fault "slow=1000000h": slow needs a positive duration of at most 1m, such as slow=2s`)
	exact("unavailable=1.5s", faults(http.MethodPost, nil, "unavailable=1.5s"),
		http.StatusBadRequest, "invalid_request", `fault "unavailable=1.5s": Retry-After "1.5s" is not whole seconds from 1s to 1h`)
	exact("error=teapot", faults(http.MethodPost, nil, "error=teapot"),
		http.StatusBadRequest, "invalid_request", `fault "error=teapot": error needs an OAuth error code the token endpoint answers (invalid_request, invalid_client, invalid_grant, unauthorized_client, unsupported_grant_type, invalid_scope, invalid_target, consent_required, temporarily_unavailable, server_error, slow_down)`)
	seventeen := make([]string, 17)
	for i := range seventeen {
		seventeen[i] = "jwks-down"
	}
	exact("17 faults", faults(http.MethodPost, nil, seventeen...),
		http.StatusBadRequest, "invalid_request", "too many faults: 17 given, at most 16 at once")
	put := faults(http.MethodPut, nil)
	exact("PUT", put, http.StatusMethodNotAllowed, "invalid_request", "PUT /mock/faults: method not allowed (allowed: GET, HEAD, POST, DELETE)")
	if got := put.header.Get("Allow"); got != "GET, HEAD, POST, DELETE" {
		t.Fatalf("PUT: Allow %q", got)
	}
	if got := faults(http.MethodGet, nil); got.status != http.StatusOK || string(got.raw) != "{\"faults\":[]}\n" {
		t.Fatalf("a refused request set faults: %d %s", got.status, got.raw)
	}

	fixtureJWKS := srv.do(t, &request{method: http.MethodGet, path: "/mock/jwks"}).raw
	mockToken := func() url.Values {
		out, err := exec.Command(idtxBin, "mock", "token").Output()
		if err != nil {
			t.Fatal(err)
		}
		return subjectReq(strings.TrimSpace(string(out))).form
	}
	backToNormal := func(when string) {
		t.Helper()
		if got := srv.do(t, &request{method: http.MethodGet, path: "/mock/jwks"}).raw; string(got) != string(fixtureJWKS) {
			t.Fatalf("%s: /mock/jwks %s\nwant the fixture key set %s", when, got, fixtureJWKS)
		}
		if got := srv.exchange(t, mockToken()); got.status != http.StatusOK {
			t.Fatalf("%s: a token of idtx mock token: %d %s", when, got.status, got.raw)
		}
	}
	// Used up: the one request of times=1 still sees the overlap.
	if got := faults(http.MethodPost, http.Header{"Origin": {srv.URL}}, "rotate-key,times=1"); got.status != http.StatusOK {
		t.Fatalf("POST rotate-key from the mock's own origin: %d %s", got.status, got.raw)
	}
	if got := srv.exchange(t, mockToken()); got.status != http.StatusOK {
		t.Fatalf("during the overlap: %d %s", got.status, got.raw)
	}
	backToNormal("rotate-key,times=1 used up")
	// Cleared.
	if got := faults(http.MethodPost, nil, "rotate-key"); got.status != http.StatusOK {
		t.Fatalf("POST rotate-key: %d %s", got.status, got.raw)
	}
	if got := faults(http.MethodDelete, nil); got.status != http.StatusOK {
		t.Fatalf("DELETE: %d %s", got.status, got.raw)
	}
	backToNormal("rotate-key cleared")
}
