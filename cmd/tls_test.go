package cmd

import (
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// --cacert trusts an STS whose certificate is not in the system pool;
// without it the same STS is unreachable (exit 4).
func TestExchangeCACert(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"issued","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer"}`))
	}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)
	args := []string{"exchange", "--client-id", "c", "--auth-method", "none", "--sts", srv.URL + "/token", "--subject-token", "x", "--audience", "a"}

	out, errOut, code := run(t, append(args, "--cacert", ca)...)
	if code != 0 || out != "issued" {
		t.Fatalf("with --cacert: exit %d, %q, %s", code, out, errOut)
	}
	_, errOut, code = run(t, args...)
	if code != ExitUnreachable || !strings.Contains(errOut, "presents a certificate signed by an authority this system does not trust: give its CA certificate with --cacert FILE") {
		t.Fatalf("without --cacert: exit %d, %s", code, errOut)
	}
	_, errOut, code = run(t, append(args, "--cacert", filepath.Join(t.TempDir(), "none.pem"))...)
	if code != ExitUsage || !strings.Contains(errOut, "no such file") {
		t.Fatalf("missing --cacert file: exit %d, %s", code, errOut)
	}
}

// An STS that never answers: exit 4, "no answer from HOST within T".
func TestExchangeTimeout(t *testing.T) {
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		select { // hangs until the client gives up, or the test ends
		case <-r.Context().Done():
		case <-done:
		}
	}))
	defer srv.Close()
	defer close(done)
	_, errOut, code := run(t, "exchange", "--client-id", "c", "--auth-method", "none", "--sts", srv.URL+"/token",
		"--subject-token", "x", "--audience", "a", "--timeout", "200ms")
	want := "idtx: no answer from " + strings.TrimPrefix(srv.URL, "http://") + " within 200ms (raise --timeout if it is slow)"
	if code != ExitUnreachable || !strings.Contains(errOut, want) {
		t.Fatalf("exit %d, %s; want 4 and %q", code, errOut, want)
	}
}

// Colour only on a terminal, never with NO_COLOR (no-color.org); the IO
// type decides, and a test can make it pretend.
func TestStyle(t *testing.T) {
	var b strings.Builder
	io := &IO{In: strings.NewReader(""), Out: &b, Err: &b}
	if s := newStyle(io, io.Out); s.red("x") != "x" {
		t.Error("colour on a non-terminal writer")
	}
	f, _ := os.CreateTemp(t.TempDir(), "out")
	defer f.Close()
	if s := newStyle(&IO{Out: f}, f); s.on {
		t.Error("colour on a regular file")
	}
	io.SetTerminal(false, true, false)
	if s := newStyle(io, io.Out); !s.on || s.red("x") == "x" {
		t.Error("no colour on a terminal")
	}
	if !io.OutIsTerminal() || io.InIsTerminal() {
		t.Error("SetTerminal not honoured")
	}
	t.Setenv("NO_COLOR", "1")
	if s := newStyle(io, io.Out); s.on {
		t.Error("colour with NO_COLOR set")
	}
}
