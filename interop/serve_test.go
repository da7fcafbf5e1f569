package interop

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/idtx/idtx/cmd"
	"github.com/idtx/idtx/mockidp"
)

// jwtClientID is a zitadel client whose access tokens are JWTs (the
// example storage's clients all get opaque ones).
const jwtClientID = "idtx-jwt-client"

// jwtAccessClient is a zitadel client that is issued JWT access tokens.
type jwtAccessClient struct{ op.Client }

func (jwtAccessClient) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeJWT }

// GetClientByClientID gives jwtClientID JWT access tokens.
func (s *trustingStorage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.Storage.GetClientByClientID(ctx, id)
	if err == nil && id == jwtClientID {
		return jwtAccessClient{c}, nil
	}
	return c, err
}

// serveIdtx runs `idtx serve --config` in this process on a free loopback
// port with the config text, and returns its base URL; the server stops
// when the test ends.
func serveIdtx(t *testing.T, cfg string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "sts.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("IDTX_HOME", filepath.Join(dir, "home"))
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- cmd.Run(ctx, []string{"serve", "--config", path, "--listen", "127.0.0.1:0", "--store", "memory:"},
			&cmd.IO{In: strings.NewReader(""), Out: io.Discard, Err: pw})
		pw.Close()
	}()
	base := make(chan string, 1)
	var stderr strings.Builder
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			stderr.WriteString(line + "\n")
			if _, url, ok := strings.Cut(line, "listening on "); ok {
				base <- strings.TrimSpace(url)
			}
		}
		close(base)
	}()
	url, ok := <-base
	if !ok {
		cancel()
		t.Fatalf("idtx serve exited %d before listening:\n%s", <-done, stderr.String())
	}
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("idtx serve exited %d", code)
		}
	})
	return url
}

// stsConfig is an idtx config trusting zitadel as the IDP idpYAML
// describes, for one service and one client.
func stsConfig(idpYAML string) string {
	return "idps:\n" + idpYAML + `
services:
  - name: orders-api
    scopes: {orders:read: {}}
    default_scopes: [orders:read]
clients:
  - id: app
    secret: app-secret
    services: [orders-api]
`
}

// fromZitadel gets a token of requestedType for client from zitadel's
// token exchange, for the admin user id1.
func fromZitadel(t *testing.T, issuer, client, requestedType, audience, scope string) string {
	t.Helper()
	secret := filepath.Join(t.TempDir(), "zitadel-secret")
	os.WriteFile(secret, []byte("idtx-secret\n"), 0o600)
	subject, err := mockidp.JWT(mockidp.TokenOptions{Sub: "id1"})
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runIdtx(t, "exchange", "--sts", issuer, "--client-id", client, "--client-secret-file", secret,
		"--subject-token", subject, "--subject-token-type", "jwt", "--requested-token-type", requestedType,
		"--audience", audience, "--scope", scope, "-o", "json")
	if code != 0 {
		t.Fatalf("zitadel's token exchange for %s: exit %d: %s", requestedType, code, errOut)
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	tok, _ := res["access_token"].(string)
	if tok == "" {
		t.Fatalf("zitadel answered %v", res)
	}
	return tok
}

// exchangeAtIdtx exchanges subject at the idtx server at base for
// orders-api and returns the issued token's claims.
func exchangeAtIdtx(t *testing.T, base, subject, subjectType string) (map[string]any, string, int) {
	t.Helper()
	secret := filepath.Join(t.TempDir(), "app-secret")
	os.WriteFile(secret, []byte("app-secret\n"), 0o600)
	out, errOut, code := runIdtx(t, "exchange", "--sts", base, "--client-id", "app", "--client-secret-file", secret,
		"--subject-token", subject, "--subject-token-type", subjectType, "--audience", "orders-api", "-o", "json")
	if code != 0 {
		return nil, errOut, code
	}
	var res struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	return payload(t, res.AccessToken), "", 0
}

func payload(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("issued token is not a JWT: %q", jwt)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

// TestZitadelJWTIDPThroughServe: `idtx serve` trusts zitadel/oidc's OP as
// a jwt IDP found by discovery (its keys from the jwks_uri its OpenID
// metadata names), and exchanges the OP's JWT access tokens (typ JWT) and
// ID tokens for a service; a token for another audience is refused with
// the reason.
func TestZitadelJWTIDPThroughServe(t *testing.T) {
	issuer := startZitadel(t)
	base := serveIdtx(t, stsConfig(fmt.Sprintf(`  - name: zitadel
    type: jwt
    issuer: %s
    discovery: true
    audiences: [idtx-sts]
    algorithms: [RS256]
`, issuer)))

	access := fromZitadel(t, issuer, jwtClientID, "access_token", "idtx-sts", "openid email profile")
	if strings.Count(access, ".") != 2 {
		t.Fatalf("zitadel's access token for %s is not a JWT: %q", jwtClientID, access)
	}
	idToken := fromZitadel(t, issuer, jwtClientID, "id_token", "idtx-sts", "openid email profile")
	t.Logf("zitadel's access token: %v", payload(t, access))
	t.Logf("zitadel's ID token: %v", payload(t, idToken))

	for _, tc := range []struct{ name, token, tokenType string }{
		{"access token", access, "access_token"},
		{"access token as jwt", access, "jwt"},
		{"ID token", idToken, "id_token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			claims, errOut, code := exchangeAtIdtx(t, base, tc.token, tc.tokenType)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if claims["sub"] != "id1" || claims["idp"] != "zitadel" || fmt.Sprint(claims["aud"]) != "[orders-api]" || claims["iss"] != base ||
				claims["scope"] != "orders:read" || claims["client_id"] != "app" {
				t.Errorf("issued token %v", claims)
			}
		})
	}

	// A zitadel token for another audience is not for this STS.
	other := fromZitadel(t, issuer, jwtClientID, "access_token", "billing", "openid")
	_, errOut, code := exchangeAtIdtx(t, base, other, "access_token")
	if code != 3 || !strings.Contains(errOut, `contains none of IDP zitadel's audiences`) {
		t.Errorf("token for another audience: exit %d, %q", code, errOut)
	}
}

// TestZitadelJWTIDPStrictTyp: with access_token_typ [at+jwt], zitadel's
// access tokens (typ JWT) are refused as access_token, naming the option.
func TestZitadelJWTIDPStrictTyp(t *testing.T) {
	issuer := startZitadel(t)
	base := serveIdtx(t, stsConfig(fmt.Sprintf(`  - name: zitadel
    type: jwt
    issuer: %s
    discovery: true
    audiences: [idtx-sts]
    access_token_typ: [at+jwt]
`, issuer)))
	access := fromZitadel(t, issuer, jwtClientID, "access_token", "idtx-sts", "openid")
	_, errOut, code := exchangeAtIdtx(t, base, access, "access_token")
	if code != 3 || !strings.Contains(errOut, `typ "JWT" is not one of IDP zitadel's access_token_typ [at+jwt]`) {
		t.Errorf("strict typ: exit %d, %q", code, errOut)
	}
}

// TestZitadelIntrospectionThroughServe: `idtx serve` trusts zitadel as an
// introspection IDP found by discovery, and exchanges the OP's opaque
// access tokens, asking zitadel's introspection endpoint about each; one
// zitadel never issued is refused as not active.
func TestZitadelIntrospectionThroughServe(t *testing.T) {
	issuer := startZitadel(t)
	base := serveIdtx(t, stsConfig(fmt.Sprintf(`  - name: zitadel
    type: introspection
    issuer: %s
    discovery: true
    client_id: idtx-client
    client_secret: idtx-secret
    audiences: [idtx-client]
`, issuer)))

	opaque := fromZitadel(t, issuer, "idtx-client", "access_token", "idtx-client", "openid profile")
	if strings.Count(opaque, ".") == 2 {
		t.Fatalf("zitadel's access token is not opaque: %q", opaque)
	}
	claims, errOut, code := exchangeAtIdtx(t, base, opaque, "access_token")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if claims["sub"] != "id1" || claims["idp"] != "zitadel" || fmt.Sprint(claims["aud"]) != "[orders-api]" || claims["iss"] != base {
		t.Errorf("issued token %v", claims)
	}

	_, errOut, code = exchangeAtIdtx(t, base, "never-issued-by-zitadel", "access_token")
	if code != 3 || !strings.Contains(errOut, "IDP zitadel says the token is not active") {
		t.Errorf("unknown token: exit %d, %q", code, errOut)
	}
}
