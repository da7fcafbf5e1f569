package exchange_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/exchange"
	"github.com/idtx/idtx/idp"
	"github.com/idtx/idtx/oauth"
	"github.com/idtx/idtx/store"
)

// corpusDir is IDTX_SAML_CORPUS, else a shared/corpora/saml folder beside
// the repository's own folder where CI lays it (README, Tests); the test
// is skipped, saying so, where neither is.
func corpusDir(t *testing.T) string {
	if d := os.Getenv("IDTX_SAML_CORPUS"); d != "" {
		return d
	}
	d, _ := filepath.Abs(filepath.Join("..", "..", "shared", "corpora", "saml"))
	if _, err := os.Stat(filepath.Join(d, "manifest.json")); err != nil {
		t.Skipf("SAML corpus not found at %s (set IDTX_SAML_CORPUS): %v", d, err)
	}
	return d
}

type corpusCase struct {
	Name        string `json:"name"`
	File        string `json:"file"`
	IDPIssuer   string `json:"idp_issuer"`
	Certificate string `json:"certificate"`
	Audience    string `json:"audience"`
	At          string `json:"at"`
	Expect      string `json:"expect"`
	AllowSHA1   bool   `json:"allow_sha1"`
	Subject     string `json:"subject"`
	Note        string `json:"note"`
}

// TestSAMLCorpus feeds every case of the shared corpus (real responses and
// known attacks, written by other projects) through POST /token with an
// IDP built from the case, at the case's instant.
func TestSAMLCorpus(t *testing.T) {
	dir := corpusDir(t)
	raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var manifest struct {
		Cases []corpusCase `json:"cases"`
	}
	if err := json.Unmarshal(raw, &manifest); err != nil {
		t.Fatal(err)
	}
	if len(manifest.Cases) < 61 {
		t.Fatalf("manifest lists %d cases, want 61", len(manifest.Cases))
	}
	for _, c := range manifest.Cases {
		t.Run(c.Name, func(t *testing.T) {
			token, err := os.ReadFile(filepath.Join(dir, c.File))
			if err != nil {
				t.Fatal(err)
			}
			status, body := corpusExchange(t, dir, c, string(token), "")
			sub := issuedSubject(t, body)
			switch c.Expect {
			case "accept":
				if status != 200 || sub != c.Subject {
					t.Fatalf("want accepted as %q, got %d %v", c.Subject, status, body)
				}
			case "reject":
				if status != 400 || body["error"] != "invalid_request" {
					t.Fatalf("want invalid_request (%s), got %d %v", c.Note, status, body)
				}
			case "either":
				if status != 200 && (status != 400 || body["error"] != "invalid_request") {
					t.Fatalf("want accepted or invalid_request, got %d %v", status, body)
				}
			case "accept-or-reject":
				if status == 200 && sub != c.Subject {
					t.Fatalf("accepted as %q, only %q is acceptable", sub, c.Subject)
				}
				if status != 200 && (status != 400 || body["error"] != "invalid_request") {
					t.Fatalf("want accepted or invalid_request, got %d %v", status, body)
				}
			default:
				t.Fatalf("unknown expect %q", c.Expect)
			}
			t.Logf("%s: %d %v", c.Expect, status, body["error_description"])
		})
	}
}

func corpusExchange(t *testing.T, dir string, c corpusCase, token, idpExtra string) (int, map[string]any) {
	t.Helper()
	at, err := time.Parse(time.RFC3339Nano, c.At)
	if err != nil {
		t.Fatal(err)
	}
	yaml := fmt.Sprintf(`
issuer: https://sts.test
idps:
  - name: corpus
    type: saml
    issuer: %q
    certificate_file: %q
    audiences: [%q]
    allow_sha1: %v
    %s
services:
  - name: orders-api
    scopes: {orders:read: {}}
    default_scopes: [orders:read]
clients:
  - {id: demo-client, secret: demo-secret, services: ["*"]}
`, c.IDPIssuer, c.Certificate, c.Audience, c.AllowSHA1, idpExtra)
	cfg, err := config.Parse([]byte(yaml), dir, func(name string) ([]byte, error) { return os.ReadFile(filepath.Join(dir, name)) })
	if err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return at }
	reg, err := idp.FromConfig(context.Background(), cfg.IDPs, idp.Options{Clock: clock, ReadFile: cfg.ReadFile})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := exchange.LoadSigner("ES256", "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	engine, err := exchange.NewEngine(cfg, exchange.Options{Registry: reg, Store: store.NewMemory(), Signer: signer, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	h := exchange.NewHandler(engine, slog.New(slog.NewTextHandler(io.Discard, nil)))
	form := url.Values{
		"grant_type": {oauth.GrantTypeTokenExchange}, "subject_token": {token},
		"subject_token_type": {oauth.TokenTypeSAML2}, "audience": {"orders-api"},
	}
	req := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("demo-client", "demo-secret")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var body map[string]any
	json.Unmarshal(rec.Body.Bytes(), &body)
	return rec.Code, body
}

func issuedSubject(t *testing.T, body map[string]any) string {
	tok, _ := body["access_token"].(string)
	if tok == "" {
		return ""
	}
	parts := strings.Split(tok, ".")
	payload, err := base64URL(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	json.Unmarshal(payload, &claims)
	sub, _ := claims["sub"].(string)
	return sub
}
