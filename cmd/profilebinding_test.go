package cmd

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/idtx/idtx/profile"
)

// recordingSTS records every credential that reaches it: a Basic
// Authorization header, a client_secret, a client_assertion.
type recordingSTS struct {
	*httptest.Server
	mu    sync.Mutex
	creds []string
	hits  int
}

func newRecordingSTS(t *testing.T) *recordingSTS {
	h := &recordingSTS{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.hits++
		if _, secret, ok := r.BasicAuth(); ok {
			h.creds = append(h.creds, "basic:"+secret)
		}
		if form, err := url.ParseQuery(string(body)); err == nil {
			for _, k := range []string{"client_secret", "client_assertion"} {
				if v := form.Get(k); v != "" {
					h.creds = append(h.creds, k+":"+v)
				}
			}
		}
		h.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"error":"invalid_target","error_description":"recorded"}`))
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *recordingSTS) got() (int, []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hits, append([]string(nil), h.creds...)
}

// TestProfileSecretGoesOnlyToItsSTS: a stored secret is bound to the STS
// the profile was saved for. IDTX_STS or --sts naming another server with
// --profile is a usage error before anything is sent; a secret given
// explicitly may go anywhere, and the stored one never rides along.
func TestProfileSecretGoesOnlyToItsSTS(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	t.Setenv("IDTX_HOME", filepath.Join(dir, "home"))
	for _, k := range []string{"IDTX_STS", "IDTX_CLIENT_ID", "IDTX_CLIENT_SECRET"} {
		t.Setenv(k, "")
	}
	if _, err := profile.Add(&profile.Profile{Name: "prod", STS: "https://sts.prod.example", ClientID: "gateway", AuthMethod: "client_secret_post"}, "prod-secret", profile.StoreFile); err != nil {
		t.Fatal(err)
	}
	evil := newRecordingSTS(t)
	endpoint := evil.URL + "/token"
	refusal := func(from string) string {
		return "idtx: profile prod's secret is kept for its STS https://sts.prod.example: not sending it to " + endpoint +
			" (from " + from + "); drop " + from + ", or give the client's secret explicitly with --client-secret-file or IDTX_CLIENT_SECRET\n"
	}
	for _, tc := range []struct {
		name   string
		env    map[string]string
		args   []string
		code   int
		stderr string
		creds  []string
	}{
		{"IDTX_STS elsewhere", map[string]string{"IDTX_STS": endpoint},
			[]string{"exchange", "--profile", "prod", "--subject-token", "t", "--audience", "a"}, ExitUsage, refusal("IDTX_STS"), nil},
		{"--sts elsewhere", nil,
			[]string{"exchange", "--profile", "prod", "--sts", endpoint, "--subject-token", "t", "--audience", "a"}, ExitUsage, refusal("--sts"), nil},
		{"introspect, IDTX_STS elsewhere", map[string]string{"IDTX_STS": endpoint},
			[]string{"introspect", "--profile", "prod", "t"}, ExitUsage, refusal("IDTX_STS"), nil},
		{"explicit secret may go", map[string]string{"IDTX_STS": endpoint, "IDTX_CLIENT_SECRET": "given-secret"},
			[]string{"exchange", "--profile", "prod", "--subject-token", "t", "--audience", "a"}, ExitRejected, "idtx: invalid_target: recorded\n", []string{"client_secret:given-secret"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			before, _ := evil.got()
			var errb bytes.Buffer
			code := Run(context.Background(), tc.args, &IO{In: strings.NewReader(""), Out: io.Discard, Err: &errb})
			if code != tc.code || errb.String() != tc.stderr {
				t.Errorf("exit %d, stderr %q; want %d, %q", code, errb.String(), tc.code, tc.stderr)
			}
			hits, creds := evil.got()
			if tc.creds == nil && hits != before {
				t.Errorf("the other STS got %d requests", hits-before)
			}
			for _, c := range creds {
				if strings.Contains(c, "prod-secret") {
					t.Fatalf("the profile's secret reached the other STS: %s", c)
				}
			}
			if tc.creds != nil && (len(creds) == 0 || creds[len(creds)-1] != tc.creds[0]) {
				t.Errorf("credentials seen %q, want last %q", creds, tc.creds)
			}
		})
	}
}
