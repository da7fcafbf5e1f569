package attack

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestControlCharacterSub sends subject tokens, validly signed by a
// trusted IDP, whose sub holds a control character, for a service whose
// scope needs consent. Every store gives the same answer, from the
// subject-token check: before, PostgreSQL answered 500 (it refuses NUL in
// text) and SQLite consent_required. And /readyz says ready on each.
func TestControlCharacterSub(t *testing.T) {
	f := newFixture(t)
	for name, store := range map[string]string{
		"memory": "memory:",
		"sqlite": "sqlite:" + filepath.Join(t.TempDir(), "idtx.db"),
	} {
		t.Run(name, func(t *testing.T) {
			s := startServer(t, serveOptions{config: f.config, store: store})
			resp, err := http.Get(s.URL + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"ready":true,"store":"ok"}` {
				t.Fatalf("/readyz: %d %s", resp.StatusCode, body)
			}
			for sub, char := range map[string]string{"al\x00ice": "U+0000", "alice\r\nadmin": "U+000D", "\x7falice": "U+007F"} {
				form := exchangeForm(f.corp.sign(t, claims(map[string]any{"sub": sub}), nil), "audience", "billing-api", "scope", "billing:read")
				r := s.exchange(t, form)
				want := "subject_token: invalid token: its subject contains the control character " + char + ": a sub must be printable text"
				expectRefusal(t, r, http.StatusBadRequest, "invalid_request", want)
				if got := r.str("error_description"); got != want {
					t.Errorf("error_description = %q, want %q", got, want)
				}
			}
		})
	}
}
