package exchange_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/idtx/idtx/exchange"
	"github.com/idtx/idtx/oauth"
	"github.com/idtx/idtx/stsclient"
)

// tracedEnv is an env whose handler keeps traces.
func tracedEnv(t *testing.T, n int, open bool) (*env, *exchange.Handler) {
	e := newEnv(t)
	h := exchange.NewHandler(e.engine, slog.New(slog.NewTextHandler(io.Discard, nil)))
	h.EnableTraces(n, open)
	e.handler = h
	return e, h
}

// getTraces GETs path from the handler, from remote (host:port), with
// Basic credentials when basic is id, secret.
func getTraces(t *testing.T, h http.Handler, path, remote string, basic ...string) (int, []byte) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.RemoteAddr = remote
	if len(basic) == 2 {
		req.SetBasicAuth(basic[0], basic[1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

func decodeList(t *testing.T, body []byte) []stsclient.Record {
	t.Helper()
	var l struct{ Traces []stsclient.Record }
	if err := json.Unmarshal(body, &l); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	return l.Traces
}

// A refusal names its trace (RFC 6749 §5.2 allows extra members), and the
// trace says which step refused and why.
func TestTraceIDInErrors(t *testing.T) {
	e, h := tracedEnv(t, 10, false)
	r := e.post("/token", e.form(e.subject(nil), "audience", "nope"))
	expectError(t, r, 400, "invalid_target", `audience "nope" is not a registered service`)
	id := r.str("trace_id")
	if id == "" {
		t.Fatalf("no trace_id in %v", r.body)
	}
	code, body := getTraces(t, h, "/traces/"+id, "192.0.2.1:1", "demo-client", "demo-secret")
	var rec stsclient.Record
	if code != 200 || json.Unmarshal(body, &rec) != nil {
		t.Fatalf("%d %s", code, body)
	}
	if rec.ID != id || rec.Outcome != "refused" || rec.Error.Step != "target" || rec.Error.Code != "invalid_target" || len(rec.Steps) != 3 || rec.ClientID != "demo-client" {
		t.Fatalf("record %s", body)
	}
	// Without traces, no trace_id and no endpoint.
	plain := newEnv(t)
	if r := plain.post("/token", plain.form(plain.subject(nil), "audience", "nope")); r.str("trace_id") != "" {
		t.Fatalf("trace_id without traces: %v", r.body)
	}
	if code, _ := getTraces(t, plain.handler, "/traces", "127.0.0.1:1"); code != 404 && code != 405 {
		t.Fatalf("GET /traces without traces: %d", code)
	}
}

// On a configured server a client must authenticate and sees only its own
// exchanges; an exchange whose client did not authenticate is no one's.
func TestTracesPerClient(t *testing.T) {
	e, h := tracedEnv(t, 10, false)
	e.post("/token", e.form(e.subject(nil)))                                           // demo-client ok
	e.post("/token", e.form(e.subject(nil)), "restricted-client", "restricted-secret") // ok
	e.post("/token", e.form(e.subject(nil)), "demo-client", "wrong")                   // no one's
	for _, tc := range []struct {
		name  string
		basic []string
		code  int
		n     int
	}{
		{"no credentials", nil, 401, 0},
		{"wrong secret", []string{"demo-client", "nope"}, 401, 0},
		{"demo-client", []string{"demo-client", "demo-secret"}, 200, 1},
		{"restricted-client", []string{"restricted-client", "restricted-secret"}, 200, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := getTraces(t, h, "/traces", "127.0.0.1:1", tc.basic...)
			if code != tc.code {
				t.Fatalf("%d %s", code, body)
			}
			if code == 401 {
				if !strings.Contains(string(body), "invalid_client") {
					t.Fatalf("%s", body)
				}
				return
			}
			list := decodeList(t, body)
			if len(list) != tc.n || list[0].ClientID != tc.basic[0] {
				t.Fatalf("%s", body)
			}
			// Another client's trace is not found.
			other := "1"
			if list[0].ID == "1" {
				other = "2"
			}
			if code, _ := getTraces(t, h, "/traces/"+other, "127.0.0.1:1", tc.basic...); code != 404 {
				t.Fatalf("another client's trace: %d", code)
			}
		})
	}
}

// Open traces (the mock) answer loopback callers without credentials,
// newest first, ?since= for polling; the ring keeps only the last n.
func TestTracesOpenOnLoopback(t *testing.T) {
	e, h := tracedEnv(t, 3, true)
	for range 5 {
		e.post("/token", e.form(e.subject(nil)))
	}
	code, body := getTraces(t, h, "/traces", "127.0.0.1:4000")
	list := decodeList(t, body)
	if code != 200 || len(list) != 3 || list[0].ID != "5" || list[2].ID != "3" {
		t.Fatalf("%d %s", code, body)
	}
	_, body = getTraces(t, h, "/traces?since=4", "[::1]:4000")
	if list := decodeList(t, body); len(list) != 1 || list[0].ID != "5" {
		t.Fatalf("since=4: %s", body)
	}
	if code, body := getTraces(t, h, "/traces?since=x", "127.0.0.1:4000"); code != 400 || !strings.Contains(string(body), `since \"x\" is not a trace id`) {
		t.Fatalf("since=x: %d %s", code, body)
	}
	if code, _ := getTraces(t, h, "/traces", "192.0.2.7:4000"); code != 401 {
		t.Fatalf("open traces answered a non-loopback caller without credentials: %d", code)
	}
	if code, _ := getTraces(t, h, "/traces/1", "127.0.0.1:4000"); code != 404 {
		t.Fatalf("trace 1 outlived the ring: %d", code)
	}
}

// Traces never hold a token, a secret or a signature: every credential
// used in a mix of accepted and refused exchanges is looked for in every
// trace the server keeps.
func TestTracesHoldNoSecrets(t *testing.T) {
	e, h := tracedEnv(t, 100, true)
	subject := e.subject(jwt.MapClaims{"may_act": map[string]any{"sub": "gateway"}})
	actor := e.corp.sign(t, e.claims(jwt.MapClaims{"sub": "gateway"}), nil)
	assertion := e.assertion(nil)
	forged := e.other.sign(t, e.claims(nil), nil)
	secrets := []string{subject, actor, assertion, forged, "demo-secret", "restricted-secret", "bcrypt-secret", "wrong-secret"}
	var issued []string
	for _, r := range []response{
		e.post("/token", e.form(subject)),
		e.post("/token", e.form(subject, "audience", "billing-api", "scope", "billing:write")),
		e.post("/token", e.form(subject, "actor_token", actor, "actor_token_type", oauth.TokenTypeJWT)),
		e.post("/token", e.form(subject, "client_id", "demo-client", "client_secret", "demo-secret"), "-"),
		e.post("/token", e.form(subject, "client_assertion_type", oauth.ClientAssertionTypeJWTBearer, "client_assertion", assertion)),
		e.post("/token", e.form(subject), "bcrypt-client", "bcrypt-secret"),
		e.post("/token", e.form(subject), "demo-client", "wrong-secret"),
		e.post("/token", e.form(forged)),
		e.post("/token", e.form(subject, "actor_token", forged, "actor_token_type", oauth.TokenTypeJWT)),
	} {
		if tok := r.str("access_token"); tok != "" {
			issued = append(issued, tok)
		}
	}
	if len(issued) < 4 {
		t.Fatalf("only %d exchanges succeeded", len(issued))
	}
	for _, tok := range append(secrets, issued...) {
		secrets = append(secrets, tok)
		if parts := strings.Split(tok, "."); len(parts) == 3 {
			secrets = append(secrets, parts[2]) // the signature alone
		}
	}
	_, body := getTraces(t, h, "/traces", "127.0.0.1:1")
	list := decodeList(t, body)
	if len(list) != 9 {
		t.Fatalf("%d traces", len(list))
	}
	all := string(body)
	for _, rec := range list {
		b, _ := getTracesBody(t, h, rec.ID)
		all += b
	}
	for i, s := range secrets {
		if strings.Contains(all, s) {
			t.Errorf("secret %d (%.12s…) is in a trace", i, s)
		}
	}
	// The detail evidence was there to leak: the identity checks, the
	// scope sets, the consents and the minted claims (claims, not token).
	for _, k := range []string{exchange.EvidenceMatched, exchange.EvidenceKeyID, exchange.EvidenceAlgorithm, exchange.EvidenceNow,
		exchange.EvidenceExpiresIn, exchange.EvidenceSkew, exchange.EvidenceRequested, exchange.EvidenceAllowedPrefix + "orders-api",
		exchange.EvidenceFoundPrefix + "billing-api", exchange.EvidenceMissingPrefix + "billing-api",
		exchange.EvidenceClaimPrefix + "sub", exchange.EvidenceClaimPrefix + "jti", exchange.EvidenceClaimPrefix + "act"} {
		if !strings.Contains(all, `"`+k) {
			t.Errorf("no trace holds evidence %s", k)
		}
	}
}

func getTracesBody(t *testing.T, h http.Handler, id string) (string, int) {
	code, body := getTraces(t, h, "/traces/"+id, "127.0.0.1:1")
	if code != 200 {
		t.Fatalf("trace %s: %d", id, code)
	}
	return string(body), code
}

// A client's traces are pushed out only by its own exchanges: requests
// that never authenticate go to a ring of their own, kept at most
// AnonymousTraceRate a second, and cannot empty another client's list.
func TestTracesPerClientRings(t *testing.T) {
	e, h := tracedEnv(t, 3, false)
	e.post("/token", e.form(e.subject(nil)), "restricted-client", "restricted-secret")
	mine := decodeList(t, mustGet(t, h, "restricted-client", "restricted-secret"))
	if len(mine) != 1 {
		t.Fatalf("restricted-client has %d traces", len(mine))
	}
	// The fake clock stands still: the burst is kept, nothing more.
	withID := 0
	for range exchange.AnonymousTraceBurst + 15 {
		r := e.post("/token", e.form(e.subject(nil)), "restricted-client", "wrong")
		expectError(t, r, 401, "invalid_client", "client authentication failed (client_secret_basic): unknown client or wrong secret")
		if r.str("trace_id") != "" {
			withID++
		}
	}
	if withID != exchange.AnonymousTraceBurst {
		t.Fatalf("%d anonymous refusals kept a trace, want the burst of %d", withID, exchange.AnonymousTraceBurst)
	}
	// demo-client's own exchanges push out demo-client's, not restricted-client's.
	for range 5 {
		e.post("/token", e.form(e.subject(nil)))
	}
	if got := decodeList(t, mustGet(t, h, "demo-client", "demo-secret")); len(got) != 3 {
		t.Fatalf("demo-client has %d traces, want its ring's 3", len(got))
	}
	got := decodeList(t, mustGet(t, h, "restricted-client", "restricted-secret"))
	if len(got) != 1 || got[0].ID != mine[0].ID {
		t.Fatalf("restricted-client's traces after others' requests: %+v", got)
	}
	if code, _ := getTraces(t, h, "/traces/"+mine[0].ID, "192.0.2.1:1", "restricted-client", "restricted-secret"); code != 200 {
		t.Fatalf("restricted-client's trace %s: %d", mine[0].ID, code)
	}
	// Open traces list every ring, newest first.
	e2, h2 := tracedEnv(t, 3, true)
	e2.post("/token", e2.form(e2.subject(nil)), "restricted-client", "restricted-secret") // 1
	e2.post("/token", e2.form(e2.subject(nil)), "nobody", "x")                            // 2
	for range 4 {
		e2.post("/token", e2.form(e2.subject(nil))) // 3..6, 3 pushed out
	}
	e2.post("/token", e2.form(e2.subject(nil)), "nobody", "x") // 7
	_, body := getTraces(t, h2, "/traces", "127.0.0.1:1")
	var ids []string
	for _, r := range decodeList(t, body) {
		ids = append(ids, r.ID)
	}
	if strings.Join(ids, " ") != "7 6 5 4 2 1" {
		t.Fatalf("open list: %v", ids)
	}
	if _, body := getTraces(t, h2, "/traces?since=4", "127.0.0.1:1"); len(decodeList(t, body)) != 3 {
		t.Fatalf("since=4: %s", body)
	}
}

func mustGet(t *testing.T, h http.Handler, id, secret string) []byte {
	t.Helper()
	code, body := getTraces(t, h, "/traces", "192.0.2.1:1", id, secret)
	if code != 200 {
		t.Fatalf("GET /traces as %s: %d %s", id, code, body)
	}
	return body
}
