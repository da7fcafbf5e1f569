package mockidp

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/oauth"
)

// Preset is the shape of the tokens one platform issues (GitHub Actions,
// GitLab CI, Kubernetes service accounts, Google, Entra ID, Auth0,
// Keycloak, Dex): its claims, its JOSE typ and its audience convention,
// so that `idtx mock token --preset` can rehearse what a CI job or a
// workload holds. The mock signs them with its fixture key under an
// issuer of its own, which `serve --mock` trusts (fixtures/mock.yaml,
// where each preset is an IDP of the same name); TokenOptions.Issuer
// gives them the platform's issuer instead, for a production config whose
// IDP entry takes its keys from the mock's JWKS (docs/mock.md).
type Preset struct {
	Name string
	// Issuer is the mock's stand-in for the platform's issuer.
	Issuer string
	// Platform is the issuer the platform itself uses (an example where it
	// depends on the tenant).
	Platform string
	// Aud is the audience the platform puts when the job asks for none.
	Aud string
	// Typ is the JOSE header typ (RFC 7519 §5.1); "" sends none.
	Typ string
	// TokenType is the RFC 8693 subject_token_type such a token is sent
	// as (§3): an OIDC ID token is id_token, an OAuth access token
	// access_token, anything else jwt.
	TokenType string

	// claims adds the platform's claims to c, those of its default job
	// or user; sub, when set, derives sub from the final claims (a
	// GitHub sub names the repository and ref the claims say).
	claims func(c map[string]any, now time.Time)
	sub    func(c map[string]any) string
}

// mockBase is where the presets' issuers live, under the mock IDP's.
const mockBase = Issuer + "/"

// The example job and tenant the presets describe.
const (
	GitHubRepository = "octo-org/octo-repo"
	GitHubMainRef    = "refs/heads/main"
	entraTenant      = "00000000-0000-4000-8000-00000000000a"
)

var presets = []Preset{
	{
		Name: "github-actions", Issuer: mockBase + "github-actions", Platform: "https://token.actions.githubusercontent.com",
		Aud: "https://github.com/octo-org", Typ: "JWT", TokenType: oauth.TokenTypeIDToken,
		claims: func(c map[string]any, _ time.Time) {
			repo, ref := GitHubRepository, GitHubMainRef
			wf := repo + "/.github/workflows/deploy.yml@" + ref
			set(c, map[string]any{
				"repository": repo, "repository_id": "690000001", "repository_owner": "octo-org", "repository_owner_id": "9900001",
				"repository_visibility": "private", "ref": ref, "ref_type": "branch", "ref_protected": "true",
				"sha": "3f786850e387550fdab836ed7e6dc881de23001b", "workflow": "deploy", "workflow_ref": wf,
				"workflow_sha": "3f786850e387550fdab836ed7e6dc881de23001b", "job_workflow_ref": wf,
				"job_workflow_sha": "3f786850e387550fdab836ed7e6dc881de23001b", "event_name": "push",
				"run_id": "7100000001", "run_number": "42", "run_attempt": "1", "actor": "octocat", "actor_id": "583231",
				"runner_environment": "github-hosted",
			})
		},
		// GitHub's default subject: the environment when the job has
		// one, else the ref (docs.github.com, "About security hardening
		// with OpenID Connect").
		sub: func(c map[string]any) string {
			if env, ok := c["environment"].(string); ok && env != "" {
				return fmt.Sprintf("repo:%v:environment:%s", c["repository"], env)
			}
			return fmt.Sprintf("repo:%v:ref:%v", c["repository"], c["ref"])
		},
	},
	{
		Name: "gitlab-ci", Issuer: mockBase + "gitlab-ci", Platform: "https://gitlab.com",
		Aud: Audience, Typ: "JWT", TokenType: oauth.TokenTypeIDToken,
		claims: func(c map[string]any, _ time.Time) {
			set(c, map[string]any{
				"namespace_id": "72000001", "namespace_path": "octo-group", "project_id": "52000001",
				"project_path": "octo-group/octo-project", "project_visibility": "private", "user_id": "1200001",
				"user_login": "octocat", "user_email": "octocat@example.com", "user_access_level": "maintainer",
				"pipeline_id": "1100000001", "pipeline_source": "push", "job_id": "6100000001",
				"ref": "main", "ref_type": "branch", "ref_path": "refs/heads/main", "ref_protected": "true",
				"runner_id": 12270001, "runner_environment": "gitlab-hosted", "sha": "3f786850e387550fdab836ed7e6dc881de23001b",
				"ci_config_ref_uri": "gitlab.com/octo-group/octo-project//.gitlab-ci.yml@refs/heads/main",
				"ci_config_sha":     "3f786850e387550fdab836ed7e6dc881de23001b",
			})
		},
		sub: func(c map[string]any) string {
			return fmt.Sprintf("project_path:%v:ref_type:%v:ref:%v", c["project_path"], c["ref_type"], c["ref"])
		},
	},
	{
		// A projected service account token (no typ header).
		Name: "kubernetes", Issuer: mockBase + "kubernetes", Platform: "https://kubernetes.default.svc.cluster.local",
		Aud: Audience, TokenType: oauth.TokenTypeJWT,
		claims: func(c map[string]any, _ time.Time) {
			c["kubernetes.io"] = map[string]any{
				"namespace":      "ci",
				"serviceaccount": map[string]any{"name": "deployer", "uid": "5c2b3a1e-0d4f-4b6a-9c1e-000000000001"},
				"pod":            map[string]any{"name": "deployer-7d9f8b6c5-x2x4z", "uid": "5c2b3a1e-0d4f-4b6a-9c1e-000000000002"},
				"node":           map[string]any{"name": "node-1", "uid": "5c2b3a1e-0d4f-4b6a-9c1e-000000000003"},
			}
		},
		sub: func(c map[string]any) string {
			k, _ := c["kubernetes.io"].(map[string]any)
			sa, _ := k["serviceaccount"].(map[string]any)
			return fmt.Sprintf("system:serviceaccount:%v:%v", k["namespace"], sa["name"])
		},
	},
	{
		// A service account's ID token (gcloud auth print-identity-token).
		Name: "google", Issuer: mockBase + "google", Platform: "https://accounts.google.com",
		Aud: Audience, Typ: "JWT", TokenType: oauth.TokenTypeIDToken,
		claims: func(c map[string]any, _ time.Time) {
			set(c, map[string]any{"sub": "110169484474386276334", "azp": "110169484474386276334",
				"email": "ci@idtx-demo.iam.gserviceaccount.com", "email_verified": true})
		},
	},
	{
		// An Entra ID v2.0 access token for an API (app roles in roles).
		Name: "entra", Issuer: mockBase + "entra/" + entraTenant + "/v2.0", Platform: "https://login.microsoftonline.com/" + entraTenant + "/v2.0",
		Aud: "api://idtx-sts", Typ: "JWT", TokenType: oauth.TokenTypeAccessToken,
		claims: func(c map[string]any, _ time.Time) {
			set(c, map[string]any{"sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ", "oid": "00000000-0000-4000-8000-0000000000a1",
				"tid": entraTenant, "azp": "00000000-0000-4000-8000-0000000000c1", "azpacr": "1", "ver": "2.0",
				"name": "Alice", "preferred_username": "alice@contoso.example", "roles": []any{"Orders.Read"}, "scp": "access_as_user"})
		},
	},
	{
		// An Auth0 access token (RFC 9068 profile), roles under a
		// namespaced claim as Auth0 requires.
		Name: "auth0", Issuer: mockBase + "auth0/", Platform: "https://idtx-demo.us.auth0.com/",
		Aud: Audience, Typ: "at+jwt", TokenType: oauth.TokenTypeAccessToken,
		claims: func(c map[string]any, _ time.Time) {
			set(c, map[string]any{"sub": "auth0|alice", "azp": "idtxCliClientId0000000000000000",
				"client_id": "idtxCliClientId0000000000000000", "scope": "openid profile",
				"permissions": []any{"orders:read"}, "https://idtx.test/roles": []any{"ci"}})
		},
	},
	{
		// A Keycloak access token: typ Bearer in the claims, roles under
		// realm_access.
		Name: "keycloak", Issuer: mockBase + "keycloak/realms/idtx", Platform: "https://keycloak.example/realms/idtx",
		Aud: Audience, Typ: "JWT", TokenType: oauth.TokenTypeAccessToken,
		claims: func(c map[string]any, _ time.Time) {
			set(c, map[string]any{"sub": "9b1d3e5a-0000-4000-8000-0000000000b1", "typ": "Bearer", "azp": "idtx-cli",
				"preferred_username": "alice", "email": "alice@example.com", "email_verified": true, "scope": "openid profile email",
				"realm_access":    map[string]any{"roles": []any{"default-roles-idtx", "ci"}},
				"resource_access": map[string]any{"account": map[string]any{"roles": []any{"view-profile"}}},
				"sid":             "2c6d2f5e-0000-4000-8000-0000000000b2"})
		},
	},
	{
		// A Dex ID token: sub encodes the user and connector (no typ).
		Name: "dex", Issuer: mockBase + "dex", Platform: "https://dex.example",
		Aud: Audience, TokenType: oauth.TokenTypeIDToken,
		claims: func(c map[string]any, _ time.Time) {
			set(c, map[string]any{"sub": "CgVhbGljZRIEbW9jaw", "email": "alice@example.com", "email_verified": true,
				"name": "Alice", "groups": []any{"ci"}, "federated_claims": map[string]any{"connector_id": "mock", "user_id": "alice"}})
		},
	},
}

func set(c, v map[string]any) {
	for k, x := range v {
		c[k] = x
	}
}

// Presets are the platforms `idtx mock token --preset` knows, in a fixed
// order.
func Presets() []Preset { return presets }

// PresetNames are the presets' names, in the same order.
func PresetNames() []string {
	names := make([]string, len(presets))
	for i, p := range presets {
		names[i] = p.Name
	}
	return names
}

// LookupPreset is the preset called name.
func LookupPreset(name string) (Preset, bool) {
	for _, p := range presets {
		if p.Name == name {
			return p, true
		}
	}
	return Preset{}, false
}

// Claims are the claims of a token of this preset: the platform's, with
// the options' issuer, audience, subject, lifetime, scope and may_act
// when set, and Claims last, overriding any. A subject the platform
// derives from other claims (GitHub's repo:...:ref:...) follows the
// final claims unless Sub is set.
func (p Preset) Claims(o TokenOptions) map[string]any {
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	c := map[string]any{
		"iss": p.Issuer,
		"aud": p.Aud,
		"sub": DefaultSub,
		"iat": o.Now.Unix(),
		"nbf": o.Now.Unix(),
		"exp": o.Now.Add(o.TTL).Unix(),
		"jti": randomID(),
	}
	p.claims(c, o.Now)
	if o.Issuer != "" {
		c["iss"] = o.Issuer
	}
	if o.Aud != "" {
		c["aud"] = o.Aud
	}
	if o.Scope != "" {
		c["scope"] = strings.Join(strings.Fields(o.Scope), " ")
	}
	if o.MayAct != "" {
		c["may_act"] = map[string]any{"sub": o.MayAct}
	}
	set(c, o.Claims)
	switch {
	case o.Sub != "":
		c["sub"] = o.Sub
	case p.sub != nil && o.Claims["sub"] == nil:
		c["sub"] = p.sub(c)
	}
	return c
}

// JWT signs a token of this preset with the mock IDP's fixture key
// (RS256), with the platform's typ.
func (p Preset) JWT(o TokenOptions) (string, error) {
	s, err := signer()
	if err != nil {
		return "", fmt.Errorf("mock idp key: %w", err)
	}
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims(p.Claims(o)))
	t.Header["kid"] = s.kid
	if p.Typ == "" {
		delete(t.Header, "typ")
	} else {
		t.Header["typ"] = p.Typ
	}
	return t.SignedString(s.key)
}

// GitHubActionsTokenPath is where `serve --mock` answers GitHub Actions'
// OIDC token request, as ACTIONS_ID_TOKEN_REQUEST_URL does in a job.
const GitHubActionsTokenPath = "/mock/github-actions/token"

// gitHubActionsToken answers GitHub's token request: GET with any bearer
// token (a job's ACTIONS_ID_TOKEN_REQUEST_TOKEN) and an optional
// audience parameter, {"value": JWT} as GitHub answers (docs.github.com,
// "Configuring OpenID Connect in cloud providers"). The token is the
// github-actions preset's: octo-org/octo-repo, refs/heads/main.
func gitHubActionsToken(clock func() time.Time) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		auth := r.Header.Get("Authorization")
		scheme, bearer, _ := strings.Cut(auth, " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(bearer) == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="github-actions"`)
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(map[string]string{"message": "a bearer token is required (the job's ACTIONS_ID_TOKEN_REQUEST_TOKEN)"})
			return
		}
		p, _ := LookupPreset("github-actions")
		tok, err := p.JWT(TokenOptions{Aud: r.URL.Query().Get("audience"), Now: clock()})
		if err != nil {
			http.Error(w, `{"message":"cannot sign"}`, http.StatusInternalServerError)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"value": tok})
	}
}

// trustIssuerAudience lets the github-actions IDP accept tokens whose
// audience is the STS's own issuer, the audience `idtx exchange
// --subject-token-from github-actions` asks for by default.
func trustIssuerAudience(cfg *config.Config) {
	if cfg.Issuer == "" {
		return
	}
	for i := range cfg.IDPs {
		if cfg.IDPs[i].Name == "github-actions" {
			cfg.IDPs[i].Audiences = append(cfg.IDPs[i].Audiences, cfg.Issuer)
		}
	}
}
