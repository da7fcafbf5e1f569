package cmd

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestExitRetry: an answer that says "come back later" exits 5 with its
// Retry-After on stderr; a refusal still exits 3. Both exchange and
// introspect go through the one mapping in Run.
func TestExitRetry(t *testing.T) {
	for _, k := range []string{"IDTX_STS", "IDTX_CLIENT_ID"} {
		t.Setenv(k, "")
	}
	t.Setenv("IDTX_CLIENT_SECRET", "s3cret")
	for _, tc := range []struct {
		name        string
		status      int
		retryAfter  string
		ctype, body string
		code        int
		stderr      []string
	}{
		{"503 temporarily_unavailable", 503, "30", "application/json", `{"error":"temporarily_unavailable","error_description":"consent store down"}`, ExitRetry,
			[]string{"idtx: temporarily_unavailable: consent store down\n", "idtx: try again later: the STS asks to wait 30s (Retry-After)\n"}},
		{"429 slow_down", 429, "2", "application/json", `{"error":"slow_down","error_description":"rate limit"}`, ExitRetry,
			[]string{"idtx: slow_down: rate limit\n", "idtx: try again later: the STS asks to wait 2s (Retry-After)\n"}},
		{"temporarily_unavailable under 400", 400, "", "application/json", `{"error":"temporarily_unavailable"}`, ExitRetry,
			[]string{"idtx: temporarily_unavailable\n", "idtx: try again later (the STS sent no Retry-After)\n"}},
		{"503 html page", 503, "120", "text/html", `<html>busy</html>`, ExitRetry,
			[]string{"answered 503 Service Unavailable, not OAuth JSON", "idtx: try again later: the STS asks to wait 2m0s (Retry-After)\n"}},
		{"429 no body", 429, "", "text/plain", ``, ExitRetry,
			[]string{"answered 429 Too Many Requests", "idtx: try again later (the STS sent no Retry-After)\n"}},
		{"invalid_target is a no", 400, "30", "application/json", `{"error":"invalid_target","error_description":"no"}`, ExitRejected,
			[]string{"idtx: invalid_target: no\n"}},
		{"500 html is unreachable", 500, "", "text/html", `<html>oops</html>`, ExitUnreachable,
			[]string{"answered 500 Internal Server Error"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				w.Header().Set("Content-Type", tc.ctype)
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			for _, args := range [][]string{
				{"exchange", "--sts", srv.URL + "/token", "--client-id", "c", "--subject-token", "t", "--audience", "a"},
				{"introspect", "--sts", srv.URL + "/introspect", "--client-id", "c", "t"},
			} {
				var out, errb bytes.Buffer
				code := Run(context.Background(), args, &IO{In: strings.NewReader(""), Out: &out, Err: &errb})
				if code != tc.code {
					t.Errorf("%s: exit %d, want %d (stderr %q)", args[0], code, tc.code, errb.String())
				}
				for _, want := range tc.stderr {
					if !strings.Contains(errb.String(), want) {
						t.Errorf("%s: stderr %q lacks %q", args[0], errb.String(), want)
					}
				}
				if tc.code != ExitRetry && strings.Contains(errb.String(), "try again later") {
					t.Errorf("%s: a refusal says try again: %q", args[0], errb.String())
				}
			}
		})
	}
}
