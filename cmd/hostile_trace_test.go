package cmd

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// hostileRecord is a trace as a hostile STS would serve it: control
// characters in every string it holds, keys included. The first step's
// outcome is the one that used to pass printRecord raw.
func hostileRecord(id string) map[string]any {
	h := hostile
	return map[string]any{
		"id": id + h, "time": "2026-01-02T03:04:05Z", "client_id": h, "outcome": h,
		"error": map[string]any{"error": "invalid_grant" + h, "error_description": h, "status": 400, "step": h, "category": h},
		"steps": []any{
			map[string]any{"n": 1, "step": "request" + h, "outcome": "pass\x1b]2;PWNED\x07\x1b[2J\nidtx: exchange OK", "reason": h},
			map[string]any{"n": 2, "step": h, "outcome": h, "reason": h, "category": h, "evidence": map[string]any{h: h, "sub": h}},
		},
		"claims": map[string]any{h: h, "nested": []any{h, map[string]any{h: []any{h}}}},
	}
}

// hostileTraceSTS answers every exchange with a refusal naming trace 7,
// and serves hostileRecord at /traces/7 and in /traces.
func hostileTraceSTS(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	write := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		write(w, 400, map[string]any{"error": "invalid_grant", "error_description": hostile, "trace_id": "7"})
	})
	mux.HandleFunc("GET /traces/7", func(w http.ResponseWriter, r *http.Request) { write(w, 200, hostileRecord("7")) })
	mux.HandleFunc("GET /traces", func(w http.ResponseWriter, r *http.Request) {
		write(w, 200, map[string]any{"traces": []any{hostileRecord("7")}})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// Issue 17 item 1: a trace with control characters in every string field
// reaches the terminal escaped through explain --sts (text and JSON) and
// exchange -v, and forges no line of idtx's own.
func TestHostileTraceIsEscaped(t *testing.T) {
	t.Setenv("IDTX_CLIENT_ID", "")
	t.Setenv("IDTX_CLIENT_SECRET", "")
	srv := hostileTraceSTS(t)
	cases := []struct {
		name string
		args []string
		code int
		want string // in stdout+stderr
	}{
		{"explain --trace", []string{"explain", "--sts", srv.URL, "--trace", "7"}, ExitRejected, `pass\x1b]2;PWNED\x07\x1b[2J\nidtx: exchange OK`},
		{"explain --last", []string{"explain", "--sts", srv.URL, "--last"}, ExitRejected, "category: " + hostileEscaped},
		{"explain -o json", []string{"explain", "--sts", srv.URL, "--trace", "7", "-o", "json"}, ExitRejected, `"outcome": "pass\\x1b]2;PWNED`},
		{"exchange -v", []string{"exchange", "-v", "--client-id", "c", "--auth-method", "none", "--sts", srv.URL + "/token", "--subject-token", "eyJhbGciOiJub25lIn0.e30.x"}, ExitRejected, "the STS's trace of this exchange:"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := run(t, tc.args...)
			all := out + "\n" + errOut
			if code != tc.code || !strings.Contains(all, tc.want) {
				t.Errorf("exit %d, want %d; output lacks %q:\n%s", code, tc.code, tc.want, all)
			}
			assertNoControls(t, "stdout", out)
			assertNoControls(t, "stderr", errOut)
			if !strings.Contains(all, "PWNED") {
				t.Errorf("the trace was not shown at all:\n%s", all)
			}
			for _, line := range strings.Split(all, "\n") {
				if strings.HasPrefix(line, "idtx: exchange OK") {
					t.Errorf("a forged line reached the terminal:\n%s", all)
				}
			}
		})
	}
}
