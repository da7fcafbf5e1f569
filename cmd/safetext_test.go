package cmd

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/fixtures"
)

// hostile is what a hostile STS or token says to take over a terminal:
// set the window title (OSC), clear the screen (CSI), start a forged line,
// flip the rest of the line right to left (U+202E), a C1 CSI (U+009B),
// DEL, a bidi isolate and a line separator.
const hostile = "\x1b]0;owned\x07\x1b[2J\r\nidtx: exchange OK\u202e\u009b31m\x7f\u2066\u2028"

// hostileEscaped is hostile through safeText.
const hostileEscaped = `\x1b]0;owned\x07\x1b[2J\r\nidtx: exchange OK\u202e\u009b31m\x7f\u2066\u2028`

func TestSafeText(t *testing.T) {
	for in, want := range map[string]string{
		"":                  "",
		"alice@example.com": "alice@example.com",
		`CORP\alice`:        `CORP\alice`, // backslashes stay as they are
		"Zoë Ünal 山田 مرحبا": "Zoë Ünal 山田 مرحبا",
		"👩‍💻 🏴󠁧󠁢󠁳󠁣󠁴󠁿": "👩‍💻 🏴󠁧󠁢󠁳󠁣󠁴󠁿", // ZWJ and tag sequences are emoji
		hostile:                       hostileEscaped,
		"tab\there":                   `tab\there`,
		"\x00\x1f":                    `\x00\x1f`,
		"a\u200eb\u200fc\u061cd":      `a\u200eb\u200fc\u061cd`,
		"\u202a\u202b\u202c\u202d":    `\u202a\u202b\u202c\u202d`,
		"\u2067\u2068\u2069\u2029":    `\u2067\u2068\u2069\u2029`,
		"zero\u200bwidth\ufeff":       `zero\u200bwidth\ufeff`,
		"\u0080\u0085\u009f":          `\u0080\u0085\u009f`,
		"bad \x9b utf-8 \xff\xfe end": `bad \x9b utf-8 \xff\xfe end`,
		"\U000e0001 language tag":     `\U000e0001 language tag`,
	} {
		if got := safeText(in); got != want {
			t.Errorf("safeText(%q) = %q, want %q", in, got, want)
		}
	}
}

// assertNoControls fails if out holds a raw byte or character a terminal
// acts on, other than the newline at the end of each line.
func assertNoControls(t *testing.T, what, out string) {
	t.Helper()
	for i, r := range out {
		if r == '\n' {
			continue
		}
		if r == utf8.RuneError || unsafeRune(r) {
			t.Errorf("%s holds raw %U at byte %d:\n%q", what, r, i, out)
			return
		}
	}
}

func TestSafeJSONStaysValidAndEqual(t *testing.T) {
	v := map[string]any{"note": hostile, hostile: []any{hostile, 1.5}, "ok": "Zoë 👩‍💻"}
	var out strings.Builder
	if err := writeJSON(&IO{Out: &out}, v); err != nil {
		t.Fatal(err)
	}
	assertNoControls(t, "JSON", out.String())
	var back map[string]any
	if err := json.Unmarshal([]byte(out.String()), &back); err != nil {
		t.Fatalf("not valid JSON: %v\n%s", err, out.String())
	}
	if back["note"] != hostile || back["ok"] != "Zoë 👩‍💻" || back[hostile].([]any)[0] != hostile {
		t.Errorf("the value changed: %q", back)
	}
	// An astral format character becomes a surrogate pair.
	if got := string(safeJSON([]byte(`["` + "\U000e0001" + `"]`))); got != `["\udb40\udc01"]` {
		t.Errorf("astral: %s", got)
	}
	// Invalid UTF-8 from a remote body becomes U+FFFD, not a raw byte.
	if got := string(safeJSON([]byte("[\"\x9b\"]"))); got != `["\ufffd"]` {
		t.Errorf("invalid UTF-8: %s", got)
	}
}

// A config's problems keep a line each; a control inside one is escaped.
func TestErrorTextKeepsConfigProblemLines(t *testing.T) {
	err := usageError("%w", config.Problems{{Message: "idps[0].name: missing"}, {Line: 3, Message: "unknown key \"x\x1b[2J\""}})
	want := "2 problem(s) in config:\n  idps[0].name: missing\n  line 3: unknown key \"x\\x1b[2J\""
	if got := errorText(err); got != want {
		t.Errorf("errorText = %q, want %q", got, want)
	}
}

// hostileSTS answers every request with status, content type and body,
// and serves metadata naming tokenEndpoint when it is set.
func hostileSTS(t *testing.T, status int, contentType, body string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// Item 9 of issue 8: what an STS says reaches the terminal escaped.
func TestExchangeHostileSTSIsEscaped(t *testing.T) {
	t.Setenv("IDTX_CLIENT_ID", "")
	t.Setenv("IDTX_CLIENT_SECRET", "")
	subject := "eyJhbGciOiJub25lIn0.e30.x"
	cases := []struct {
		name   string
		status int
		ctype  string
		body   string
		args   []string
		code   int
		want   string // in stderr
	}{{
		name: "error_description", status: 400, ctype: "application/json",
		body: `{"error":"invalid_request","error_description":` + jsonString(hostile) + `}`,
		code: ExitRejected, want: "idtx: invalid_request: " + hostileEscaped + "\n",
	}, {
		name: "error code", status: 400, ctype: "application/json",
		body: `{"error":` + jsonString("invalid_grant"+hostile) + `}`,
		// stsclient escapes the code as it decodes it; the CLI then shows
		// at most 64 bytes of it.
		code: ExitRejected, want: "idtx: " + ("invalid_grant" + hostileEscaped)[:64] + "… (",
	}, {
		name: "long error_description is clipped", status: 400, ctype: "application/json",
		body: `{"error":"invalid_request","error_description":` + jsonString(strings.Repeat("a", 5000)+hostile) + `}`,
		code: ExitRejected, want: strings.Repeat("a", maxRemoteText) + "… (",
	}, {
		name: "HTML error page", status: 502, ctype: "text/html",
		body: "<html>" + hostile + "</html>",
		code: ExitUnreachable, want: "answered 502 Bad Gateway, not OAuth JSON",
	}, {
		name: "access_token with controls, -o token", status: 200, ctype: "application/json",
		body: `{"access_token":` + jsonString("eyJ."+hostile) + `,"token_type":"Bearer"}`,
		code: ExitUnreachable, want: "the issued access_token has byte 0x1b at offset 4, outside the characters RFC 6749 Appendix A.12 allows (0x20-0x7e): not printed raw; see the answer with -o json\n",
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := hostileSTS(t, tc.status, tc.ctype, tc.body)
			out, errOut, code := run(t, append([]string{"exchange", "--client-id", "c", "--auth-method", "none", "--sts", srv.URL + "/token", "--subject-token", subject}, tc.args...)...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, want %d; stderr lacks %q:\n%q", code, tc.code, tc.want, errOut)
			}
			assertNoControls(t, "stderr", errOut)
			if strings.Contains(strings.ReplaceAll(errOut, "\n", "|"), "|idtx: exchange OK") {
				t.Errorf("a forged line reached stderr:\n%s", errOut)
			}
			if out != "" {
				t.Errorf("stdout: %q", out)
			}
		})
	}

	// -o json and -o claims of a hostile but well-formed answer: valid
	// JSON, the same values, no raw control.
	claims := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":` + jsonString(hostile) + `}`))
	token := "eyJhbGciOiJFUzI1NiJ9." + claims + ".c2ln"
	srv := hostileSTS(t, 200, "application/json",
		`{"access_token":`+jsonString(token)+`,"token_type":"Bearer","scope":`+jsonString(hostile)+`,"note":"`+"\u202e\u0085\x7f"+`"}`)
	for _, o := range []string{"json", "claims"} {
		out, errOut, code := run(t, "exchange", "--client-id", "c", "--auth-method", "none", "--sts", srv.URL+"/token", "--subject-token", subject, "-o", o)
		if code != 0 {
			t.Fatalf("-o %s: exit %d %s", o, code, errOut)
		}
		assertNoControls(t, "-o "+o, out)
		var v map[string]any
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("-o %s is not JSON: %v\n%s", o, err, out)
		}
		key := map[string]string{"json": "scope", "claims": "sub"}[o]
		if v[key] != hostile {
			t.Errorf("-o %s: %s = %q, want %q", o, key, v[key], hostile)
		}
	}
	// The same token printed raw with -o token: it is VSCHAR only.
	if out, errOut, code := run(t, "exchange", "--client-id", "c", "--auth-method", "none", "--sts", srv.URL+"/token", "--subject-token", subject); code != 0 || out != token {
		t.Errorf("-o token: exit %d %q %s", code, out, errOut)
	}

	// Metadata naming a token endpoint with controls in it.
	meta := hostileSTS(t, 200, "application/json", `{"issuer":"x","token_endpoint":`+jsonString("http://127.0.0.1:1/"+hostile)+`}`)
	_, errOut, code := run(t, "exchange", "--client-id", "c", "--auth-method", "none", "--sts", meta.URL, "--subject-token", subject)
	if code == 0 || strings.Contains(errOut, "\x1b") {
		t.Errorf("hostile metadata: exit %d %q", code, errOut)
	}
	assertNoControls(t, "stderr", errOut)
}

// inspect prints header and claim names and values, JWT or SAML, escaped.
func TestInspectHostileJWT(t *testing.T) {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	header := `{"alg":"RS256","typ":"JWT","kid":` + jsonString(hostile) + `}`
	claims := `{"iss":"https://idp.example","sub":` + jsonString(hostile) + `,` + jsonString("name"+hostile) + `:"x",` +
		`"groups":[` + jsonString(hostile) + `],"exp":4102444800}`
	token := enc(header) + "." + enc(claims) + "." + enc("sig")

	out, errOut, code := run(t, "inspect", token)
	if code != 0 {
		t.Fatalf("inspect: exit %d %s", code, errOut)
	}
	assertNoControls(t, "inspect", out)
	for _, want := range []string{
		"  kid            " + hostileEscaped + "\n",
		"  sub            " + hostileEscaped + "\n",
		"  name" + hostileEscaped + " x\n",
		// json.Marshal, which leaves U+202E, C1 and DEL raw, then safeText.
		`  groups         ["\u001b]0;owned\u0007\u001b[2J\r\nidtx: exchange OK\u202e\u009b31m\x7f\u2066\u2028"]` + "\n",
	} {
		if !strings.Contains(out+"\n", want) {
			t.Errorf("inspect lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\nidtx: exchange OK") {
		t.Errorf("a forged line reached stdout:\n%s", out)
	}

	out, _, code = run(t, "inspect", token, "-o", "json")
	if code != 0 {
		t.Fatalf("inspect -o json: exit %d", code)
	}
	assertNoControls(t, "inspect -o json", out)
	var v struct {
		Header, Claims map[string]any
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Header["kid"] != hostile || v.Claims["sub"] != hostile || v.Claims["name"+hostile] != "x" {
		t.Errorf("inspect -o json: %v %q", err, out)
	}

	// A failed --verify names the token's issuer: escaped too.
	bad := enc(`{"alg":"RS256"}`) + "." + enc(`{"iss":`+jsonString("https://idp.example/"+hostile)+`,"exp":4102444800}`) + "." + enc("sig")
	jwks := filepath.Join(t.TempDir(), "mock.jwks")
	data, _ := fixtures.FS.ReadFile(fixtures.MockIDPJWKS)
	os.WriteFile(jwks, data, 0o600)
	_, errOut, code = run(t, "inspect", bad, "--verify", "--jwks", jwks)
	if code != ExitRejected || !strings.Contains(errOut, "verification failed") {
		t.Errorf("inspect --verify of a hostile token: exit %d %q", code, errOut)
	}
	assertNoControls(t, "stderr", errOut)
}

// -o claims of an opaque issued token still prints the answer, token
// included, with a note on stderr: a script is never left without it.
func TestExchangeClaimsOfOpaqueToken(t *testing.T) {
	sts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"opaque-123","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer","expires_in":60}`))
	}))
	defer sts.Close()
	out, errOut, code := run(t, "exchange", "--client-id", "c", "--auth-method", "none", "--sts", sts.URL+"/token", "--subject-token", "x.y.z", "--audience", "a", "-o", "claims")
	if code != 0 || !strings.Contains(out, `"access_token": "opaque-123"`) || !strings.Contains(errOut, "not a JWT: it has no claims to show") {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
}
