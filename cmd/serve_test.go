package cmd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/idtx/idtx/fixtures"
	"github.com/idtx/idtx/internal/testconfig"
	"github.com/idtx/idtx/mockidp"
	"github.com/idtx/idtx/oauth"
)

// syncBuffer is a bytes.Buffer safe for the server goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServe runs `idtx serve` in-process on a free loopback port until the
// test ends, and returns its base URL and stderr; at the end it checks the
// server shut down cleanly, as it does on SIGINT/SIGTERM.
func startServe(t *testing.T, args ...string) (string, *syncBuffer) {
	t.Helper()
	stderr := &syncBuffer{}
	base, stop, err := startServeTo(stderr, "", args...)
	if err != nil {
		t.Fatalf("serve: %v\n%s", err, stderr)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("serve: %v", err)
		}
		if !strings.Contains(stderr.String(), `msg="shutting down"`) {
			t.Errorf("no clean shutdown in stderr:\n%s", stderr)
		}
	})
	return base, stderr
}

func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(context.Background(), args, &IO{In: strings.NewReader(""), Out: &out, Err: &errb})
	return strings.TrimSpace(out.String()), errb.String(), code
}

func exchangeForm(subject string, kv ...string) url.Values {
	f := url.Values{
		"grant_type":         {oauth.GrantTypeTokenExchange},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:jwt"},
		"subject_token":      {subject},
		"audience":           {"billing-api"},
		"scope":              {"billing:read"},
	}
	for i := 0; i+1 < len(kv); i += 2 {
		f.Set(kv[i], kv[i+1])
	}
	return f
}

func postToken(t *testing.T, base string, form url.Values, id, secret string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := http.DefaultClient.Do(req)
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

func claimsOf(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	json.Unmarshal(raw, &c)
	return c
}

// The flow of issue 2 end to end: serve --mock, mock token, exchange,
// consent grant seen at the next request, clean shutdown.
func TestServeMockEndToEnd(t *testing.T) {
	t.Setenv("IDTX_HOME", t.TempDir())
	t.Setenv("IDTX_STORE", "")
	base, stderr := startServe(t, "--mock")

	resp, err := http.Get(base + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", err, resp)
	}
	for _, want := range []string{"listening on " + base, "demo-client / demo-secret", "curl -s -u demo-client:demo-secret " + base + "/token", "/mock/jwks",
		"exchange --sts " + base + " --subject-token"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, stderr)
		}
	}

	alice, _, code := run(t, "mock", "token", "--sub", "alice")
	if code != 0 {
		t.Fatalf("mock token exit %d", code)
	}
	status, body := postToken(t, base, exchangeForm(alice), "demo-client", "demo-secret")
	if status != 200 {
		t.Fatalf("exchange: %d %v", status, body)
	}
	c := claimsOf(t, body["access_token"].(string))
	if c["iss"] != base || c["sub"] != "alice" || c["idp"] != mockidp.Name || c["scope"] != "billing:read" {
		t.Errorf("claims %v", c)
	}

	bob, _, _ := run(t, "mock", "token", "--sub", "bob")
	status, body = postToken(t, base, exchangeForm(bob), "demo-client", "demo-secret")
	if status != 400 || body["error"] != "consent_required" {
		t.Fatalf("bob without consent: %d %v", status, body)
	}
	if _, errOut, code := run(t, "consent", "grant", "--idp", mockidp.Name, "--user", "bob", "--service", "billing-api", "--scope", "billing:read"); code != 0 {
		t.Fatalf("consent grant: %d %s", code, errOut)
	}
	if status, body = postToken(t, base, exchangeForm(bob), "demo-client", "demo-secret"); status != 200 {
		t.Fatalf("bob after consent grant: %d %v", status, body)
	}

	// The restricted client is held to orders-api.
	status, body = postToken(t, base, exchangeForm(alice), "restricted-client", "restricted-secret")
	if status != 400 || body["error"] != "invalid_target" {
		t.Fatalf("restricted client for billing-api: %d %v", status, body)
	}
	status, body = postToken(t, base, exchangeForm(alice, "audience", "orders-api", "scope", "orders:read"), "restricted-client", "restricted-secret")
	if status != 200 {
		t.Fatalf("restricted client for orders-api: %d %v", status, body)
	}

	// mock token's flags reach the claims.
	tok, _, _ := run(t, "mock", "token", "--sub", "carol", "--aud", "x", "--scope", "a  b", "--ttl", "10m",
		"--claim", `groups=["ops"]`, "--claim", "email=carol@example.com", "--may-act", "gateway")
	mc := claimsOf(t, tok)
	if mc["sub"] != "carol" || mc["aud"] != "x" || mc["scope"] != "a b" || mc["email"] != "carol@example.com" ||
		mc["exp"].(float64)-mc["iat"].(float64) != 600 {
		t.Errorf("mock token claims %v", mc)
	}
	if g, _ := mc["groups"].([]any); len(g) != 1 || g[0] != "ops" {
		t.Errorf("groups %v", mc["groups"])
	}
	if ma, _ := mc["may_act"].(map[string]any); ma["sub"] != "gateway" {
		t.Errorf("may_act %v", mc["may_act"])
	}
}

// The mock internal IDP end to end: an opaque token minted offline by
// `mock token --format opaque` is validated by the running mock through
// its own /mock/introspect, and exchanged; a tampered one is refused.
func TestServeMockOpaqueToken(t *testing.T) {
	t.Setenv("IDTX_HOME", t.TempDir())
	base, stderr := startServe(t, "--mock", "--store", "memory:")
	if want := "introspected at POST " + base + "/mock/introspect"; !strings.Contains(stderr.String(), want) {
		t.Errorf("banner lacks %q:\n%s", want, stderr)
	}
	opaque, _, code := run(t, "mock", "token", "--format", "opaque", "--sub", "alice", "--scope", "orders:read")
	if code != 0 || !strings.HasPrefix(opaque, mockidp.InternalPrefix) {
		t.Fatalf("mock token --format opaque: exit %d, %q", code, opaque)
	}
	form := func(tok string) url.Values {
		return exchangeForm(tok, "audience", "orders-api", "scope", "orders:read",
			"subject_token_type", "urn:ietf:params:oauth:token-type:access_token")
	}
	status, body := postToken(t, base, form(opaque), "demo-client", "demo-secret")
	if status != 200 {
		t.Fatalf("exchange of an opaque token: %d %v", status, body)
	}
	if c := claimsOf(t, body["access_token"].(string)); c["sub"] != "alice" || c["idp"] != mockidp.InternalName || c["scope"] != "orders:read" {
		t.Errorf("claims %v", c)
	}

	// The CLI, as a user types it: exchange sends an opaque token as access_token.
	out, errOut, code := run(t, "exchange", "--sts", base, "--subject-token", opaque, "--audience", "orders-api")
	if code != 0 || claimsOf(t, out)["idp"] != mockidp.InternalName {
		t.Fatalf("idtx exchange: exit %d, %s", code, errOut)
	}

	signed, mac, _ := strings.Cut(opaque, ".")
	forged, _ := json.Marshal(map[string]any{"iss": mockidp.InternalIssuer, "sub": "root", "aud": "idtx-sts", "exp": time.Now().Add(time.Hour).Unix()})
	for name, tok := range map[string]string{
		"tampered MAC":    signed + "." + strings.Map(func(r rune) rune { return map[bool]rune{true: 'B', false: 'A'}[r == 'A'] }, mac[:1]) + mac[1:],
		"tampered claims": mockidp.InternalPrefix + base64.RawURLEncoding.EncodeToString(forged) + "." + mac,
	} {
		status, body := postToken(t, base, form(tok), "demo-client", "demo-secret")
		if status != 400 || body["error"] != "invalid_request" ||
			body["error_description"] != "subject_token: invalid token: IDP mock-internal says the token is not active (RFC 7662 §2.2: expired, revoked or never issued)" {
			t.Errorf("%s: %d %v", name, status, body)
		}
	}

	// The introspection endpoint wants the fixture credentials.
	req, _ := http.NewRequest(http.MethodPost, base+mockidp.IntrospectPath, strings.NewReader(url.Values{"token": {opaque}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(mockidp.InternalClientID, "wrong")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("introspect with a wrong secret: %d", resp.StatusCode)
	}
}

// --clock starts the server's clock at a recorded instant; --store memory:
// keeps nothing on disk and is still seeded with the mock's consents.
func TestServeClockAndMemoryStore(t *testing.T) {
	t.Setenv("IDTX_HOME", t.TempDir())
	at := time.Date(2021, 6, 1, 12, 0, 0, 0, time.UTC)
	base, _ := startServe(t, "--mock", "--clock", at.Format(time.RFC3339), "--store", "memory:")

	then, err := mockidp.JWT(mockidp.TokenOptions{Sub: "alice", Now: at.Add(-time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if status, body := postToken(t, base, exchangeForm(then), "demo-client", "demo-secret"); status != 200 {
		t.Fatalf("token from the server's clock: %d %v", status, body)
	}
	now, _ := mockidp.JWT(mockidp.TokenOptions{Sub: "alice"})
	status, body := postToken(t, base, exchangeForm(now), "demo-client", "demo-secret")
	if status != 400 || !strings.Contains(body["error_description"].(string), "issued in the future") {
		t.Fatalf("token from today on a 2021 clock: %d %v", status, body)
	}
}

// SIGTERM, as a process manager sends it, shuts the server down cleanly:
// exit 0 after "shutting down".
func TestServeSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "idtx")
	if out, err := exec.Command("go", "build", "-o", bin, "..").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "serve", "--mock", "--listen", "127.0.0.1:0", "--store", "memory:")
	cmd.Env = append(os.Environ(), "IDTX_HOME="+t.TempDir())
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	var seen strings.Builder
	for sc.Scan() {
		seen.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "listening on") {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
		seen.WriteString(sc.Text() + "\n")
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, seen.String())
	}
	if !strings.Contains(seen.String(), `msg="shutting down"`) {
		t.Fatalf("no clean shutdown:\n%s", seen.String())
	}
}

func jwksKid(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("%s/jwks: %v %v", base, err, set)
	}
	return set.Keys[0].Kid
}

// Item 8 of issue 8: `serve --mock` mints tokens for anyone, so it signs
// with a key of its own. A configured server in the same IDTX_HOME, even
// one whose issuer is the mock's, refuses what the mock issued.
func TestServeMockKeyIsNotTheConfiguredKey(t *testing.T) {
	home := t.TempDir()
	t.Setenv("IDTX_HOME", home)
	t.Setenv("IDTX_STORE", "")
	mockBase, mockErr := startServe(t, "--mock", "--store", "memory:")
	mockKey := filepath.Join(home, "mock", "sts-es256.pem")
	if fi, err := os.Stat(mockKey); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mock key %s: %v %v", mockKey, err, fi)
	}
	if want := "signing key " + mockKey + " (the mock's own"; !strings.Contains(mockErr.String(), want) {
		t.Errorf("mock banner lacks %q:\n%s", want, mockErr)
	}

	dir := t.TempDir()
	jwks, _ := fixtures.FS.ReadFile(fixtures.MockIDPJWKS)
	os.WriteFile(filepath.Join(dir, "mock-idp.jwks.json"), jwks, 0o600)
	// The same issuer as the mock: only the key tells their tokens apart.
	conf := `issuer: ` + mockBase + `
idps:
` + testconfig.MockIDP + `services:
  - name: orders-api
    audience: orders-api
    scopes: {orders:read: {}}
    default_scopes: [orders:read]
    token_lifetime: 5m
clients:
  - id: demo-client
    secret: demo-secret
    services: [orders-api]
    modes: [impersonation]
`
	os.WriteFile(filepath.Join(dir, "sts.yaml"), []byte(conf), 0o600)
	confBase, confErr := startServe(t, "--config", filepath.Join(dir, "sts.yaml"), "--store", "memory:")
	if want := "signing key the store's key set (signing now: kid "; !strings.Contains(confErr.String(), want) {
		t.Errorf("config banner lacks %q:\n%s", want, confErr)
	}
	mockKid, confKid := jwksKid(t, mockBase), jwksKid(t, confBase)
	if mockKid == confKid {
		t.Fatalf("the mock and the configured server publish the same key %s", mockKid)
	}

	subject, err := mockidp.JWT(mockidp.TokenOptions{Sub: "mallory"})
	if err != nil {
		t.Fatal(err)
	}
	orders := []string{"audience", "orders-api", "scope", "orders:read"}
	status, body := postToken(t, mockBase, exchangeForm(subject, orders...), "demo-client", "demo-secret")
	if status != 200 {
		t.Fatalf("mock exchange: %d %v", status, body)
	}
	fromMock := body["access_token"].(string)
	status, body = postToken(t, confBase, exchangeForm(subject, orders...), "demo-client", "demo-secret")
	if status != 200 {
		t.Fatalf("configured exchange: %d %v", status, body)
	}
	fromConf := body["access_token"].(string)

	chained := append([]string{"subject_token_type", oauth.TokenTypeAccessToken}, orders...)
	// Control: the configured server takes back its own token.
	if status, body = postToken(t, confBase, exchangeForm(fromConf, chained...), "demo-client", "demo-secret"); status != 200 {
		t.Fatalf("own token as subject: %d %v", status, body)
	}
	status, body = postToken(t, confBase, exchangeForm(fromMock, chained...), "demo-client", "demo-secret")
	desc, _ := body["error_description"].(string)
	if status != 400 || body["error"] != "invalid_request" || !strings.Contains(desc, `kid "`+mockKid+`" is not in the IDP's key set`) {
		t.Fatalf("mock's token as subject of the configured server: %d %v", status, body)
	}

	if _, errOut, code := run(t, "inspect", fromMock, "--verify", "--jwks", confBase+"/jwks"); code != ExitRejected || !strings.Contains(errOut, "verification failed") {
		t.Errorf("inspect --verify of the mock's token with the configured JWKS: exit %d %s", code, errOut)
	}
	if _, errOut, code := run(t, "inspect", fromConf, "--verify", "--jwks", confBase+"/jwks"); code != 0 {
		t.Errorf("inspect --verify of the configured server's token: exit %d %s", code, errOut)
	}

	// The mock's key survives a restart, so its tokens do too.
	again, _ := startServe(t, "--mock", "--store", "memory:")
	if kid := jwksKid(t, again); kid != mockKid {
		t.Errorf("restarted mock publishes %s, want %s", kid, mockKid)
	}
}
