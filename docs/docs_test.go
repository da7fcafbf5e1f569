package docs_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.yaml.in/yaml/v3"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/idp"
	"github.com/idtx/idtx/oauth"
)

// now is the instant every token is minted and validated at.
var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// shape is a token as one IDP issues it, and what its recipe promises.
type shape struct {
	// header members besides alg and kid (typ, x5t); no typ means none.
	header map[string]any
	// claims as the IDP writes them; iat, nbf and exp are set from now.
	claims map[string]any
	// introspection, for an introspection IDP, is its endpoint's answer
	// (RFC 7662 §2.2) when asked about the token.
	introspection map[string]any
	// want: the identity's claims, by name, as fmt.Sprint prints them.
	// It names every canonical claim the recipe maps.
	want   map[string]string
	scopes string
}

// shapes, by the title of the section of idps.md whose snippet they test.
// Header and claims follow what each IDP documents for its tokens.
var shapes = map[string]shape{
	"Keycloak": {
		header: map[string]any{"typ": "JWT"},
		claims: map[string]any{
			"jti": "0f6c3b7e-2a9d-4a4e-8d2f-6b1c9e0a7d55", "iss": "https://keycloak.example.com/realms/corp",
			"aud": []any{"idtx-sts", "account"}, "sub": "f3c2a1e4-8b7d-4c55-9e21-7a0d3b6f1c88", "typ": "Bearer",
			"azp": "web-app", "sid": "a1b2c3", "acr": "1", "allowed-origins": []any{"https://app.example.com"},
			"realm_access":    map[string]any{"roles": []any{"default-roles-corp", "offline_access", "ops"}},
			"resource_access": map[string]any{"account": map[string]any{"roles": []any{"manage-account"}}},
			"scope":           "openid email profile", "email_verified": true, "name": "Alice Example",
			"preferred_username": "alice", "given_name": "Alice", "family_name": "Example",
			"email": "alice@example.com", "groups": []any{"ops", "dev"},
		},
		want: map[string]string{
			"roles": "[default-roles-corp offline_access ops]", "groups": "[ops dev]",
			"email": "alice@example.com", "scope": "openid email profile",
		},
		scopes: "openid email profile",
	},
	"Entra ID (Azure AD)": {
		header: map[string]any{"typ": "JWT"},
		claims: map[string]any{
			"aud": "6e8f0c2a-1b7d-4c3e-9f5a-0d2b8e4c7a91", "iss": "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",
			"aio": "AWQAm/8TAAAA", "azp": "1f0b9d3e-5c2a-4e7b-8a61-3d9c0e2f4b17", "azpacr": "1", "name": "Alice Example",
			"oid": "4c8e1a2b-7d3f-4e9a-b5c6-0a1d2e3f4a5b", "preferred_username": "alice@contoso.com", "rh": "0.AXEA",
			"roles": []any{"Orders.Admin"}, "scp": "orders.read orders.write", "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
			"tid": "72f988bf-86f1-41af-91ab-2d7cd011db47", "uti": "fqiBqXLPj0eQa82S-IYFAA", "ver": "2.0",
			"groups": []any{"a3f1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d"}, "email": "alice@contoso.com",
		},
		want: map[string]string{
			"roles": "[Orders.Admin]", "groups": "[a3f1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d]",
			"scope": "orders.read orders.write", "email": "alice@contoso.com",
		},
		scopes: "orders.read orders.write",
	},
	"Auth0": {
		header: map[string]any{"typ": "JWT"},
		claims: map[string]any{
			"iss": "https://example.eu.auth0.com/", "sub": "auth0|64f1c0ffee0123456789abcd",
			"aud": []any{"https://sts.example.com", "https://example.eu.auth0.com/userinfo"},
			"azp": "Xk2pQ9rT4vW7yZ1aB3cD5eF7gH9iJ0kL", "scope": "openid profile email orders:read",
			"https://example.com/roles": []any{"admin"}, "https://example.com/groups": []any{"ops"},
			"https://example.com/email": "alice@example.com",
		},
		want: map[string]string{
			"roles": "[admin]", "groups": "[ops]", "email": "alice@example.com", "scope": "openid profile email orders:read",
		},
		scopes: "openid profile email orders:read",
	},
	"Okta": {
		header: map[string]any{}, // kid and alg only
		claims: map[string]any{
			"ver": 1, "jti": "AT.0mP4JNAw8jlHpT1y-yZQiVEZqEb2sXHECOSymoZEHhI", "iss": "https://example.okta.com/oauth2/default",
			"aud": "api://idtx-sts", "cid": "0oa1b2c3d4e5f6g7h8i9", "uid": "00u1x2y3z4a5b6c7d8e9",
			"scp": []any{"openid", "email", "orders:read"}, "auth_time": now.Add(-time.Hour).Unix(),
			"sub": "alice@example.com", "groups": []any{"Everyone", "ops"}, "email": "alice@example.com",
		},
		want:   map[string]string{"groups": "[Everyone ops]", "email": "alice@example.com", "scope": "openid email orders:read"},
		scopes: "openid email orders:read",
	},
	"Google": {
		header: map[string]any{"typ": "JWT"},
		claims: map[string]any{
			"iss": "https://accounts.google.com", "azp": "1234567890-abcdefghijklmnop.apps.googleusercontent.com",
			"aud": "1234567890-abcdefghijklmnop.apps.googleusercontent.com", "sub": "110169484474386276334",
			"hd": "example.com", "email": "alice@example.com", "email_verified": true, "at_hash": "HK6E_P6Dh8Y93mRNtsDB1Q",
			"name": "Alice Example", "given_name": "Alice", "family_name": "Example",
		},
		want: map[string]string{"email": "alice@example.com", "domain": "example.com", "email_verified": "true"},
	},
	"Dex": {
		header: map[string]any{}, // no typ
		claims: map[string]any{
			"iss": "https://dex.example.com", "sub": "CiQwOGE4Njg0Yi1kYjg4LTRiNzMtOTBhOS0zY2QxNjYxZjU0NjYSBWxvY2Fs",
			"aud": []any{"idtx-sts", "example-app"}, "azp": "example-app", "at_hash": "Lm7sP8wQ2vN4cR6tY1uZ3a",
			"email": "alice@example.com", "email_verified": true, "groups": []any{"ops", "dev"}, "name": "Alice",
		},
		want: map[string]string{"groups": "[ops dev]", "email": "alice@example.com"},
	},
	"Dex, checked live by introspection": {
		header: map[string]any{}, // no typ
		claims: map[string]any{
			"iss": "https://dex.example.com", "sub": "CiQwOGE4Njg0Yi1kYjg4LTRiNzMtOTBhOS0zY2QxNjYxZjU0NjYSBWxvY2Fs",
			"aud": []any{"idtx-sts", "example-app"}, "azp": "example-app", "email": "alice@example.com",
			"email_verified": true, "groups": []any{"ops", "dev"}, "name": "Alice",
		},
		introspection: map[string]any{
			"active": true, "client_id": "example-app", "sub": "CiQwOGE4Njg0Yi1kYjg4LTRiNzMtOTBhOS0zY2QxNjYxZjU0NjYSBWxvY2Fs",
			"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "nbf": now.Unix(), "aud": []any{"idtx-sts", "example-app"},
			"iss": "https://dex.example.com", "jti": "dex-1", "token_type": "Bearer", "token_use": "access_token",
			"ext": map[string]any{"azp": "example-app", "email": "alice@example.com", "email_verified": true,
				"groups": []any{"ops", "dev"}, "name": "Alice"},
		},
		want: map[string]string{"groups": "[ops dev]", "email": "alice@example.com"},
	},
	"GitHub Actions": {
		header: map[string]any{"typ": "JWT", "x5t": "ykNaY4qM_ta4k2TgZOCEYLkcYlA"},
		claims: map[string]any{
			"jti": "example-id", "sub": "repo:example/deploy:ref:refs/heads/main", "aud": "https://sts.example.com",
			"ref": "refs/heads/main", "sha": "8f3c2a1e4b7d9c55e21a7d0b3f6c1e8a9d2b4c6e", "repository": "example/deploy",
			"repository_owner": "example", "repository_owner_id": "1234567", "repository_id": "7654321",
			"repository_visibility": "private", "run_id": "9876543210", "run_number": "42", "run_attempt": "1",
			"actor": "alice", "actor_id": "1111111", "workflow": "deploy", "head_ref": "", "base_ref": "",
			"event_name": "push", "ref_protected": "true", "ref_type": "branch",
			"workflow_ref":     "example/deploy/.github/workflows/deploy.yml@refs/heads/main",
			"workflow_sha":     "8f3c2a1e4b7d9c55e21a7d0b3f6c1e8a9d2b4c6e",
			"job_workflow_ref": "example/deploy/.github/workflows/deploy.yml@refs/heads/main",
			"job_workflow_sha": "8f3c2a1e4b7d9c55e21a7d0b3f6c1e8a9d2b4c6e", "runner_environment": "github-hosted",
			"iss": "https://token.actions.githubusercontent.com",
		},
		want: map[string]string{
			"groups": "[example]", "repository": "example/deploy", "ref": "refs/heads/main",
			"job_workflow_ref": "example/deploy/.github/workflows/deploy.yml@refs/heads/main",
		},
	},
	"GitLab CI": {
		header: map[string]any{"typ": "JWT"},
		claims: map[string]any{
			"namespace_id": "72", "namespace_path": "example", "project_id": "42", "project_path": "example/deploy",
			"user_id": "17", "user_login": "alice", "user_email": "alice@example.com", "user_access_level": "maintainer",
			"pipeline_id": "1001", "pipeline_source": "push", "job_id": "5005", "ref": "main", "ref_type": "branch",
			"ref_path": "refs/heads/main", "ref_protected": "true", "runner_id": 12, "runner_environment": "gitlab-hosted",
			"sha": "8f3c2a1e4b7d9c55e21a7d0b3f6c1e8a9d2b4c6e", "project_visibility": "private",
			"ci_config_ref_uri": "gitlab.com/example/deploy//.gitlab-ci.yml@refs/heads/main",
			"jti":               "2f1e0d9c-8b7a-4c6d-9e5f-4a3b2c1d0e9f", "iss": "https://gitlab.com",
			"sub": "project_path:example/deploy:ref_type:branch:ref:main", "aud": "https://sts.example.com",
		},
		want: map[string]string{
			"groups": "[example]", "email": "alice@example.com", "project_path": "example/deploy", "ref": "main",
		},
	},
	"Kubernetes service accounts": {
		header: map[string]any{}, // kid and alg only
		claims: map[string]any{
			"aud": []any{"https://sts.example.com"}, "jti": "5b1e3c7a-9d2f-4e8b-a6c0-1f3d5e7a9b2c",
			"iss": "https://kubernetes.default.svc.cluster.local", "sub": "system:serviceaccount:ci:builder",
			"kubernetes.io": map[string]any{
				"namespace":      "ci",
				"node":           map[string]any{"name": "node-1", "uid": "0b9e8d7c-6f5a-4b3c-2d1e-0f9a8b7c6d5e"},
				"pod":            map[string]any{"name": "builder-7d9f", "uid": "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"},
				"serviceaccount": map[string]any{"name": "builder", "uid": "d4c3b2a1-f6e5-4b7a-9d8c-5c4b3a2f1e0d"},
				"warnafter":      now.Add(50 * time.Minute).Unix(),
			},
		},
		want: map[string]string{"namespace": "ci", "service_account": "builder"},
	},
}

// recipe is one section of idps.md with a config snippet.
type recipe struct {
	title      string
	snippet    string
	tokenTypes []string
}

var (
	yamlBlock = regexp.MustCompile("(?s)```yaml\n(.*?)```")
	tokenType = regexp.MustCompile(`urn:ietf:params:oauth:token-type:[a-z0-9_]+`)
)

// recipes reads idps.md: every "## " section with a yaml block must have
// exactly one, and a "**Subject token type:**" paragraph naming the URNs.
func recipes(t *testing.T) []recipe {
	t.Helper()
	data, err := os.ReadFile("idps.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []recipe
	for _, sec := range strings.Split(string(data), "\n## ")[1:] {
		title, body, _ := strings.Cut(sec, "\n")
		blocks := yamlBlock.FindAllStringSubmatch(body, -1)
		if len(blocks) == 0 {
			continue
		}
		if len(blocks) > 1 {
			t.Errorf("section %q has %d yaml blocks; one recipe a section", title, len(blocks))
			continue
		}
		_, para, ok := strings.Cut(body, "**Subject token type:**")
		para, _, _ = strings.Cut(para, "\n\n")
		types := tokenType.FindAllString(para, -1)
		if !ok || len(types) == 0 {
			t.Errorf("section %q has no **Subject token type:** line naming a URN", title)
			continue
		}
		out = append(out, recipe{title: title, snippet: blocks[0][1], tokenTypes: types})
	}
	if len(out) < 10 {
		t.Fatalf("idps.md has %d recipes; the page or its parsing broke", len(out))
	}
	return out
}

// rest is what a full config adds to a recipe's idps: entry.
const rest = `
services:
  - name: orders-api
    scopes: {orders:read: {}}
clients:
  - id: app
    secret: app-secret
    services: [orders-api]
`

// secretFile is what a snippet's client_secret_file holds in the test.
const secretFile = "dex-secret"

func TestRecipes(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	const kid = "recipe-key"
	jwks := jwksOf(t, kid, &key.PublicKey)
	readFile := func(name string) ([]byte, error) {
		switch name {
		case "test.jwks":
			return jwks, nil
		case "/etc/idtx/dex-secret":
			return []byte(secretFile + "\n"), nil
		}
		return nil, fmt.Errorf("open %s: no such file in the test", name)
	}

	seen := map[string]bool{}
	for _, r := range recipes(t) {
		seen[r.title] = true
		t.Run(r.title, func(t *testing.T) {
			sh, ok := shapes[r.title]
			if !ok {
				t.Fatalf("no token shape for section %q: add one to shapes", r.title)
			}
			// As written: a valid config (nothing is fetched yet).
			asWritten, err := config.Parse([]byte(r.snippet+rest), "", readFile)
			if err != nil {
				t.Fatalf("snippet as written:\n%s\n%v", r.snippet, err)
			}
			if len(asWritten.IDPs) != 1 {
				t.Fatalf("snippet has %d idps; a recipe is one entry", len(asWritten.IDPs))
			}
			d := asWritten.IDPs[0]
			for name := range d.Claims {
				if _, ok := sh.want[name]; !ok {
					t.Errorf("the recipe maps %q but the test checks no value for it", name)
				}
			}

			token := sign(t, key, kid, sh)
			srv := introspectionEndpoint(t, token, sh.introspection)
			cfg, err := config.Parse(offline(t, r.snippet, srv.URL), "", readFile)
			if err != nil {
				t.Fatalf("snippet made offline: %v", err)
			}
			reg, err := idp.FromConfig(t.Context(), cfg.IDPs, idp.Options{
				HTTPClient: srv.Client(), Clock: func() time.Time { return now }, ReadFile: readFile,
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, tt := range r.tokenTypes {
				id, err := reg.Validate(t.Context(), token, tt)
				if err != nil {
					t.Fatalf("as %s: %v", tt, err)
				}
				if id.IDP != d.Name || id.Subject != sh.claims["sub"] {
					t.Errorf("as %s: IDP %q, subject %q", tt, id.IDP, id.Subject)
				}
				for name, want := range sh.want {
					if got := fmt.Sprint(id.Claims[name]); got != want {
						t.Errorf("as %s: claim %s = %s, want %s", tt, name, got, want)
					}
				}
				if got := strings.Join(id.Scopes, " "); got != sh.scopes {
					t.Errorf("as %s: scopes %q, want %q", tt, got, sh.scopes)
				}
			}
			// A recipe's access_token_typ refuses a typ it does not list.
			if s, _ := d.Spec.(*idp.JWTSpec); s != nil && len(s.AccessTokenTyp) > 0 && !slices.Contains(s.AccessTokenTyp, "") {
				untyped := sh
				untyped.header = map[string]any{}
				_, err := reg.Validate(t.Context(), sign(t, key, kid, untyped), oauth.TokenTypeAccessToken)
				if want := fmt.Sprintf(`invalid token: typ "" is not one of IDP %s's access_token_typ`, d.Name); err == nil || !strings.HasPrefix(err.Error(), want) {
					t.Errorf("no typ under access_token_typ %v: %v\nwant %s ...", s.AccessTokenTyp, err, want)
				}
			}
			// The recipe's audiences bind the token: the same token for
			// another API is refused.
			if d.Type == config.IDPTypeJWT {
				other := sh
				other.claims = maps.Clone(sh.claims)
				other.claims["aud"] = "https://other-api.example.com"
				_, err := reg.Validate(t.Context(), sign(t, key, kid, other), r.tokenTypes[0])
				if want := fmt.Sprintf(`invalid token: aud ["https://other-api.example.com"] contains none of IDP %s's audiences`, d.Name); err == nil || !strings.HasPrefix(err.Error(), want) {
					t.Errorf("token for another API: %v\nwant %s ...", err, want)
				}
			}
		})
	}
	for title := range shapes {
		if !seen[title] {
			t.Errorf("shapes has %q, which is no section of idps.md", title)
		}
	}
}

// offline rewrites a snippet so that nothing leaves the machine: a jwt
// IDP's discovery or jwks_uri becomes the test key's jwks_file, an
// introspection IDP's endpoint the test's loopback server.
func offline(t *testing.T, snippet, endpoint string) []byte {
	t.Helper()
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(snippet+rest), &doc); err != nil {
		t.Fatal(err)
	}
	for _, e := range doc["idps"].([]any) {
		m := e.(map[string]any)
		delete(m, "discovery")
		delete(m, "jwks_uri")
		switch m["type"] {
		case config.IDPTypeJWT:
			m["jwks_file"] = "test.jwks"
		case config.IDPTypeIntrospection:
			m["introspection_endpoint"] = endpoint + "/token/introspect"
		}
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// introspectionEndpoint answers as the IDP does for token, presented with
// the client secret of secretFile, and inactive for anything else.
func introspectionEndpoint(t *testing.T, token string, answer map[string]any) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, secret, _ := r.BasicAuth()
		w.Header().Set("Content-Type", "application/json")
		if answer == nil || r.URL.Path != "/token/introspect" || id != "idtx-sts" || secret != secretFile || r.PostFormValue("token") != token {
			json.NewEncoder(w).Encode(map[string]any{"active": false})
			return
		}
		json.NewEncoder(w).Encode(answer)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// sign mints the token of sh: alg RS256, kid, and sh's header members.
func sign(t *testing.T, key *rsa.PrivateKey, kid string, sh shape) string {
	t.Helper()
	claims := jwt.MapClaims{"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	maps.Copy(claims, sh.claims)
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	delete(tok.Header, "typ") // golang-jwt's default; sh.header says
	maps.Copy(tok.Header, sh.header)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func jwksOf(t *testing.T, kid string, pub *rsa.PublicKey) []byte {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	out, err := json.Marshal(map[string]any{"keys": []any{map[string]any{
		"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
		"n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes()),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
