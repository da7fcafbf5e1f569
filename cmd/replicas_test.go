package cmd

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/idtx/idtx/fixtures"
	"github.com/idtx/idtx/idp"
	"github.com/idtx/idtx/internal/testconfig"
	"github.com/idtx/idtx/mockidp"
	"github.com/idtx/idtx/oauth"
	"github.com/idtx/idtx/store/pgtest"
)

// replicaIssuer is the one issuer of replicas behind a load balancer.
const replicaIssuer = "https://sts.example.test"

// replicaSetup is a server config for replicas: the mock IDP, one service
// whose scope needs consent, a secret client and a private_key_jwt one,
// keys sealed under a KEK file.
type replicaSetup struct {
	config    string
	clientKey *ecdsa.PrivateKey
	clientKid string
}

func newReplicaSetup(t *testing.T) *replicaSetup {
	t.Helper()
	dir := t.TempDir()
	jwks, _ := fixtures.FS.ReadFile(fixtures.MockIDPJWKS)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwk, _ := idp.PublicJWK(key.Public())
	kid := idp.Thumbprint(jwk)
	jwk["kid"], jwk["alg"] = kid, "ES256"
	clientJWKS, _ := json.Marshal(map[string]any{"keys": []any{jwk}})
	files := map[string]string{
		"mock-idp.jwks.json": string(jwks),
		"client.jwks":        string(clientJWKS),
		"kek":                "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n",
		"sts.yaml": `issuer: ` + replicaIssuer + `
signing: {alg: ES256, kek_file: kek}
idps:
` + testconfig.MockIDP + `services:
  - name: billing-api
    audience: billing-api
    scopes: {billing:read: {consent: true}}
    default_scopes: [billing:read]
    token_lifetime: 5m
clients:
  - id: demo-client
    secret: demo-secret
    services: [billing-api]
    modes: [impersonation]
  - id: jwt-client
    jwks_file: client.jwks
    services: [billing-api]
    modes: [impersonation]
`,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return &replicaSetup{config: filepath.Join(dir, "sts.yaml"), clientKey: key, clientKid: kid}
}

// startReplica runs `idtx serve` in-process with its own IDTX_HOME.
func startReplica(t *testing.T, args ...string) string {
	t.Helper()
	stderr := &syncBuffer{}
	base, stop, err := startServeTo(stderr, t.TempDir(), args...)
	if err != nil {
		t.Fatalf("serve: %v\n%s", err, stderr)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return base
}

func (r *replicaSetup) assertion(t *testing.T, jti string) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": "jwt-client", "sub": "jwt-client", "aud": replicaIssuer, "jti": jti,
		"exp": time.Now().Add(time.Minute).Unix(), "iat": time.Now().Unix(),
	})
	tok.Header["kid"] = r.clientKid
	s, err := tok.SignedString(r.clientKey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// postForm posts a token request without HTTP Basic credentials.
func postForm(t *testing.T, base string, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(base+"/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func wantOAuthError(t *testing.T, what string, status int, body map[string]any, wantStatus int, code, desc string) {
	t.Helper()
	if status != wantStatus || body["error"] != code || body["error_description"] != desc {
		t.Fatalf("%s: %d %v, want %d %s %q", what, status, body, wantStatus, code, desc)
	}
}

func mockSubject(t *testing.T, sub string) string {
	t.Helper()
	s, err := mockidp.JWT(mockidp.TokenOptions{Sub: sub})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Two replicas on different ports over one PostgreSQL database agree: a
// consent granted through the CLI is honoured by both at their next
// request, a client assertion used at one is refused at the other, and a
// token minted by one verifies with the other's /jwks (one key set,
// made once, sealed under the KEK).
func TestReplicasShareOnePostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	r := newReplicaSetup(t)
	a := startReplica(t, "--config", r.config, "--store", dsn)
	b := startReplica(t, "--config", r.config, "--store", dsn)
	if ka, kb := jwksKid(t, a), jwksKid(t, b); ka != kb {
		t.Fatalf("replicas publish %s and %s: two key sets", ka, kb)
	}

	subject := mockSubject(t, "alice")
	status, body := postToken(t, a, exchangeForm(subject), "demo-client", "demo-secret")
	wantOAuthError(t, "before the grant", status, body, 400, "consent_required",
		"alice of IDP mock has not consented to billing:read for billing-api")
	if _, errOut, code := run(t, "consent", "grant", "--store", dsn, "--idp", "mock", "--user", "alice", "--service", "billing-api", "--scope", "billing:read"); code != 0 {
		t.Fatalf("consent grant: exit %d %s", code, errOut)
	}
	status, body = postToken(t, b, exchangeForm(subject), "demo-client", "demo-secret")
	if status != 200 {
		t.Fatalf("replica b after the grant through the CLI: %d %v", status, body)
	}
	fromB := body["access_token"].(string)
	status, body = postToken(t, a, exchangeForm(subject), "demo-client", "demo-secret")
	if status != 200 {
		t.Fatalf("replica a after the grant: %d %v", status, body)
	}
	fromA := body["access_token"].(string)

	// Each replica's token verifies with the other's /jwks, as a resource
	// server behind the load balancer checks it.
	for _, c := range []struct{ token, jwksOf string }{{fromB, a}, {fromA, b}} {
		if _, errOut, code := run(t, "inspect", c.token, "--verify", "--jwks", c.jwksOf+"/jwks"); code != 0 {
			t.Errorf("inspect --verify with %s/jwks: exit %d %s", c.jwksOf, code, errOut)
		}
	}
	// And the other replica takes it back as a subject token.
	chained := exchangeForm(fromB, "subject_token_type", oauth.TokenTypeAccessToken)
	if status, body = postToken(t, a, chained, "demo-client", "demo-secret"); status != 200 {
		t.Fatalf("b's token as subject at a: %d %v", status, body)
	}

	form := exchangeForm(subject, "client_assertion_type", oauth.ClientAssertionTypeJWTBearer,
		"client_assertion", r.assertion(t, "replayed-jti"))
	if status, body = postForm(t, a, form); status != 200 {
		t.Fatalf("assertion at a: %d %v", status, body)
	}
	status, body = postForm(t, b, form)
	wantOAuthError(t, "the same assertion at b", status, body, 401, "invalid_client", `client_assertion: jti "replayed-jti" was already used`)

	// A revocation through the CLI decides the next exchange at each
	// replica: neither remembers a consent (docs/operations.md).
	if _, errOut, code := run(t, "consent", "revoke", "--store", dsn, "--idp", "mock", "--user", "alice", "--service", "billing-api"); code != 0 {
		t.Fatalf("consent revoke: exit %d %s", code, errOut)
	}
	for name, base := range map[string]string{"a": a, "b": b} {
		status, body = postToken(t, base, exchangeForm(subject), "demo-client", "demo-secret")
		wantOAuthError(t, "replica "+name+" after the revocation", status, body, 400, "consent_required",
			"alice of IDP mock has not consented to billing:read for billing-api")
	}
}

// PostgreSQL stopped: the exchange that needs it answers 503
// temporarily_unavailable, naming the store, for the consent check and
// for the jti replay cache; started again, the server recovers by itself.
func TestServePostgresDownThenBack(t *testing.T) {
	cluster := pgtest.Start(t)
	dsn := pgtest.NewDatabase(t, cluster.DSN())
	r := newReplicaSetup(t)
	base := startReplica(t, "--config", r.config, "--store", dsn)
	if _, errOut, code := run(t, "consent", "grant", "--store", dsn, "--idp", "mock", "--user", "alice", "--service", "billing-api", "--scope", "billing:read"); code != 0 {
		t.Fatalf("consent grant: exit %d %s", code, errOut)
	}
	subject := mockSubject(t, "alice")
	if status, body := postToken(t, base, exchangeForm(subject), "demo-client", "demo-secret"); status != 200 {
		t.Fatalf("with the database up: %d %v", status, body)
	}

	cluster.Stop()
	status, body := postToken(t, base, exchangeForm(subject), "demo-client", "demo-secret")
	wantOAuthError(t, "consent with the database stopped", status, body, 503, "temporarily_unavailable",
		"consent: the consent store is unavailable; retry shortly")
	form := exchangeForm(subject, "client_assertion_type", oauth.ClientAssertionTypeJWTBearer,
		"client_assertion", r.assertion(t, "while-down"))
	status, body = postForm(t, base, form)
	wantOAuthError(t, "client assertion with the database stopped", status, body, 503, "temporarily_unavailable",
		"client_assertion: the jti replay cache is unavailable; retry shortly")
	// /jwks still answers from the keys already read.
	if kid := jwksKid(t, base); kid == "" {
		t.Fatal("no key in /jwks while the database is stopped")
	}

	cluster.StartAgain()
	// The first request after the restart may meet a pooled connection
	// that the restart cut; a client's retry then succeeds.
	for attempt := 1; ; attempt++ {
		status, body = postToken(t, base, exchangeForm(subject), "demo-client", "demo-secret")
		if status == 200 {
			break
		}
		if attempt == 3 || status != 503 {
			t.Fatalf("after the database came back, attempt %d: %d %v", attempt, status, body)
		}
	}
	if status, body = postForm(t, base, exchangeForm(subject, "client_assertion_type", oauth.ClientAssertionTypeJWTBearer,
		"client_assertion", r.assertion(t, "after-restart"))); status != 200 {
		t.Fatalf("client assertion after the database came back: %d %v", status, body)
	}
}

// startProcess runs `idtx serve` as a process of its own (the test binary
// under the name idtx, which testscript puts on PATH) on a free port and
// returns its base URL once it answers.
func startProcess(t *testing.T, home string, args ...string) (string, *exec.Cmd) {
	t.Helper()
	bin, err := exec.LookPath("idtx")
	if err != nil {
		t.Fatalf("idtx is not on PATH: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, append([]string{"serve", "--listen", addr}, args...)...)
	cmd.Env = append(os.Environ(), "IDTX_HOME="+home)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	base := "http://" + addr
	for range 300 {
		select {
		case <-exited:
			t.Fatalf("serve exited:\n%s", stderr)
		default:
		}
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			return base, cmd
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("serve does not answer on %s:\n%s", addr, stderr)
	return "", nil
}

// A consent write that `idtx consent grant` acknowledged (exit 0)
// survives kill -9 of the server: a new server on the same store honours
// it. SQLite (the server holds the file open in WAL mode) and PostgreSQL.
func TestConsentSurvivesKill9(t *testing.T) {
	stores := map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "idtx.db") },
		"postgres": func(t *testing.T) string { return pgtest.DSN(t) },
	}
	for name, store := range stores {
		t.Run(name, func(t *testing.T) {
			url := store(t)
			home := t.TempDir()
			r := newReplicaSetup(t)
			base, server := startProcess(t, home, "--config", r.config, "--store", url)
			subject := mockSubject(t, "carol")
			status, body := postToken(t, base, exchangeForm(subject), "demo-client", "demo-secret")
			wantOAuthError(t, "before the grant", status, body, 400, "consent_required",
				"carol of IDP mock has not consented to billing:read for billing-api")

			grant := exec.Command("idtx", "consent", "grant", "--store", url, "--idp", "mock", "--user", "carol",
				"--service", "billing-api", "--scope", "billing:read")
			grant.Env = append(os.Environ(), "IDTX_HOME="+home)
			if out, err := grant.CombinedOutput(); err != nil {
				t.Fatalf("consent grant: %v\n%s", err, out)
			}
			if err := server.Process.Kill(); err != nil { // SIGKILL
				t.Fatal(err)
			}

			base, _ = startProcess(t, home, "--config", r.config, "--store", url)
			if status, body = postToken(t, base, exchangeForm(subject), "demo-client", "demo-secret"); status != 200 {
				t.Fatalf("after kill -9 and a restart: %d %v", status, body)
			}
		})
	}
}
