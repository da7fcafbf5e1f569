package attack

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// hostile is text a hostile STS or token carries: it would set the
// window title, clear the screen and forge a success line.
const hostile = "\x1b]0;pwned\x07\x1b[2J\ridtx: exchange OK\x1b[8m"

// rawControl reports the first raw control character in s, other than
// newline and tab.
func rawControl(s string) (rune, bool) {
	for _, r := range s {
		if (r < 0x20 && r != '\n' && r != '\t') || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return r, true
		}
	}
	return 0, false
}

// TestHostileTextNeverReachesTheTerminal runs `idtx exchange` against a
// hostile STS and `idtx inspect` on a hostile token: what they print
// carries no raw control character from the remote party.
func TestHostileTextNeverReachesTheTerminal(t *testing.T) {
	sts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"error":"invalid_request","error_description":` + mustJSON(hostile) + `}`))
	}))
	defer sts.Close()
	home := t.TempDir()
	f := newFixture(t)
	tok := f.corp.sign(t, claims(map[string]any{"sub": hostile, "name": hostile}), nil)

	// Escaped, every control character is written as a Go escape.
	const escaped = `\x1b]0;pwned\x07\x1b[2J\ridtx: exchange OK\x1b[8m`
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"exchange: the STS's error_description", []string{"exchange", "--client-id", "c", "--auth-method", "none", "--sts", sts.URL + "/token", "--subject-token", tok, "--audience", "orders-api"},
			"idtx: invalid_request: " + escaped + "\n"},
		{"inspect: claim values", []string{"inspect", tok}, " " + escaped + "\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, _ := idtx(t, home, c.args...)
			if r, ok := rawControl(out + errOut); ok {
				t.Fatalf("raw %U printed; stdout %q stderr %q", r, out, errOut)
			}
			if !strings.Contains(out+errOut, c.want) {
				t.Fatalf("want %q, the hostile text escaped; stdout %q stderr %q", c.want, out, errOut)
			}
			for _, line := range strings.Split(out+errOut, "\n") {
				if strings.HasPrefix(line, "idtx: exchange OK") {
					t.Fatalf("a forged line %q starts a line of its own", line)
				}
			}
		})
	}
}
