package attack

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// idtxBin is the idtx binary TestMain builds once for every test.
var idtxBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "idtx-attack-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	idtxBin = filepath.Join(dir, "idtx")
	build := exec.Command("go", "build", "-o", idtxBin, "github.com/idtx/idtx")
	build.Dir = ".." // the module root
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build idtx:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is one running `idtx serve` process.
type server struct {
	URL    string // where it listens, http://127.0.0.1:PORT: its issuer unless one is set
	PID    int
	cmd    *exec.Cmd
	stderr *tailBuffer
}

// serveOptions say how to start a server.
type serveOptions struct {
	config string   // a config file; "" runs --mock
	store  string   // default memory:
	home   string   // IDTX_HOME; default a fresh temporary folder
	faults []string // --fault specs, with --mock
	env    []string // more of the server's environment, KEY=VALUE
}

// startServer starts `idtx serve` on a loopback port the OS picks, learns
// its URL from the JSON "ready" record on stderr, waits for /healthz
// and stops the process when the test ends.
func startServer(t testing.TB, o serveOptions) *server {
	t.Helper()
	if o.store == "" {
		o.store = "memory:"
	}
	if o.home == "" {
		o.home = t.TempDir()
	}
	args := []string{"serve", "--listen", "127.0.0.1:0", "--store", o.store, "--log-format", "json"}
	if o.config != "" {
		args = append(args, "--config", o.config)
	} else {
		args = append(args, "--mock")
	}
	for _, f := range o.faults {
		args = append(args, "--fault", f)
	}
	cmd := exec.Command(idtxBin, args...)
	cmd.Env = append(append(os.Environ(), "IDTX_HOME="+o.home, "IDTX_STORE="), o.env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{PID: cmd.Process.Pid, cmd: cmd, stderr: &tailBuffer{}}
	t.Cleanup(func() { s.stop(t) })

	// The server logs a line per exchange: read stderr to the end so that
	// it never blocks on a full pipe, keeping the tail for diagnostics.
	issuer := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		found := false
		for sc.Scan() {
			line := sc.Bytes()
			s.stderr.Write(append(line, '\n'))
			if found {
				continue
			}
			// The ready record names the address; the issuer may be
			// another (IDTX_ISSUER, a config's issuer:).
			var rec struct {
				Msg string `json:"msg"`
				URL string `json:"url"`
			}
			if json.Unmarshal(line, &rec) == nil && rec.Msg == "ready" && rec.URL != "" {
				found = true
				issuer <- rec.URL
			}
		}
		io.Copy(io.Discard, stderr)
		close(issuer)
	}()
	select {
	case u, ok := <-issuer:
		if !ok {
			t.Fatalf("idtx serve exited before listening:\n%s", s.stderr)
		}
		s.URL = u
	case <-time.After(15 * time.Second):
		t.Fatalf("idtx serve did not report listening within 15s:\n%s", s.stderr)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, err := s.healthz(); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/healthz did not answer within 10s:\n%s", s.URL, s.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

// stop ends the server with SIGTERM, or SIGKILL if it does not exit.
func (s *server) stop(t testing.TB) {
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(6 * time.Second):
		s.cmd.Process.Kill()
		<-done
		t.Logf("idtx serve (pid %d) did not stop on SIGTERM; killed", s.PID)
	}
	if t.Failed() {
		t.Logf("idtx serve stderr (tail):\n%s", s.stderr)
	}
}

// healthClient answers /healthz or gives up after 2s.
var healthClient = &http.Client{Timeout: 2 * time.Second}

// healthz asks /healthz and returns how long the answer took.
func (s *server) healthz() (time.Duration, error) {
	start := time.Now()
	resp, err := healthClient.Get(s.URL + "/healthz")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("/healthz answered %s", resp.Status)
	}
	return time.Since(start), nil
}

// rssBytes is the process's resident set (VmRSS in /proc/PID/status).
func (s *server) rssBytes() (int64, error) { return s.procStatus("VmRSS") }

// hwmBytes is the peak of the process's resident set since it started
// (VmHWM in /proc/PID/status).
func (s *server) hwmBytes() (int64, error) { return s.procStatus("VmHWM") }

// procStatus reads a size field of /proc/PID/status, in bytes.
func (s *server) procStatus(field string) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.PID))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb << 10, err
			}
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, s.PID)
}

// tailBuffer keeps the last 32 KiB written to it.
type tailBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b = append(b.b, p...)
	if over := len(b.b) - 32<<10; over > 0 {
		b.b = append(b.b[:0:0], b.b[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.b)
}

// idtx runs the idtx binary (a CLI command) with IDTX_HOME set to home.
func idtx(t testing.TB, home string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(idtxBin, args...)
	cmd.Env = append(os.Environ(), "IDTX_HOME="+home, "IDTX_STORE=")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

// request is one HTTP request an attack sends.
type request struct {
	method string // default POST
	path   string // default /token
	form   url.Values
	header http.Header
	// basic is the client's Basic credentials; nil sends demo-client's
	// unless the form authenticates the client itself; {"", ""} sends none.
	basic *[2]string
}

// response is what came back: status, headers and the JSON body.
type response struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

func (r *response) str(k string) string { s, _ := r.body[k].(string); return s }

// apiClient talks to the servers under test; loopback only.
var apiClient = &http.Client{Timeout: 10 * time.Second}

func (s *server) do(t testing.TB, r *request) *response {
	t.Helper()
	method, path := r.method, r.path
	if method == "" {
		method = http.MethodPost
	}
	if path == "" {
		path = "/token"
	}
	var body io.Reader
	if r.form != nil {
		body = strings.NewReader(r.form.Encode())
	}
	req, err := http.NewRequest(method, s.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if r.form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	switch {
	case r.basic != nil && r.basic[0] != "":
		req.SetBasicAuth(url.QueryEscape(r.basic[0]), url.QueryEscape(r.basic[1]))
	case r.basic == nil && r.form.Get("client_secret") == "" && r.form.Get("client_assertion") == "":
		req.SetBasicAuth("demo-client", "demo-secret")
	}
	resp, err := apiClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out := &response{status: resp.StatusCode, header: resp.Header}
	out.raw, _ = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(out.raw, &out.body); err != nil {
			t.Fatalf("%s %s: body %q is not JSON: %v", method, path, out.raw, err)
		}
	}
	return out
}

// exchange posts a token exchange and returns the response.
func (s *server) exchange(t testing.TB, form url.Values, basic ...string) *response {
	t.Helper()
	r := &request{form: form}
	if len(basic) == 2 {
		r.basic = &[2]string{basic[0], basic[1]}
	}
	return s.do(t, r)
}

// mustExchange posts a token exchange that must succeed and returns the
// issued token's claims.
func (s *server) mustExchange(t testing.TB, form url.Values, basic ...string) (string, map[string]any) {
	t.Helper()
	r := s.exchange(t, form, basic...)
	if r.status != http.StatusOK {
		t.Fatalf("exchange: got %d %s, want 200", r.status, r.raw)
	}
	tok := r.str("access_token")
	return tok, claimsOf(t, tok)
}

// expectRefusal asserts an OAuth error answer (RFC 6749 §5.2): the status,
// the exact error code, a description naming the check, and no-store.
func expectRefusal(t testing.TB, r *response, status int, code, reason string) {
	t.Helper()
	if r.status != status || r.str("error") != code || !strings.Contains(r.str("error_description"), reason) {
		t.Fatalf("got %d %s\nwant %d %s with error_description containing %q", r.status, r.raw, status, code, reason)
	}
	if got := r.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
}
