package attack

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/idtx/idtx/mockidp"
)

// presetToken mints a token of a mock preset (mock token --preset).
func presetToken(name string, o mockidp.TokenOptions) func(testing.TB, *env) string {
	return func(t testing.TB, _ *env) string {
		p, ok := mockidp.LookupPreset(name)
		if !ok {
			t.Fatalf("no preset %s", name)
		}
		if o.Now.IsZero() {
			o.Now = time.Now()
		}
		tok, err := p.JWT(o)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
}

// ciRows are attacks with CI identities on `idtx serve --mock`, whose
// presets' keys are public: a CI token is held to its IDP's audience and
// to the mock's rule on orders:write.
func ciRows() []row {
	orders := func(scope string, tok func(testing.TB, *env) string) func(testing.TB, *env) *request {
		return func(t testing.TB, e *env) *request { return subjectReq(tok(t, e), "scope", scope) }
	}
	return []row{
		{
			name:       "control: a GitHub Actions job on main gets orders:write",
			build:      orders("orders:write", presetToken("github-actions", mockidp.TokenOptions{})),
			wantStatus: http.StatusOK, check: claimIs("sub", "repo:octo-org/octo-repo:ref:refs/heads/main"),
		},
		{
			name:       "a GitHub Actions token for another audience",
			build:      orders("orders:read", presetToken("github-actions", mockidp.TokenOptions{Aud: "https://evil.example"})),
			wantStatus: http.StatusBadRequest, wantCode: "invalid_request", wantReason: "contains none of IDP github-actions's audiences",
		},
		{
			name:       "a feature branch asks for orders:write",
			build:      orders("orders:write", presetToken("github-actions", mockidp.TokenOptions{Claims: map[string]any{"ref": "refs/heads/feature"}})),
			wantStatus: http.StatusBadRequest, wantCode: "invalid_request", wantReason: "workflow ci-main-only denied: orders:write is for octo-org/octo-repo's refs/heads/main only",
		},
		{
			name:       "a fork's main asks for orders:write",
			build:      orders("orders:write", presetToken("github-actions", mockidp.TokenOptions{Claims: map[string]any{"repository": "evil/octo-repo"}})),
			wantStatus: http.StatusBadRequest, wantCode: "invalid_request", wantReason: "workflow ci-main-only denied",
		},
		{
			name:       "a forged sub does not move the rule, which reads repository and ref",
			build:      orders("orders:write", presetToken("github-actions", mockidp.TokenOptions{Sub: "repo:octo-org/octo-repo:ref:refs/heads/main", Claims: map[string]any{"ref": "refs/heads/feature"}})),
			wantStatus: http.StatusBadRequest, wantCode: "invalid_request", wantReason: "workflow ci-main-only denied",
		},
		{
			name:       "a token under GitHub's real issuer, signed with the mock's public key",
			build:      orders("orders:read", presetToken("github-actions", mockidp.TokenOptions{Issuer: "https://token.actions.githubusercontent.com"})),
			wantStatus: http.StatusBadRequest, wantCode: "invalid_request", wantReason: "https://token.actions.githubusercontent.com",
		},
		{
			name:       "a Kubernetes token of the entra IDP's audience",
			build:      orders("orders:read", presetToken("kubernetes", mockidp.TokenOptions{Aud: "api://idtx-sts"})),
			wantStatus: http.StatusBadRequest, wantCode: "invalid_request", wantReason: "contains none of IDP kubernetes's audiences",
		},
	}
}

// TestCIAttacks sends CI identities to `idtx serve --mock`.
func TestCIAttacks(t *testing.T) {
	runRows(t, &env{fixture: newFixture(t), srv: startServer(t, serveOptions{})}, ciRows())
}

// The mock's GitHub Actions token request wants a bearer, as GitHub's
// does; the token it answers exchanges when its audience is the STS's
// issuer, and not when the job asked for another.
func TestMockGitHubActionsTokenRequest(t *testing.T) {
	s := startServer(t, serveOptions{})
	ask := func(t *testing.T, auth, audience string) *response {
		r := &request{method: http.MethodGet, path: mockidp.GitHubActionsTokenPath + "?audience=" + url.QueryEscape(audience), basic: &[2]string{"", ""}}
		if auth != "" {
			r.header = http.Header{"Authorization": {auth}}
		}
		return s.do(t, r)
	}
	for _, auth := range []string{"", "Basic ZGVtby1jbGllbnQ6ZGVtby1zZWNyZXQ=", "Bearer "} {
		if got := ask(t, auth, s.URL); got.status != http.StatusUnauthorized || got.str("message") != "a bearer token is required (the job's ACTIONS_ID_TOKEN_REQUEST_TOKEN)" {
			t.Errorf("Authorization %q: %d %s, want 401", auth, got.status, got.raw)
		}
	}
	got := ask(t, "Bearer job-request-token", s.URL)
	if got.status != http.StatusOK || !strings.HasPrefix(got.str("value"), "eyJ") {
		t.Fatalf("with a bearer: %d %s", got.status, got.raw)
	}
	if c := claimsOf(t, got.str("value")); c["aud"] != s.URL || c["repository"] != mockidp.GitHubRepository {
		t.Errorf("claims %v, want aud %s", c, s.URL)
	}
	if ex := s.do(t, subjectReq(got.str("value"), "subject_token_type", "urn:ietf:params:oauth:token-type:id_token")); ex.status != http.StatusOK {
		t.Errorf("exchange of the Actions token: %d %s", ex.status, ex.raw)
	}
	other := ask(t, "Bearer job-request-token", "https://other-sts.example")
	expectRefusal(t, s.do(t, subjectReq(other.str("value"))), http.StatusBadRequest, "invalid_request", "contains none of IDP github-actions's audiences")
}

// IDTX_ISSUER is the issuer of a server that listens elsewhere (a
// container behind a port mapping): its metadata and its tokens say it.
func TestServeIssuerFromEnvironment(t *testing.T) {
	s := startServer(t, serveOptions{env: []string{"IDTX_ISSUER=http://localhost:18080"}})
	resp, err := http.Get(s.URL + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var meta map[string]any
	json.NewDecoder(resp.Body).Decode(&meta)
	if meta["issuer"] != "http://localhost:18080" || meta["token_endpoint"] != "http://localhost:18080/token" {
		t.Errorf("metadata issuer %v, token_endpoint %v", meta["issuer"], meta["token_endpoint"])
	}
	tok, _ := mockidp.JWT(mockidp.TokenOptions{})
	got := s.do(t, subjectReq(tok))
	if got.status != http.StatusOK {
		t.Fatalf("exchange: %d %s", got.status, got.raw)
	}
	if c := claimsOf(t, got.str("access_token")); c["iss"] != "http://localhost:18080" {
		t.Errorf("iss %v", c["iss"])
	}
	// The github-actions IDP accepts the public issuer as an audience.
	gh, _ := mockidp.LookupPreset("github-actions")
	tok, _ = gh.JWT(mockidp.TokenOptions{Aud: "http://localhost:18080"})
	if got := s.do(t, subjectReq(tok)); got.status != http.StatusOK {
		t.Errorf("Actions token for the issuer: %d %s", got.status, got.raw)
	}
}
