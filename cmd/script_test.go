package cmd_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/zalando/go-keyring"

	"github.com/idtx/idtx/cmd"
	"github.com/idtx/idtx/idp"
	"github.com/idtx/idtx/mockidp"
	"github.com/idtx/idtx/profile"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"idtx": func() { os.Exit(withStderrCopy(func() int { return withTestKeyring(cmd.Main) })) },
	})
}

// withStderrCopy copies a script subprocess's stderr, as it is written,
// to the file $IDTX_TEST_STDERR_COPY when that is set, so that `waitlog`
// can watch a background process (testscript keeps a background
// command's stderr to itself until `wait`).
func withStderrCopy(main func() int) int {
	path := os.Getenv("IDTX_TEST_STDERR_COPY")
	if path == "" {
		return main()
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "stderr copy:", err)
		return 1
	}
	defer f.Close()
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "stderr copy:", err)
		return 1
	}
	orig := os.Stderr
	os.Stderr = w
	copied := make(chan struct{})
	go func() {
		io.Copy(io.MultiWriter(orig, f), r)
		close(copied)
	}()
	code := main()
	os.Stderr = orig
	w.Close()
	<-copied
	return code
}

// withTestKeyring gives a script's subprocesses a keyring: go-keyring's
// in-memory mock, loaded from and saved to $IDTX_TEST_KEYRING so that
// `profile add` and a later `exchange --profile` share it. With
// $IDTX_TEST_KEYRING_BROKEN set, every keyring call fails as on a
// headless Linux without a Secret Service.
func withTestKeyring(main func() int) int {
	if os.Getenv("IDTX_TEST_KEYRING_BROKEN") != "" {
		keyring.MockInitWithError(errors.New("the name org.freedesktop.secrets was not provided by any .service files"))
		return main()
	}
	path := os.Getenv("IDTX_TEST_KEYRING")
	if path == "" {
		return main()
	}
	keyring.MockInit()
	saved := map[string]string{}
	if data, err := os.ReadFile(path); err == nil {
		json.Unmarshal(data, &saved)
	}
	for user, secret := range saved {
		keyring.Set(profile.KeyringService, user, secret)
	}
	code := main()
	now := map[string]string{}
	list, _ := profile.List()
	for _, p := range list {
		if s, err := keyring.Get(profile.KeyringService, p.Name); err == nil {
			now[p.Name] = s
		}
	}
	data, _ := json.Marshal(now)
	os.WriteFile(path, data, 0o600)
	return code
}

// TestScripts runs the end-to-end CLI scripts in testdata/script.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("IDTX_HOME", env.WorkDir+"/home")
			env.Setenv("XDG_CONFIG_HOME", env.WorkDir+"/config")
			env.Setenv("NO_COLOR", "1")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exits":          cmdExits,
			"serve":          cmdServe,
			"fetch":          cmdFetch,
			"gen-client-key": cmdGenClientKey,
			"mock-cert":      cmdMockCert,
			"waitlog":        cmdWaitLog,
			"mode-is":        cmdModeIs,
			"hostport":       cmdHostPort,
			"waitready":      cmdWaitReady,
			"envfile":        cmdEnvFile,
		},
	})
}

// exits N cmd args... runs cmd and asserts its exact exit code, keeping
// stdout and stderr for the assertions that follow.
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits N command [args...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exits: %v", err)
	}
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("exits: %v", err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("exit code %d, want %d", got, want)
	}
}

// serve VAR args... starts `idtx serve args...` on a free loopback port
// with the script's IDTX_HOME store, sets $VAR to its URL, and stops it
// when the script ends.
func cmdServe(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: serve VAR serve-args...")
	}
	home := ts.Getenv("IDTX_HOME")
	serveArgs := append([]string{"--store", "sqlite:" + filepath.Join(home, "idtx.db")}, args[1:]...)
	for i := 1; i < len(serveArgs); i++ {
		if serveArgs[i-1] == "--config" { // the server runs in the test's folder, not $WORK
			serveArgs[i] = ts.MkAbs(serveArgs[i])
		}
	}
	base, stop, err := cmd.StartServe(home, serveArgs...)
	if err != nil {
		ts.Fatalf("serve: %v", err)
	}
	ts.Setenv(args[0], base)
	ts.Defer(func() { stop() })
}

// fetch URL FILE saves a GET's body.
func cmdFetch(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: fetch URL FILE")
	}
	resp, err := http.Get(args[0])
	ts.Check(err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	ts.Check(err)
	if resp.StatusCode != 200 {
		ts.Fatalf("fetch %s: %s", args[0], resp.Status)
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), body, 0o600))
}

// gen-client-key KEY JWKS writes a P-256 private key and its public JWKS,
// for a private_key_jwt client.
func cmdGenClientKey(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: gen-client-key KEY.pem JWKS.json")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ts.Check(err)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600))
	jwk, err := idp.PublicJWK(key.Public())
	ts.Check(err)
	jwk["kid"], jwk["alg"] = idp.Thumbprint(jwk), "ES256"
	data, _ := json.Marshal(map[string]any{"keys": []any{jwk}})
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), data, 0o600))
}

// mock-cert FILE writes the mock SAML IDP's certificate.
func cmdMockCert(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: mock-cert FILE")
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), mockidp.CertificatePEM(), 0o600))
}

// waitlog FILE REGEXP waits, up to 30s, until FILE (written by a
// background process, as with $IDTX_TEST_STDERR_COPY) matches REGEXP: a
// server is up once it says where it listens.
func cmdWaitLog(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: waitlog FILE REGEXP")
	}
	re, err := regexp.Compile("(?m)" + args[1])
	ts.Check(err)
	path := ts.MkAbs(args[0])
	var data []byte
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if data, _ = os.ReadFile(path); re.Match(data) {
			return
		}
	}
	ts.Fatalf("%s did not match %q within 30s:\n%s", args[0], args[1], data)
}

// mode-is FILE MODE asserts a file's permission bits (octal).
func cmdModeIs(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: mode-is FILE MODE")
	}
	info, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	want, err := strconv.ParseUint(args[1], 8, 32)
	ts.Check(err)
	if got := info.Mode().Perm(); uint64(got) != want {
		ts.Fatalf("%s has mode %04o, want %04o", args[0], got, want)
	}
}

// hostport VAR URL sets $VAR to the host:port of URL.
func cmdHostPort(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: hostport VAR URL")
	}
	u, err := url.Parse(args[1])
	ts.Check(err)
	ts.Setenv(args[0], u.Host)
}

// waitready VAR FILE waits, up to 30s, until FILE (a background serve's
// stderr, as with $IDTX_TEST_STDERR_COPY) holds serve's ready line, and
// sets $VAR to the URL it names.
func cmdWaitReady(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: waitready VAR FILE")
	}
	re := regexp.MustCompile(`(?m)^idtx STS ready at (\S+)$|"msg":"ready","url":"([^"]+)"`)
	path := ts.MkAbs(args[1])
	var data []byte
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		data, _ = os.ReadFile(path)
		if m := re.FindSubmatch(data); m != nil {
			ts.Setenv(args[0], string(m[1])+string(m[2]))
			return
		}
	}
	ts.Fatalf("%s holds no ready line within 30s:\n%s", args[1], data)
}

// envfile VAR FILE sets $VAR to FILE's content (a multi-line value, such
// as a whole config in IDTX_CONFIG).
func cmdEnvFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: envfile VAR FILE")
	}
	ts.Setenv(args[0], ts.ReadFile(args[1]))
}
