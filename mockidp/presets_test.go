package mockidp_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/idtx/idtx/mockidp"
)

// Every preset's token, sent as its platform's token type, validates
// under the mock config's IDP of the same name, with the platform's
// subject and typ, and its --claim overrides.
func TestPresetsValidateUnderMockConfig(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	_, reg := mockRegistry(t, now)
	wantSub := map[string]string{
		"github-actions": "repo:octo-org/octo-repo:ref:refs/heads/main",
		"gitlab-ci":      "project_path:octo-group/octo-project:ref_type:branch:ref:main",
		"kubernetes":     "system:serviceaccount:ci:deployer",
		"google":         "110169484474386276334",
		"entra":          "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
		"auth0":          "auth0|alice",
		"keycloak":       "9b1d3e5a-0000-4000-8000-0000000000b1",
		"dex":            "CgVhbGljZRIEbW9jaw",
	}
	if got := strings.Join(mockidp.PresetNames(), " "); got != "github-actions gitlab-ci kubernetes google entra auth0 keycloak dex" {
		t.Fatalf("presets %s", got)
	}
	for _, p := range mockidp.Presets() {
		t.Run(p.Name, func(t *testing.T) {
			tok, err := p.JWT(mockidp.TokenOptions{Now: now})
			if err != nil {
				t.Fatal(err)
			}
			id, err := reg.Validate(t.Context(), tok, p.TokenType)
			if err != nil {
				t.Fatal(err)
			}
			if id.IDP != p.Name || id.Subject != wantSub[p.Name] {
				t.Errorf("identity idp %q sub %q, want %q %q", id.IDP, id.Subject, p.Name, wantSub[p.Name])
			}
			var header map[string]any
			raw, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
			json.Unmarshal(raw, &header)
			if typ, _ := header["typ"].(string); typ != p.Typ {
				t.Errorf("typ %q, want %q", typ, p.Typ)
			}
		})
	}

	// --claim overrides any claim, and GitHub's sub follows the claims.
	gh, _ := mockidp.LookupPreset("github-actions")
	c := gh.Claims(mockidp.TokenOptions{Now: now, Claims: map[string]any{"ref": "refs/heads/dev"}})
	if c["sub"] != "repo:octo-org/octo-repo:ref:refs/heads/dev" || c["ref"] != "refs/heads/dev" {
		t.Errorf("ref override: sub %v ref %v", c["sub"], c["ref"])
	}
	c = gh.Claims(mockidp.TokenOptions{Now: now, Claims: map[string]any{"environment": "production"}})
	if c["sub"] != "repo:octo-org/octo-repo:environment:production" {
		t.Errorf("environment: sub %v", c["sub"])
	}
	// --issuer gives the token the platform's issuer, which the mock does
	// not trust.
	tok, _ := gh.JWT(mockidp.TokenOptions{Now: now, Issuer: gh.Platform})
	if _, err := reg.Validate(t.Context(), tok, gh.TokenType); err == nil || !strings.Contains(err.Error(), "https://token.actions.githubusercontent.com") {
		t.Errorf("a token of the platform's issuer: %v", err)
	}
}

// serve --mock answers GitHub Actions' token request: a bearer is
// required, the audience is honoured, the answer is {"value": JWT}.
func TestGitHubActionsTokenEndpoint(t *testing.T) {
	srv := httptest.NewServer(mockidp.Handler(nil))
	defer srv.Close()
	get := func(query, bearer string) (*http.Response, map[string]string) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+mockidp.GitHubActionsTokenPath+query, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]string
		json.NewDecoder(resp.Body).Decode(&body)
		return resp, body
	}
	resp, body := get("?audience=x", "")
	if resp.StatusCode != http.StatusUnauthorized || body["message"] != "a bearer token is required (the job's ACTIONS_ID_TOKEN_REQUEST_TOKEN)" {
		t.Errorf("no bearer: %d %v", resp.StatusCode, body)
	}
	for query, aud := range map[string]string{"?api-version=2.0&audience=http://127.0.0.1:8080": "http://127.0.0.1:8080", "": "https://github.com/octo-org"} {
		resp, body = get(query, "job-request-token")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", query, resp.StatusCode)
		}
		raw, _ := base64.RawURLEncoding.DecodeString(strings.Split(body["value"], ".")[1])
		var claims map[string]any
		json.Unmarshal(raw, &claims)
		if claims["aud"] != aud || claims["repository"] != mockidp.GitHubRepository || claims["iss"] != "https://mock-idp.idtx.test/github-actions" {
			t.Errorf("%s: claims %v", query, claims)
		}
	}
}
