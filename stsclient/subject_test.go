package stsclient_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/idtx/idtx/stsclient"
)

// GitHubActionsToken makes GitHub's request: GET the request URL with its
// own query kept and audience added, the request token as a bearer; it
// takes "value" from the answer, and names a refusal without echoing the
// request token.
func TestGitHubActionsToken(t *testing.T) {
	var got *http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		if r.Header.Get("Authorization") != "Bearer job-secret" {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"message":"Bad credentials for ` + strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ") + `"}`))
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"count": 1, "value": "eyJ.fake.token"})
	}))
	defer srv.Close()

	tok, err := stsclient.GitHubActionsToken(t.Context(), srv.Client(), srv.URL+"/token?api-version=2.0", "job-secret", "https://sts.example.com")
	if err != nil || tok != "eyJ.fake.token" {
		t.Fatalf("token %q, %v", tok, err)
	}
	if got.Method != http.MethodGet || got.URL.Path != "/token" || got.URL.Query().Get("api-version") != "2.0" || got.URL.Query().Get("audience") != "https://sts.example.com" {
		t.Errorf("request %s %s", got.Method, got.URL)
	}

	_, err = stsclient.GitHubActionsToken(t.Context(), srv.Client(), srv.URL+"/token", "wrong-secret", "")
	want := srv.URL + `/token: answered 401 Unauthorized, not {"value": token}: "{\"message\":\"Bad credentials for [redacted]\"}"`
	if err == nil || err.Error() != want || !stsclient.IsUnreachable(err) {
		t.Errorf("refused: %v\nwant %s", err, want)
	}
	if got.URL.Query().Has("audience") {
		t.Errorf("no audience given, but the request has %s", got.URL)
	}
	if _, err := stsclient.GitHubActionsToken(t.Context(), srv.Client(), "file:///etc/passwd", "x", ""); err == nil || err.Error() != `ACTIONS_ID_TOKEN_REQUEST_URL "file:///etc/passwd" is not an http(s) URL` {
		t.Errorf("not http: %v", err)
	}
}
