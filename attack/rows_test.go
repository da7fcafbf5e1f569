package attack

import (
	"net/http"
	"testing"
)

// env is a running server with the fixture behind it.
type env struct {
	*fixture
	srv *server
}

// row is one attack: build makes the request, and the server must refuse
// it with wantStatus, the OAuth error wantCode and an error_description
// containing wantReason. A row that expects success (wantStatus 200)
// checks the issued token's claims instead.
type row struct {
	name       string
	build      func(t testing.TB, e *env) *request
	wantStatus int
	wantCode   string
	wantReason string
	// reasonFor, when set, makes wantReason from the server's URL.
	reasonFor func(e *env) string
	// check inspects a successful answer's issued token.
	check func(e *env, claims map[string]any) error
}

// runRows runs every row against the env e, each as a subtest.
func runRows(t *testing.T, e *env, rows []row) {
	t.Helper()
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			got := e.srv.do(t, r.build(t, e))
			if r.wantStatus != http.StatusOK {
				reason := r.wantReason
				if r.reasonFor != nil {
					reason = r.reasonFor(e)
				}
				expectRefusal(t, got, r.wantStatus, r.wantCode, reason)
				return
			}
			if got.status != http.StatusOK {
				t.Fatalf("got %d %s, want 200", got.status, got.raw)
			}
			claims := claimsOf(t, got.str("access_token"))
			if r.check == nil {
				return
			}
			if err := r.check(e, claims); err != nil {
				t.Fatalf("issued token: %v\nclaims: %v", err, claims)
			}
		})
	}
}

// newEnv starts a server on a freshly generated fixture.
func newEnv(t *testing.T) *env {
	t.Helper()
	f := newFixture(t)
	return &env{fixture: f, srv: startServer(t, serveOptions{config: f.config})}
}
