package interop

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/idp"
	"github.com/idtx/idtx/mockidp"
	"github.com/idtx/idtx/oauth"
)

// TestZitadelIntrospection: an opaque access token zitadel/oidc's OP
// issued is validated by an idtx introspection IDP that found zitadel's
// introspection_endpoint by discovery and authenticates with
// client_secret_basic; a token zitadel never issued is not active.
func TestZitadelIntrospection(t *testing.T) {
	issuer := startZitadel(t)
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("idtx-secret\n"), 0o600)
	subject, err := mockidp.JWT(mockidp.TokenOptions{Sub: "id1"})
	if err != nil {
		t.Fatal(err)
	}
	// An opaque access token for idtx-client, from zitadel's token exchange.
	out, errOut, code := runIdtx(t, "exchange", "--sts", issuer, "--client-id", "idtx-client", "--client-secret-file", secret,
		"--subject-token", subject, "--subject-token-type", "jwt", "--requested-token-type", "access_token",
		"--audience", "idtx-client", "--scope", "openid profile", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var res map[string]any
	json.Unmarshal([]byte(out), &res)
	opaque, _ := res["access_token"].(string)
	if opaque == "" || strings.Count(opaque, ".") == 2 {
		t.Fatalf("zitadel's access token is not opaque: %q", opaque)
	}

	reg, err := idp.FromConfig(t.Context(), []config.IDP{{
		Name: "zitadel", Type: config.IDPTypeIntrospection, Issuer: issuer, Audiences: []string{"idtx-client"},
		Spec: &idp.IntrospectionSpec{Discovery: true, ClientID: "idtx-client", ClientSecret: "idtx-secret",
			CacheTTL: new(config.DefaultCacheTTL)},
		ClockSkew: config.DefaultClockSkew,
	}}, idp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := reg.Validate(t.Context(), opaque, oauth.TokenTypeAccessToken)
	if err != nil {
		t.Fatalf("zitadel's opaque token: %v", err)
	}
	if id.IDP != "zitadel" || id.Subject != "id1" || id.Expiry.IsZero() || len(id.Scopes) == 0 {
		t.Errorf("identity %+v", id)
	}
	t.Logf("zitadel's answer: sub %s, scopes %v, claims %v", id.Subject, id.Scopes, id.Claims)

	_, err = reg.Validate(t.Context(), "never-issued-by-zitadel", oauth.TokenTypeAccessToken)
	if !errors.Is(err, idp.ErrInvalid) || !strings.Contains(err.Error(), "IDP zitadel says the token is not active") {
		t.Fatalf("unknown token: %v", err)
	}
}
