package exchange_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/idtx/idtx/exchange"
	"github.com/idtx/idtx/mockidp"
	"github.com/idtx/idtx/oauth"
	"github.com/idtx/idtx/store"
	"github.com/idtx/idtx/workflow"
)

// withWorkflows attaches names to billing-api and appends the top-level
// workflows block to the test config.
func withWorkflows(names, block string) func(string, map[string][]byte) string {
	return func(yaml string, _ map[string][]byte) string {
		yaml = strings.Replace(yaml, "    default_scopes: [billing:read]\n", "    default_scopes: [billing:read]\n    workflows: ["+names+"]\n", 1)
		return yaml + "workflows:\n" + block
	}
}

const celWorkflows = `
  - name: no-interns
    deny_if: 'has(subject.groups) && "interns" in subject.groups'
    message: interns may not call billing
  - name: tag-dept
    claims:
      dept: 'subject.email.split("@")[1]'
      via: 'client + " for " + service.name'
`

func TestWorkflowCELDeny(t *testing.T) {
	e := newEnvWith(t, store.NewMemory(), withWorkflows("no-interns, tag-dept", celWorkflows))
	tok := e.subject(jwt.MapClaims{"groups": []string{"staff", "interns"}, "email": "alice@corp.example"})
	r := e.post("/token", e.form(tok, "audience", "billing-api"))
	expectError(t, r, http.StatusBadRequest, "invalid_request", "workflow no-interns denied: interns may not call billing")
	if r.str("error_description") != "workflow no-interns denied: interns may not call billing" {
		t.Errorf("description = %q", r.str("error_description"))
	}
	// orders-api has no workflows: the same subject passes there.
	if r := e.post("/token", e.form(tok)); r.status != http.StatusOK {
		t.Fatalf("orders-api: %d %v", r.status, r.body)
	}
}

func TestWorkflowCELClaimsInIssuedToken(t *testing.T) {
	e := newEnvWith(t, store.NewMemory(), withWorkflows("no-interns, tag-dept", celWorkflows))
	tok := e.subject(jwt.MapClaims{"groups": []string{"staff"}, "email": "alice@corp.example"})
	r := e.post("/token", e.form(tok, "audience", "billing-api"))
	if r.status != http.StatusOK {
		t.Fatalf("%d %v", r.status, r.body)
	}
	claims, _ := e.issued(r.str("access_token"))
	if claims["dept"] != "corp.example" || claims["via"] != "demo-client for billing-api" || claims["sub"] != "alice" || claims["client_id"] != "demo-client" {
		t.Fatalf("claims = %v", claims)
	}

	// The trace records each workflow's verdict.
	form := e.form(tok, "audience", "billing-api")
	_, trace, oerr := e.engine.Run(context.Background(), &exchange.Request{Form: form, Basic: &exchange.BasicAuth{ID: "demo-client", Secret: "demo-secret"}})
	if oerr != nil {
		t.Fatal(oerr)
	}
	for _, entry := range trace {
		if entry.Step != "workflows" {
			continue
		}
		if entry.Status != exchange.Pass || entry.Evidence["workflow.no-interns"] != "pass" || entry.Evidence["workflow.tag-dept"] != "claims dept via" {
			t.Fatalf("workflows step = %+v", entry.Outcome)
		}
		return
	}
	t.Fatal("no workflows step in the trace")
}

func TestWorkflowSkippedWhenNoneConfigured(t *testing.T) {
	e := newEnv(t)
	_, trace, oerr := e.engine.Run(context.Background(), &exchange.Request{Form: e.form(e.subject(nil)), Basic: &exchange.BasicAuth{ID: "demo-client", Secret: "demo-secret"}})
	if oerr != nil {
		t.Fatal(oerr)
	}
	for _, entry := range trace {
		if entry.Step == "workflows" && entry.Status != exchange.Skip {
			t.Fatalf("workflows step = %+v", entry.Outcome)
		}
	}
}

func TestWorkflowThatCannotEvaluateRefuses(t *testing.T) {
	// No has(): a subject without groups makes the rule fail, which refuses.
	e := newEnvWith(t, store.NewMemory(), withWorkflows("strict", `
  - name: strict
    deny_if: '"interns" in subject.groups'
    message: interns may not call billing
`))
	r := e.post("/token", e.form(e.subject(nil), "audience", "billing-api"))
	expectError(t, r, http.StatusBadRequest, "invalid_request", "workflow strict: could not evaluate: deny_if: no such key: groups")
}

func TestWorkflowWebhook(t *testing.T) {
	const secret = "hook-secret"
	var answer string
	var status int
	var got workflow.Payload
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := workflow.VerifySignature(r.Header.Get(workflow.SignatureHeader), body, []byte(secret), t0, workflow.ReplayWindow); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		json.Unmarshal(body, &got)
		w.WriteHeader(status)
		io.WriteString(w, answer)
	}))
	defer srv.Close()
	e := newEnvWith(t, store.NewMemory(), withWorkflows("fraud-check", `
  - name: fraud-check
    webhook: `+srv.URL+`/check
    secret: `+secret+`
    timeout: 1s
`))
	tok := e.subject(nil)
	for _, tc := range []struct {
		name, answer string
		status       int
		wantStatus   int
		wantCode     string
		wantDesc     string
	}{
		{"allow", `{"allow": true, "claims": {"risk": "low"}}`, 200, 200, "", ""},
		{"deny", `{"allow": false, "reason": "account frozen"}`, 200, 400, "invalid_request", "workflow fraud-check denied: account frozen"},
		{"deny without reason", `{"allow": false}`, 200, 400, "invalid_request", "workflow fraud-check denied the exchange for billing-api"},
		{"500", `{"allow": true}`, 500, 503, "temporarily_unavailable", "workflow fraud-check: webhook unavailable: answered HTTP 500"},
		{"garbage", `allow`, 200, 503, "temporarily_unavailable", "workflow fraud-check: webhook unavailable: answer is not the JSON"},
		{"reserved claim", `{"allow": true, "claims": {"sub": "root"}}`, 200, 503, "temporarily_unavailable", `workflow fraud-check: webhook unavailable: answer sets the reserved claim "sub"`},
		// Go's encoding/json would read "Sub" as the subject (case folding)
		{"reserved claim in another case", `{"allow": true, "claims": {"Sub": "root"}}`, 200, 503, "temporarily_unavailable", `workflow fraud-check: webhook unavailable: answer sets the reserved claim "Sub"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			answer, status = tc.answer, tc.status
			r := e.post("/token", e.form(tok, "audience", "billing-api"))
			if tc.wantCode != "" {
				expectError(t, r, tc.wantStatus, tc.wantCode, tc.wantDesc)
				return
			}
			if r.status != 200 {
				t.Fatalf("%d %v", r.status, r.body)
			}
			claims, _ := e.issued(r.str("access_token"))
			if claims["risk"] != "low" {
				t.Fatalf("claims = %v", claims)
			}
			if got.Workflow != "fraud-check" || got.Subject["sub"] != "alice" || got.Client != "demo-client" ||
				got.Service.Name != "billing-api" || got.Request.Mode != "impersonation" || len(got.Scopes) != 1 {
				t.Fatalf("payload = %+v", got)
			}
		})
	}
}

func TestWorkflowWebhookTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body) // the server notices the client leave once the body is read
		<-r.Context().Done()
	}))
	defer srv.Close()
	e := newEnvWith(t, store.NewMemory(), withWorkflows("slow", `
  - name: slow
    webhook: `+srv.URL+`
    secret: x
    timeout: 20ms
`))
	r := e.post("/token", e.form(e.subject(nil), "audience", "billing-api"))
	expectError(t, r, http.StatusServiceUnavailable, "temporarily_unavailable", "workflow slow: webhook unavailable: no answer within 20ms")
}

// TestMockBlockedWorkflow is the mock's workflow no-blocked (docs/mock.md): a subject in
// the blocked group is refused for every service.
func TestMockBlockedWorkflow(t *testing.T) {
	cfg, err := mockidp.Config()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Issuer = "https://sts.test"
	clock := func() time.Time { return t0 }
	store := store.NewMemory()
	if err := mockidp.SeedConsents(context.Background(), store); err != nil {
		t.Fatal(err)
	}
	engine, err := exchange.Build(context.Background(), cfg, exchange.BuildOptions{Home: t.TempDir(), Store: store, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, handler: exchange.NewHandler(engine, slog.New(slog.NewTextHandler(io.Discard, nil)))}
	token := func(sub string, claims map[string]any) string {
		tok, err := mockidp.JWT(mockidp.TokenOptions{Sub: sub, Claims: claims, Now: t0})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	// alice has consented to billing:read: the workflow, after consent,
	// is what refuses her once she is blocked.
	for sub, aud := range map[string]string{"mallory": "orders-api", "alice": "billing-api"} {
		r := e.post("/token", url.Values{
			"grant_type": {oauth.GrantTypeTokenExchange}, "subject_token": {token(sub, map[string]any{"groups": []string{"blocked"}})},
			"subject_token_type": {oauth.TokenTypeJWT}, "audience": {aud},
		})
		expectError(t, r, http.StatusBadRequest, "invalid_request", "workflow no-blocked denied: subjects in the blocked group may not exchange tokens")
	}
	for sub, claims := range map[string]map[string]any{"alice": nil, "bob": {"groups": []string{"staff"}}, "carol": {"groups": "staff"}} {
		r := e.post("/token", url.Values{
			"grant_type": {oauth.GrantTypeTokenExchange}, "subject_token": {token(sub, claims)},
			"subject_token_type": {oauth.TokenTypeJWT}, "audience": {"orders-api"},
		})
		if r.status != http.StatusOK {
			t.Fatalf("%s: %d %v", sub, r.status, r.body)
		}
	}
	r := e.post("/token", url.Values{
		"grant_type": {oauth.GrantTypeTokenExchange}, "subject_token": {token("dave", map[string]any{"groups": "blocked"})},
		"subject_token_type": {oauth.TokenTypeJWT}, "audience": {"orders-api"},
	})
	expectError(t, r, http.StatusBadRequest, "invalid_request", "workflow no-blocked denied")
}

// Claims that differ only in case, from two workflows or inside one
// value, never reach a token: a Go resource server would read one for the
// other, and the STS itself refuses such a token when it comes back.
func TestWorkflowClaimsDifferingInCase(t *testing.T) {
	const secret = "hook-secret"
	answer := `{"allow": true, "claims": {"DEPT": "sales"}}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		io.WriteString(w, answer)
	}))
	defer srv.Close()
	e := newEnvWith(t, store.NewMemory(), withWorkflows("tag, hook", `
  - name: tag
    claims:
      dept: '"ops"'
  - name: hook
    webhook: `+srv.URL+`/check
    secret: `+secret+`
    timeout: 1s
`))
	if err := e.store.Grant(t.Context(), "corp", "alice", "billing-api", []string{"billing:read"}); err != nil {
		t.Fatal(err)
	}
	send := func() response { return e.post("/token", e.form(e.subject(nil), "audience", "billing-api")) }
	expectError(t, send(), http.StatusInternalServerError, "server_error", "internal error")

	answer = `{"allow": true, "claims": {"dept": "sales", "x": {"a": 1}}}` // an exact repeat: the later wins
	claims, _ := e.issued(mustOK(t, send()))
	if claims["dept"] != "sales" {
		t.Fatalf("dept = %v", claims["dept"])
	}
	answer = `{"allow": true, "claims": {"x": {"a": 1, "A": 2}}}`
	expectError(t, send(), http.StatusServiceUnavailable, "temporarily_unavailable", `workflow hook: webhook unavailable: answer has the member "A" twice`)
}

func TestFoldClashInCELClaims(t *testing.T) {
	e := newEnvWith(t, store.NewMemory(), withWorkflows("tag", `
  - name: tag
    claims:
      x: '{"team": "a", "TEAM": "b"}'
`))
	if err := e.store.Grant(t.Context(), "corp", "alice", "billing-api", []string{"billing:read"}); err != nil {
		t.Fatal(err)
	}
	r := e.post("/token", e.form(e.subject(nil), "audience", "billing-api"))
	expectError(t, r, http.StatusInternalServerError, "server_error", "internal error")
}
