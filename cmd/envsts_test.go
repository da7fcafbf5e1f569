package cmd

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/spf13/cobra"
)

// TestClientCommandsHonourIDTXSTS: explain --trace/--last and walk with no
// request talk to the STS IDTX_STS names, as exchange and introspect do
// (one definition, chooseSTS); a --sts given still wins.
func TestClientCommandsHonourIDTXSTS(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.Method+" "+r.URL.Path)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/traces":
			w.Write([]byte(`{"traces":[]}`))
		case "/traces/7":
			w.Write([]byte(`{"id":"7","time":"2026-12-01T00:00:00Z","outcome":"ok","steps":[]}`))
		case "/introspect":
			w.Write([]byte(`{"active":true}`))
		default:
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error":"not_found"}`))
		}
	}))
	defer srv.Close()
	seen := func() []string {
		mu.Lock()
		defer mu.Unlock()
		p := paths
		paths = nil
		return p
	}
	for _, k := range []string{"IDTX_CLIENT_ID", "IDTX_CLIENT_SECRET"} {
		t.Setenv(k, "")
	}
	t.Setenv("IDTX_STS", srv.URL)

	run := func(args ...string) (int, string) {
		var errb bytes.Buffer
		code := Run(context.Background(), args, &IO{In: strings.NewReader(""), Out: io.Discard, Err: &errb})
		return code, errb.String()
	}
	if code, stderr := run("explain", "--trace", "7"); code != ExitOK {
		t.Fatalf("explain --trace 7: exit %d, %s", code, stderr)
	}
	if got := seen(); len(got) != 1 || got[0] != "GET /traces/7" {
		t.Errorf("explain --trace 7 asked %q", got)
	}
	if code, stderr := run("explain", "--last"); code != ExitFailure || !strings.Contains(stderr, "the STS holds no trace yet") {
		t.Errorf("explain --last: exit %d, %s", code, stderr)
	}
	if got := seen(); len(got) != 1 || got[0] != "GET /traces" {
		t.Errorf("explain --last asked %q", got)
	}
	if code, stderr := run("introspect", "--client-id", "c", "--auth-method", "none", "tok"); code != ExitOK {
		t.Errorf("introspect: exit %d, %s", code, stderr)
	}
	if got := seen(); len(got) == 0 || got[len(got)-1] != "POST /introspect" {
		t.Errorf("introspect asked %q", got)
	}

	// walk with no request watches IDTX_STS: its first command polls /traces.
	var model tea.Model
	var c *cobra.Command
	c = newWalkCmd(newFactory(&IO{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard}), func(o *walkOptions) error {
		o.run = func(m tea.Model) error { model = m; return nil }
		return runWalk(c, o)
	})
	c.SetArgs(nil)
	c.SilenceErrors, c.SilenceUsage = true, true
	if err := c.Execute(); err != nil {
		t.Fatal(err)
	}
	if model == nil {
		t.Fatal("walk built no model")
	}
	if cmd := model.Init(); cmd != nil {
		cmd()
	}
	if got := seen(); len(got) == 0 || got[0] != "GET /traces" {
		t.Errorf("walk with IDTX_STS asked %q, want GET /traces", got)
	}

	// Without IDTX_STS: --last needs an STS, named in the error.
	t.Setenv("IDTX_STS", "")
	if code, stderr := run("explain", "--last"); code != ExitUsage || stderr != "idtx: --trace and --last need --sts URL or IDTX_STS\n" {
		t.Errorf("explain --last without an STS: exit %d, %q", code, stderr)
	}
}
