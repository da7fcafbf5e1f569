package attack

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
)

// argon2idHash is a PHC argon2id secret_hash of secret (RFC 9106) with m
// KiB of memory, one pass and one lane, as `idtx secret hash` writes them.
func argon2idHash(secret string, m uint32) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	key := argon2.IDKey([]byte(secret), salt, 1, m, 1, 32)
	enc := base64.RawStdEncoding.EncodeToString
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=1,p=1$%s$%s", m, enc(salt), enc(key))
}

// The answers to a wrong client secret: refused, or, when every hash
// verifier is busy, turned away before any hash memory is spent.
const (
	wrongSecretBasic = "client authentication failed (client_secret_basic): unknown client or wrong secret"
	verifierBusy     = "client authentication (client_secret_basic): every secret hash verifier is busy; retry in "
)

// TestHashedSecretFlood is issue 8 item 1 against a running server: a
// client whose secret_hash is argon2id at the 64 MiB ceiling, and 120
// concurrent wrong secrets for it. The server's memory stays under
// rssLimit, another client's valid exchange is answered meanwhile, an
// unknown client id is answered as a known one is, and each failure is
// logged with the client id that was tried.
func TestHashedSecretFlood(t *testing.T) {
	const hashedSecret = "hashed-secret-7d2e"
	f := newFixtureMore(t, fixtureMore{clients: `  - id: hashed-client
    secret_hash: "` + argon2idHash(hashedSecret, 64<<10) + `"
    services: ["*"]
`})
	e := &env{fixture: f, srv: startServer(t, serveOptions{config: f.config})}
	corp := func() string { return e.corp.sign(t, claims(nil), nil) }

	// Control: the hash is right, so the wrong secrets below are wrong
	// only by their text. The second exchange is served from the cache of
	// verified secrets.
	for i := range 2 {
		start := time.Now()
		_, c := e.srv.mustExchange(t, exchangeForm(corp()), "hashed-client", hashedSecret)
		if c["client_id"] != "hashed-client" {
			t.Fatalf("client_id = %v, want hashed-client", c["client_id"])
		}
		t.Logf("valid secret for hashed-client, exchange %d: %s", i+1, time.Since(start).Round(time.Millisecond))
	}

	w := watchRSS(e.srv)
	const flood = 120
	body := exchangeForm(corp()).Encode()
	floodClient := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: flood}}
	defer floodClient.CloseIdleConnections()
	var refused, busy, answered atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for i := range flood {
		wg.Go(func() {
			defer answered.Add(1)
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/token", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth("hashed-client", fmt.Sprintf("wrong-%d", i))
			resp, err := floodClient.Do(req)
			if err != nil {
				firstErr.CompareAndSwap(nil, err.Error())
				return
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var got struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			json.Unmarshal(raw, &got)
			switch {
			case resp.StatusCode == http.StatusUnauthorized && got.Error == "invalid_client" && got.Description == wrongSecretBasic:
				refused.Add(1)
			case resp.StatusCode == http.StatusServiceUnavailable && got.Error == "temporarily_unavailable" &&
				strings.HasPrefix(got.Description, verifierBusy) && resp.Header.Get("Retry-After") != "":
				busy.Add(1)
			default:
				firstErr.CompareAndSwap(nil, fmt.Sprintf("wrong secret %d: %s %s", i, resp.Status, raw))
			}
		})
	}

	// During the flood, demo-client (a plain secret) exchanges a token.
	// Its latency is logged, not asserted: this machine is shared.
	waitFor(t, 10*time.Second, "the flood to reach the server", func() bool {
		n, err := openFiles(e.srv.PID)
		return answered.Load() > 0 || (err == nil && n >= flood)
	})
	for i := range 3 {
		start := time.Now()
		e.srv.mustExchange(t, exchangeForm(corp()))
		t.Logf("during the flood: demo-client's valid exchange %d answered in %s (%d of %d wrong secrets answered by then)",
			i+1, time.Since(start).Round(time.Millisecond), answered.Load(), flood)
		// The next sample once more of the flood has been answered.
		before := answered.Load()
		waitFor(t, 30*time.Second, "more of the flood to be answered", func() bool {
			n := answered.Load()
			return n > before || n == flood
		})
	}
	wg.Wait()
	t.Logf("%d wrong secrets: %d refused after a verification, %d turned away busy", flood, refused.Load(), busy.Load())
	if err := firstErr.Load(); err != nil {
		t.Fatalf("a wrong secret was answered otherwise than 401 %q or 503 %q: %v", wrongSecretBasic, verifierBusy, err)
	}
	if n := refused.Load() + busy.Load(); n != flood {
		t.Fatalf("%d of %d wrong secrets refused", n, flood)
	}
	w.check(t)

	t.Run("an unknown client id is answered as a known one", func(t *testing.T) {
		known := e.srv.exchange(t, exchangeForm(corp()), "hashed-client", "wrong-known")
		unknown := e.srv.exchange(t, exchangeForm(corp()), "no-such-client", "wrong-unknown")
		expectRefusal(t, known, http.StatusUnauthorized, "invalid_client", wrongSecretBasic)
		expectRefusal(t, unknown, http.StatusUnauthorized, "invalid_client", wrongSecretBasic)
		if string(known.raw) != string(unknown.raw) || known.header.Get("WWW-Authenticate") != unknown.header.Get("WWW-Authenticate") {
			t.Fatalf("known client answered %s (%q), unknown %s (%q)", known.raw, known.header.Get("WWW-Authenticate"),
				unknown.raw, unknown.header.Get("WWW-Authenticate"))
		}
	})

	t.Run("a failed client authentication is logged with the id tried", func(t *testing.T) {
		for _, id := range []string{"hashed-client", "no-such-client"} {
			if line := waitLogLine(e.srv, func(rec map[string]any) bool {
				return rec["msg"] == "exchange refused" && rec["client"] == id && rec["result"] == "invalid_client" &&
					rec["step"] == "client" && rec["reason"] == wrongSecretBasic
			}); line == "" {
				t.Errorf("no log line `exchange refused` with client %q, result invalid_client, step client and reason %q:\n%s",
					id, wrongSecretBasic, e.srv.stderr)
			}
		}
	})
}

// waitLogLine waits up to 2s for a JSON log line of s that match accepts,
// and returns it ("" if none came).
func waitLogLine(s *server, match func(map[string]any) bool) string {
	for deadline := time.Now().Add(2 * time.Second); ; {
		sc := bufio.NewScanner(strings.NewReader(s.stderr.String()))
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) == nil && match(rec) {
				return sc.Text()
			}
		}
		if time.Now().After(deadline) {
			return ""
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestConfigRefusesCostlySecretHash runs `idtx config validate` on a
// config whose secret_hash asks 128 MiB per verification: it is refused
// with the line naming the client and the 64 MiB ceiling, and exit 2.
func TestConfigRefusesCostlySecretHash(t *testing.T) {
	// The salt and digest are well formed; the ceiling is what refuses it.
	const rest = "$c2FsdHNhbHRzYWx0$MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"
	dir := t.TempDir()
	write := func(name, m string) string {
		path := filepath.Join(dir, name)
		cfg := `services:
  - {name: s, scopes: {r: {}}}
clients:
  - {id: big, secret_hash: "$argon2id$v=19$m=` + m + `,t=1,p=1` + rest + `", services: ["*"]}
`
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}

	tooBig := write("big.yaml", "131072")
	out, errOut, err := idtx(t, t.TempDir(), "config", "validate", tooBig)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("idtx config validate: %v, want exit 1 (invalid)\nstdout %q\nstderr %q", err, out, errOut)
	}
	want := tooBig + ":4: clients[0] (big): secret_hash: argon2id m=131072 KiB exceeds the 64 MiB ceiling\n"
	if !strings.Contains(errOut, want) {
		t.Fatalf("stderr %q\nwant the line %q", errOut, want)
	}

	atCeiling := write("ceiling.yaml", "65536")
	if out, errOut, err := idtx(t, t.TempDir(), "config", "validate", atCeiling); err != nil || !strings.HasPrefix(out, atCeiling+": valid\n") {
		t.Fatalf("idtx config validate at the ceiling: %v\nstdout %q\nstderr %q", err, out, errOut)
	}
}
