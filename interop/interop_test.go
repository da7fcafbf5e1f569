// Package interop runs idtx's RFC 8693 client against Security Token
// Services that idtx did not write, started inside the test. It is its own
// module so that their dependencies stay out of idtx's go.mod.
package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/idtx/idtx/cmd"
	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/idp"
	"github.com/idtx/idtx/mockidp"
)

// trustingStorage is zitadel's example storage, taught to accept subject
// tokens from idtx's mock IDP (zitadel's TokenExchangeTokensVerifierStorage
// hook), validated by idtx's own JWT validator.
type trustingStorage struct {
	*storage.Storage
	registry *idp.Registry
}

func (s *trustingStorage) VerifyExchangeSubjectToken(ctx context.Context, token string, tokenType oidc.TokenType) (string, string, map[string]any, error) {
	id, err := s.registry.Validate(ctx, token, string(tokenType))
	if err != nil {
		return "", "", nil, err
	}
	return token, id.Subject, id.Claims, nil
}

func (s *trustingStorage) VerifyExchangeActorToken(ctx context.Context, token string, tokenType oidc.TokenType) (string, string, map[string]any, error) {
	return s.VerifyExchangeSubjectToken(ctx, token, tokenType)
}

// startZitadel starts zitadel/oidc's example OpenID Provider on a free
// loopback port, with a client allowed the token exchange grant.
func startZitadel(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String()
	cfg, err := mockidp.Config()
	if err != nil {
		t.Fatal(err)
	}
	var mockIDPs []config.IDP
	for _, d := range cfg.IDPs {
		if d.Name == mockidp.Name {
			mockIDPs = append(mockIDPs, d)
		}
	}
	reg, err := idp.FromConfig(context.Background(), mockIDPs, idp.Options{ReadFile: cfg.ReadFile})
	if err != nil {
		t.Fatal(err)
	}
	storage.RegisterClients(storage.WebClient("idtx-client", "idtx-secret"), storage.WebClient(jwtClientID, "idtx-secret"))
	st := &trustingStorage{Storage: storage.NewStorage(storage.NewUserStore(issuer)), registry: reg}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := &http.Server{Handler: exampleop.SetupServer(issuer, st, logger, false), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return issuer
}

func runIdtx(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cmd.Run(context.Background(), args, &cmd.IO{In: strings.NewReader(""), Out: &out, Err: &errb})
	return out.String(), errb.String(), code
}

// TestZitadelTokenExchange: `idtx exchange` discovers zitadel's token
// endpoint from its issuer URL, authenticates with client_secret_basic,
// exchanges a mock IDP token, and reports zitadel's OAuth errors as its
// own (exit 3).
func TestZitadelTokenExchange(t *testing.T) {
	issuer := startZitadel(t)
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("idtx-secret\n"), 0o600)
	// id1 is the example storage's admin user, allowed impersonation.
	subject, err := mockidp.JWT(mockidp.TokenOptions{Sub: "id1"})
	if err != nil {
		t.Fatal(err)
	}
	argsFor := func(subject string) []string {
		return []string{"exchange", "--sts", issuer, "--client-id", "idtx-client", "--client-secret-file", secret,
			"--subject-token", subject, "--subject-token-type", "jwt", "--requested-token-type", "access_token", "--scope", "openid profile"}
	}
	base := argsFor(subject)

	out, errOut, code := runIdtx(t, append(base, "-o", "json")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	if res["access_token"] == "" || res["issued_token_type"] != "urn:ietf:params:oauth:token-type:access_token" || !strings.EqualFold(res["token_type"].(string), "bearer") {
		t.Fatalf("zitadel answered %v", res)
	}

	out, _, code = runIdtx(t, base...)
	if code != 0 || strings.Count(out, "\n") != 1 {
		t.Fatalf("-o token: exit %d, %q", code, out)
	}

	// zitadel's refusals come back as OAuth errors, exit 3.
	os.WriteFile(secret, []byte("wrong\n"), 0o600)
	_, errOut, code = runIdtx(t, base...)
	if code != 3 || !strings.HasPrefix(errOut, "idtx: invalid_client") {
		t.Fatalf("wrong secret: exit %d, stderr %q", code, errOut)
	}
	os.WriteFile(secret, []byte("idtx-secret\n"), 0o600)
	bob, _ := mockidp.JWT(mockidp.TokenOptions{Sub: "id2"}) // not an admin: no impersonation
	_, errOut, code = runIdtx(t, argsFor(bob)...)
	if code != 3 || !strings.HasPrefix(errOut, "idtx: ") {
		t.Fatalf("non-admin subject: exit %d, stderr %q", code, errOut)
	}
	t.Logf("zitadel refused the non-admin subject: %s", strings.TrimSpace(errOut))
}
