package cmd

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/idtx/idtx/mockidp"
)

// nowInReason is the clock reading a refusal ends with, which a running
// server's clock moves on.
var nowInReason = regexp.MustCompile(`\(now [^)]+\)`)

// TestMockTokenBreaks mints a token of every failure scenario with `idtx
// mock token --break` and sends it to `idtx serve --mock` over HTTP: each
// is refused with the exact error and reason docs/testing.md lists.
func TestMockTokenBreaks(t *testing.T) {
	t.Setenv("IDTX_HOME", t.TempDir())
	const at = "2026-03-01T12:00:00Z"
	base, _ := startServe(t, "--mock", "--store", "memory:", "--clock", at)
	const jwtType, atType = "urn:ietf:params:oauth:token-type:jwt", "urn:ietf:params:oauth:token-type:access_token"
	const saml2, saml1 = "urn:ietf:params:oauth:token-type:saml2", "urn:ietf:params:oauth:token-type:saml1"
	cases := []struct{ kind, format, tokenType, reason string }{
		{"expired", "jwt", jwtType, "subject_token: invalid token: expired at 2026-03-01T11:00:00Z (now …)"},
		{"not-yet-valid", "jwt", jwtType, "subject_token: invalid token: not valid before 2026-03-01T13:00:00Z (now …)"},
		{"wrong-issuer", "jwt", jwtType, `subject_token: untrusted issuer: iss "https://wrong-issuer.idtx.test" is not a trusted IDP`},
		{"wrong-audience", "jwt", jwtType, `subject_token: invalid token: aud ["not-idtx-sts"] contains none of IDP mock's audiences ["idtx-sts"]`},
		{"bad-signature", "jwt", jwtType, "subject_token: invalid token: signature does not verify with IDP mock's key"},
		{"unknown-kid", "jwt", jwtType, `subject_token: invalid token: no usable key: kid "mock-unknown-kid" is not in the IDP's key set`},
		{"alg-none", "jwt", jwtType, `subject_token: invalid token: alg "none" is refused: tokens must be signed`},
		{"hs256-with-public-key", "jwt", jwtType, `subject_token: invalid token: alg "HS256" is not allowed for IDP mock (allowed: RS256 ES256 PS256 EdDSA)`},
		{"no-exp", "jwt", jwtType, "subject_token: invalid token: exp is required"},
		{"typ-id-token", "jwt", atType, `subject_token: invalid token: typ "JWT" is not one of IDP mock's access_token_typ [at+jwt] for subject_token_type access_token (RFC 9068 §2.1)`},
		{"unsigned", "saml2", saml2, "subject_token: invalid token: neither the assertion nor the response is signed"},
		{"unsigned", "saml1", saml1, "subject_token: invalid token: neither the assertion nor the response is signed"},
		{"wrapped", "saml2", saml2, "subject_token: malformed token: the document holds 2 assertions; exactly one is accepted"},
		{"wrapped", "saml1", saml1, "subject_token: malformed token: the document holds 2 assertions; exactly one is accepted"},
		{"expired", "saml2", saml2, "subject_token: invalid token: expired at 2026-03-01T11:00:00Z (now …)"},
		{"wrong-audience", "saml2", saml2, `subject_token: invalid token: audience ["not-idtx-sts"] names none of IDP mock-saml's audiences ["idtx-sts"]`},
	}
	covered := map[mockidp.Break]bool{}
	for _, c := range cases {
		covered[mockidp.Break(c.kind)] = true
		t.Run(c.format+"/"+c.kind, func(t *testing.T) {
			for _, breaks := range [][]string{nil, {"--break", c.kind}} {
				tok, stderr, code := run(t, append([]string{"mock", "token", "--format", c.format, "--at", at}, breaks...)...)
				if code != 0 {
					t.Fatalf("mock token %v: exit %d: %s", breaks, code, stderr)
				}
				form := exchangeForm(tok, "subject_token_type", c.tokenType, "audience", "orders-api", "scope", "orders:read")
				status, body := postToken(t, base, form, "demo-client", "demo-secret")
				if breaks == nil {
					if status != 200 {
						t.Fatalf("unbroken: %d %v", status, body)
					}
					continue
				}
				reason, _ := body["error_description"].(string)
				if status != 400 || body["error"] != "invalid_request" || nowInReason.ReplaceAllString(reason, "(now …)") != c.reason {
					t.Errorf("got %d %v: %s\nwant 400 invalid_request: %s", status, body["error"], reason, c.reason)
				}
			}
		})
	}
	for _, b := range mockidp.Breaks {
		if !covered[b.Kind] {
			t.Errorf("failure scenario %s has no case here", b.Kind)
		}
	}
}

// TestMockTokenBreakRefused: a scenario that does not exist or does not
// apply to the format is a usage error; help lists every scenario.
func TestMockTokenBreakRefused(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--break", "stale"}, `idtx: --break "stale" is not a failure scenario (scenarios: expired, not-yet-valid, wrong-issuer, wrong-audience, bad-signature, unknown-kid, alg-none, hs256-with-public-key, no-exp, typ-id-token, unsigned, wrapped)`},
		{[]string{"--format", "saml2", "--break", "alg-none"}, `idtx: --break "alg-none" does not apply to format saml (it applies to jwt)`},
		{[]string{"--format", "opaque", "--break", "expired"}, `idtx: --break "expired" does not apply to format opaque (it applies to jwt, saml)`},
	} {
		_, stderr, code := run(t, append([]string{"mock", "token"}, c.args...)...)
		if code != 2 || strings.TrimSpace(stderr) != c.want {
			t.Errorf("%v: exit %d %q\nwant exit 2 %q", c.args, code, stderr, c.want)
		}
	}
	help, _, _ := run(t, "mock", "token", "--help")
	for _, b := range mockidp.Breaks {
		if !regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(string(b.Kind)) + ` +\S+ +` + regexp.QuoteMeta(b.Help) + `$`).MatchString(help) {
			t.Errorf("mock token --help has no line for %s", b.Kind)
		}
	}
}

// TestServeMockFaults: faults set with --fault show in the banner and in
// the traces of the exchanges they hit; /mock/faults sets and clears
// them at runtime.
func TestServeMockFaults(t *testing.T) {
	t.Setenv("IDTX_HOME", t.TempDir())
	base, stderr := startServe(t, "--mock", "--store", "memory:", "--fault", "unavailable=2s,times=1", "--fault", "slow=10ms")
	for _, line := range []string{
		"  FAULTS      unavailable=2s,times=1 (--fault; until cleared unless times=N)\n",
		"              slow=10ms (--fault; until cleared unless times=N)\n",
		"  faults      GET/POST/DELETE " + base + "/mock/faults (docs/testing.md)\n",
	} {
		if !strings.Contains(stderr.String(), line) {
			t.Errorf("banner lacks %q:\n%s", line, stderr)
		}
	}
	tok, _ := mockidp.JWT(mockidp.TokenOptions{Sub: "alice"})
	form := exchangeForm(tok, "audience", "orders-api", "scope", "orders:read")

	req, _ := http.NewRequest(http.MethodPost, base+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("demo-client", "demo-secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "2" ||
		!strings.Contains(string(body), `"error":"temporarily_unavailable","error_description":"the mock STS is unavailable (fault unavailable=2s,times=1)"`) {
		t.Fatalf("first request: %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	start := time.Now()
	if status, body := postToken(t, base, form, "demo-client", "demo-secret"); status != 200 || time.Since(start) < 10*time.Millisecond {
		t.Fatalf("second request: %d %v after %s", status, body, time.Since(start))
	}
	var traces struct {
		Traces []struct {
			Outcome string   `json:"outcome"`
			Faults  []string `json:"faults"`
		} `json:"traces"`
	}
	getJSON(t, base+"/traces", &traces)
	if len(traces.Traces) != 2 || traces.Traces[0].Outcome != "ok" || strings.Join(traces.Traces[0].Faults, "|") != "slow=10ms" ||
		traces.Traces[1].Outcome != "refused" || strings.Join(traces.Traces[1].Faults, "|") != "unavailable=2s,times=1|slow=10ms" {
		t.Fatalf("traces %+v", traces)
	}

	resp, err = http.PostForm(base+"/mock/faults", url.Values{"fault": {"error=invalid_grant,times=1"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `{"faults":["slow=10ms","error=invalid_grant,times=1"]}`; strings.TrimSpace(string(body)) != want {
		t.Fatalf("POST /mock/faults: %s, want %s", body, want)
	}
	if status, body := postToken(t, base, form, "demo-client", "demo-secret"); status != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("after POST /mock/faults: %d %v", status, body)
	}
}

// TestServeFaultRefused: --fault is for the mock only, and a spec that
// does not parse is a usage error.
func TestServeFaultRefused(t *testing.T) {
	t.Setenv("IDTX_HOME", t.TempDir())
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--config", "sts.yaml", "--fault", "drop"}, "idtx: --fault is for --mock only: a configured server never misbehaves on purpose"},
		{[]string{"--mock", "--fault", "unavailable=0s"}, `idtx: --fault: fault "unavailable=0s": Retry-After "0s" is not whole seconds from 1s to 1h`},
		{[]string{"--mock", "--fault", "slow=1000000h"}, `idtx: --fault: fault "slow=1000000h": slow needs a positive duration of at most 1m, such as slow=2s`},
		{append([]string{"--mock"}, strings.Split(strings.Repeat("--fault drop ", 17), " ")[:34]...), `idtx: --fault: too many faults: 17 given, at most 16 at once`},
	} {
		_, stderr, code := run(t, append([]string{"serve"}, c.args...)...)
		if code != 2 || strings.TrimSpace(stderr) != c.want {
			t.Errorf("%v: exit %d %q\nwant exit 2 %q", c.args, code, stderr, c.want)
		}
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
