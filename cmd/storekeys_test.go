package cmd

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/idtx/idtx/store/pgtest"
)

// stores are the three kinds of store a server runs on.
var stores = map[string]func(t *testing.T) string{
	"memory":   func(t *testing.T) string { return "memory:" },
	"sqlite":   func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "idtx.db") },
	"postgres": func(t *testing.T) string { return pgtest.DSN(t) },
}

// readyzOf is GET /readyz: its status and body.
func readyzOf(t *testing.T, base string) (int, string) {
	t.Helper()
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body))
}

// On every store a running server is ready while exchanges succeed, and a
// subject token whose sub holds a control character gets the same answer:
// invalid_request naming it, never a 500 (PostgreSQL refuses NUL in text)
// nor a consent lookup.
func TestReadyAndControlCharacterSubOnEveryStore(t *testing.T) {
	for name, store := range stores {
		t.Run(name, func(t *testing.T) {
			r := newReplicaSetup(t)
			base := startReplica(t, "--config", r.config, "--store", store(t))
			if status, body := readyzOf(t, base); status != 200 || body != `{"ready":true,"store":"ok"}` {
				t.Fatalf("/readyz: %d %s", status, body)
			}
			status, body := postToken(t, base, exchangeForm(mockSubject(t, "alice")), "demo-client", "demo-secret")
			wantOAuthError(t, "alice", status, body, 400, "consent_required",
				"alice of IDP mock has not consented to billing:read for billing-api")
			for sub, char := range map[string]string{"al\x00ice": "U+0000", "alice\nadmin": "U+000A", "\x1b[31malice": "U+001B", "alice\u0085": "U+0085"} {
				status, body := postToken(t, base, exchangeForm(mockSubject(t, sub)), "demo-client", "demo-secret")
				wantOAuthError(t, "sub "+url.QueryEscape(sub), status, body, 400, "invalid_request",
					"subject_token: invalid token: its subject contains the control character "+char+": a sub must be printable text")
			}
		})
	}
}

// The SQLite store, which holds the signing keys, is created 0600 with its
// -wal and -shm; a store that others can read gets a warning saying how
// to close it.
func TestServeSQLiteStoreModes(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	r := newReplicaSetup(t)
	path := filepath.Join(t.TempDir(), "idtx.db")
	base := startReplica(t, "--config", r.config, "--store", "sqlite:"+path)
	postToken(t, base, exchangeForm(mockSubject(t, "alice")), "demo-client", "demo-secret")
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %04o, want 0600", filepath.Base(p), fi.Mode().Perm())
		}
	}

	exposed := filepath.Join(t.TempDir(), "old.db")
	if err := os.WriteFile(exposed, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(exposed, 0o644)
	stderr := &syncBuffer{}
	_, stop, err := startServeTo(stderr, t.TempDir(), "--config", r.config, "--store", "sqlite:"+exposed)
	if err != nil {
		t.Fatalf("serve: %v\n%s", err, stderr)
	}
	stop()
	want := "idtx: warning: " + exposed + " can be read by other users (mode 0644) and holds the signing keys and consents: chmod 600 " + exposed + "\n"
	if !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr)
	}
}

// A configured server that finds sealed keys and has no key-encryption key
// refuses to start, naming the settings that give it.
func TestServeSealedKeysWithoutKEK(t *testing.T) {
	r := newReplicaSetup(t)
	store := "sqlite:" + filepath.Join(t.TempDir(), "idtx.db")
	startReplica(t, "--config", r.config, "--store", store) // seals the first key
	cfg, _ := os.ReadFile(r.config)
	os.WriteFile(r.config, []byte(strings.Replace(string(cfg), "kek_file: kek", "rotate_every: 24h", 1)), 0o600)
	t.Setenv("IDTX_KEK", "")
	_, errOut, code := run(t, "serve", "--listen", "127.0.0.1:0", "--config", r.config, "--store", store)
	if code != ExitFailure || !strings.Contains(errOut, "is encrypted: give its key-encryption key (signing.kek_file or IDTX_KEK)") {
		t.Fatalf("serve without the KEK: exit %d %s", code, errOut)
	}
}

// Replicas over PostgreSQL need one issuer: without it each would make
// its own of its listen address. The refusal, like the banner and the
// JSON log, never shows the database password.
func TestServeSharedStoreNeedsIssuer(t *testing.T) {
	r := newReplicaSetup(t)
	cfg, _ := os.ReadFile(r.config)
	noIssuer := filepath.Join(filepath.Dir(r.config), "no-issuer.yaml")
	os.WriteFile(noIssuer, []byte(strings.Replace(string(cfg), "issuer: "+replicaIssuer+"\n", "", 1)), 0o600)
	_, errOut, code := run(t, "serve", "--listen", "127.0.0.1:0", "--config", noIssuer, "--store", "postgres://idtx:S3cretPw@127.0.0.1:1/idtx")
	want := "idtx: issuer: a store shared by replicas (postgres://idtx:xxxxx@127.0.0.1:1/idtx) needs the config to set issuer (or --issuer, IDTX_ISSUER), the public URL every replica issues tokens as\n"
	if code != ExitUsage || errOut != want {
		t.Fatalf("serve without issuer on postgres: exit %d %q, want %d %q", code, errOut, ExitUsage, want)
	}
	// --issuer counts as the config's: the server goes on to the store
	// (which nothing answers at port 1).
	_, errOut, code = run(t, "serve", "--listen", "127.0.0.1:0", "--config", noIssuer, "--store", "postgres://idtx:S3cretPw@127.0.0.1:1/idtx", "--issuer", replicaIssuer)
	if code == ExitOK || strings.Contains(errOut, "issuer") || !strings.Contains(errOut, "connection refused") {
		t.Fatalf("serve --issuer on postgres: exit %d %q, want a failure to reach the store", code, errOut)
	}
}

// The banner and the JSON listening record show the store without its
// password.
func TestServeRedactsStorePassword(t *testing.T) {
	u, err := url.Parse(pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	// The test cluster trusts loopback: the password is carried, not checked.
	u.User = url.UserPassword(u.User.Username(), "S3cretPw")
	r := newReplicaSetup(t)
	for _, format := range []string{"text", "json"} {
		stderr := &syncBuffer{}
		_, stop, err := startServeTo(stderr, t.TempDir(), "--config", r.config, "--store", u.String(), "--log-format", format)
		if err != nil {
			t.Fatalf("serve: %v\n%s", err, stderr)
		}
		stop()
		out := stderr.String()
		redacted := strings.Replace(u.String(), "S3cretPw", "xxxxx", 1)
		want := "  store       " + redacted + "\n"
		if format == "json" {
			var b strings.Builder
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false)
			enc.Encode(redacted)
			want = `"store":` + strings.TrimSpace(b.String())
		}
		if strings.Contains(out, "S3cretPw") || !strings.Contains(out, want) {
			t.Errorf("--log-format %s: stderr shows the password or lacks %q:\n%s", format, want, out)
		}
	}
}

// Two configs over one store that differ only in token_lifetime: the 1h
// replica records its lifetime when it starts, so `keys rotate` with the
// 5m config keeps the key it took over from for 1h after the new key
// signs, and says so.
func TestKeysRotateKeepsTheLongestLifetime(t *testing.T) {
	r := newReplicaSetup(t)
	cfg, _ := os.ReadFile(r.config)
	long := filepath.Join(filepath.Dir(r.config), "sts-1h.yaml")
	os.WriteFile(long, []byte(strings.Replace(string(cfg), "token_lifetime: 5m", "token_lifetime: 1h", 1)), 0o600)
	store := "sqlite:" + filepath.Join(t.TempDir(), "idtx.db")
	base := startReplica(t, "--config", long, "--store", store)
	first := jwksKid(t, base)

	at := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	kid, errOut, code := run(t, "keys", "rotate", "--config", r.config, "--store", store, "--at", at.Format(time.RFC3339))
	if code != 0 {
		t.Fatalf("keys rotate: exit %d %s", code, errOut)
	}
	want := "added key " + kid + " (ES256): published from now, signs from " + at.Format(time.RFC3339) +
		"; the key it takes over from stays published until " + at.Add(time.Hour).Format(time.RFC3339) + " (1h0m0s later)\n"
	if errOut != want {
		t.Errorf("keys rotate stderr:\n%s\nwant\n%s", errOut, want)
	}
	rows := keysList(t, store)
	if len(rows) != 2 || rows[0].KID != first || rows[0].RetireAfter == nil || !rows[0].RetireAfter.Equal(at.Add(time.Hour)) {
		t.Fatalf("keys list: %+v; want %s retiring at %s", rows, first, at.Add(time.Hour))
	}
}

func keysList(t *testing.T, store string) []keyRow {
	t.Helper()
	out, errOut, code := run(t, "keys", "list", "--store", store, "-o", "json")
	var rows []keyRow
	if code != 0 || json.Unmarshal([]byte(out), &rows) != nil {
		t.Fatalf("keys list: exit %d %s %s", code, out, errOut)
	}
	return rows
}

// Without a key-encryption key, rotate refuses (exit 1) unless
// --insecure-plaintext-key, and beside sealed keys it refuses even then.
func TestKeysRotateWithoutKEK(t *testing.T) {
	t.Setenv("IDTX_KEK", "")
	plain := "sqlite:" + filepath.Join(t.TempDir(), "idtx.db")
	_, errOut, code := run(t, "keys", "rotate", "--store", plain)
	want := "idtx: no key-encryption key: give --kek-file, signing.kek_file in --config, or IDTX_KEK (base64 of 32 random bytes: openssl rand -base64 32), or --insecure-plaintext-key to store the private key unencrypted\n"
	if code != ExitFailure || errOut != want {
		t.Fatalf("rotate without a KEK: exit %d %q, want 1 %q", code, errOut, want)
	}
	if rows := keysList(t, plain); len(rows) != 0 {
		t.Fatalf("a refused rotation stored %+v", rows)
	}
	_, errOut, code = run(t, "keys", "rotate", "--store", plain, "--insecure-plaintext-key")
	if code != 0 || !strings.Contains(errOut, "idtx: warning: signing keys are stored unencrypted in the store") ||
		!strings.Contains(errOut, "idtx: no --config: the key it takes over from stays published for 24h0m0s after the new key signs") {
		t.Fatalf("rotate --insecure-plaintext-key: exit %d %s", code, errOut)
	}
	if rows := keysList(t, plain); len(rows) != 1 || rows[0].Sealed {
		t.Fatalf("keys after --insecure-plaintext-key: %+v", rows)
	}

	r := newReplicaSetup(t)
	sealed := "sqlite:" + filepath.Join(t.TempDir(), "idtx.db")
	if _, errOut, code := run(t, "keys", "rotate", "--config", r.config, "--store", sealed); code != 0 {
		t.Fatalf("rotate with the KEK: exit %d %s", code, errOut)
	}
	for _, args := range [][]string{{}, {"--insecure-plaintext-key"}} {
		_, errOut, code := run(t, append([]string{"keys", "rotate", "--store", sealed}, args...)...)
		want := "idtx: the store's signing keys are sealed: give the key-encryption key (signing.kek_file or IDTX_KEK) so that the new key is sealed too\n"
		if code != ExitFailure || errOut != want {
			t.Errorf("rotate %v on a sealed store: exit %d %q, want 1 %q", args, code, errOut, want)
		}
	}
	if rows := keysList(t, sealed); len(rows) != 1 || !rows[0].Sealed {
		t.Fatalf("keys after the refusals: %+v", rows)
	}
}

// An --at sooner than the publication lead, or past, is refused: it would
// sign tokens resource servers cannot verify yet, and a past one retired
// the previous key at once. With --insecure-sign-unpublished a past --at
// signs from now, and the previous key stays for the tokens it signed.
func TestKeysRotateAtInThePast(t *testing.T) {
	r := newReplicaSetup(t)
	store := "sqlite:" + filepath.Join(t.TempDir(), "idtx.db")
	startReplica(t, "--config", r.config, "--store", store)
	for _, at := range []string{"-1h", "+1m", time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)} {
		_, errOut, code := run(t, "keys", "rotate", "--config", r.config, "--store", store, "--at", at)
		if code != ExitUsage || !strings.Contains(errOut, "is less than 5m30s from now: resource servers that cached /jwks would refuse the new key's tokens; sign from ") ||
			!strings.Contains(errOut, " or later, or add --insecure-sign-unpublished\n") {
			t.Errorf("--at %s: exit %d %s", at, code, errOut)
		}
	}
	if rows := keysList(t, store); len(rows) != 1 {
		t.Fatalf("refused rotations stored keys: %+v", rows)
	}
	before := time.Now().Truncate(time.Second)
	kid, errOut, code := run(t, "keys", "rotate", "--config", r.config, "--store", store, "--at", "-1h", "--insecure-sign-unpublished")
	after := time.Now()
	if code != 0 || !strings.Contains(errOut, "idtx: warning: the new key signs from ") {
		t.Fatalf("--at -1h --insecure-sign-unpublished: exit %d %s", code, errOut)
	}
	rows := keysList(t, store)
	// From now, or a second after the previous key began if that is now.
	if len(rows) != 2 || rows[1].KID != kid || rows[1].SignsFrom.Before(before) || rows[1].SignsFrom.After(after.Add(time.Second)) {
		t.Fatalf("keys list: %+v; want %s signing from now (%s..%s)", rows, kid, before, after)
	}
	if rows[0].RetireAfter == nil || !rows[0].RetireAfter.Equal(rows[1].SignsFrom.Add(5*time.Minute)) {
		t.Fatalf("the previous key retires at %v, want 5m after %s", rows[0].RetireAfter, rows[1].SignsFrom)
	}
	signsFrom := "signs from " + rows[1].SignsFrom.UTC().Format(time.RFC3339)
	if strings.Count(errOut, signsFrom) != 2 {
		t.Errorf("stderr does not say the key signs from %s:\n%s", rows[1].SignsFrom.UTC().Format(time.RFC3339), errOut)
	}
}

// config init names the IDP after its host, or its path when the host is
// an address, never after a number.
func TestIDPName(t *testing.T) {
	for in, want := range map[string]string{
		"https://login.example.com/realms/corp": "login",
		"http://127.0.0.1:5556/dex":             "dex",
		"http://[::1]:5556/dex/":                "dex",
		"http://localhost:8080/realms/Corp":     "corp",
		"http://127.0.0.1:8080":                 "",
		"http://10.0.0.1/2024":                  "",
		"https://accounts.google.com":           "accounts",
	} {
		u, _ := url.Parse(in)
		if got := idpName(u); got != want {
			t.Errorf("idpName(%s) = %q, want %q", in, got, want)
		}
	}
}

// rotateAt runs `idtx keys rotate args...` as of now.
func rotateAt(t *testing.T, now time.Time, args ...string) {
	t.Helper()
	var out, errOut strings.Builder
	f := newFactory(&IO{In: strings.NewReader(""), Out: &out, Err: &errOut})
	f.Now = func() time.Time { return now }
	c := newKeysCmd(f, nil)
	c.SetArgs(append([]string{"rotate"}, args...))
	c.SilenceErrors, c.SilenceUsage = true, true
	if err := c.ExecuteContext(t.Context()); err != nil {
		t.Fatalf("keys rotate as of %s: %v\n%s", now, err, errOut.String())
	}
}

// The scenario of a replica with token_lifetime 1h beside a config with
// 5m: the 1h replica issues T1; `keys rotate --config cfg-5m.yaml` twice,
// the second twelve minutes later, once deleted T1's key (its retirement
// counted with 5m). A replica reading the store then still publishes the
// key, introspects T1 as active and takes it as a subject token.
func TestRotationsByAShortLifetimeKeepALongLivedToken(t *testing.T) {
	r := newReplicaSetup(t)
	cfg, _ := os.ReadFile(r.config)
	long := filepath.Join(filepath.Dir(r.config), "sts-1h.yaml")
	os.WriteFile(long, []byte(strings.Replace(string(cfg), "token_lifetime: 5m", "token_lifetime: 1h", 1)), 0o600)
	store := "sqlite:" + filepath.Join(t.TempDir(), "idtx.db")
	a := startReplica(t, "--config", long, "--store", store)
	if _, errOut, code := run(t, "consent", "grant", "--store", store, "--idp", "mock", "--user", "alice", "--service", "billing-api", "--scope", "billing:read"); code != 0 {
		t.Fatalf("consent grant: exit %d %s", code, errOut)
	}
	status, body := postToken(t, a, exchangeForm(mockSubject(t, "alice")), "demo-client", "demo-secret")
	if status != 200 {
		t.Fatalf("T1: %d %v", status, body)
	}
	t1 := body["access_token"].(string)
	k1 := jwksKid(t, a)

	now := time.Now()
	rotateAt(t, now, "--config", r.config, "--store", store)
	rotateAt(t, now.Add(12*time.Minute), "--config", r.config, "--store", store)

	b := startReplica(t, "--config", long, "--store", store)
	if kids := jwksKids(t, b); len(kids) != 3 || kids[0] != k1 {
		t.Fatalf("/jwks after the rotations: %v, want T1's key %s first of 3", kids, k1)
	}
	form := url.Values{"token": {t1}}
	req, _ := http.NewRequest(http.MethodPost, b+"/introspect", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("demo-client", "demo-secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var intro map[string]any
	json.NewDecoder(resp.Body).Decode(&intro)
	resp.Body.Close()
	if intro["active"] != true {
		t.Fatalf("introspect T1: %d %v", resp.StatusCode, intro)
	}
	chained := exchangeForm(t1, "subject_token_type", "urn:ietf:params:oauth:token-type:access_token")
	if status, body := postToken(t, b, chained, "demo-client", "demo-secret"); status != 200 {
		t.Fatalf("T1 chained: %d %v", status, body)
	}
}

// A server with a key-encryption key names the keys of its store that are
// in the clear (stored before a KEK was set), so they can be rotated out.
func TestServeWarnsOfPlaintextKeys(t *testing.T) {
	t.Setenv("IDTX_KEK", "")
	store := "sqlite:" + filepath.Join(t.TempDir(), "idtx.db")
	kid, errOut, code := run(t, "keys", "rotate", "--store", store, "--insecure-plaintext-key")
	if code != 0 {
		t.Fatalf("rotate: exit %d %s", code, errOut)
	}
	r := newReplicaSetup(t)
	stderr := &syncBuffer{}
	_, stop, err := startServeTo(stderr, t.TempDir(), "--config", r.config, "--store", store)
	if err != nil {
		t.Fatalf("serve: %v\n%s", err, stderr)
	}
	stop()
	want := "idtx: warning: signing key " + kid + " is stored unencrypted although a key-encryption key is set: rotate it out (idtx keys rotate); it leaves the store once its tokens have expired\n"
	if !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr)
	}
}
