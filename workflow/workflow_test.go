package workflow_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/idtx/idtx/internal/fetch"
	"github.com/idtx/idtx/workflow"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func input() *workflow.Input {
	return &workflow.Input{
		Subject: map[string]any{"sub": "alice", "email": "alice@corp.example", "groups": []any{"staff", "interns"}, "exp": float64(t0.Unix() + 3600)},
		Client:  "demo-client",
		Service: workflow.Service{Name: "billing-api", Audience: "billing-api"},
		Scopes:  []string{"billing:read"},
		Request: workflow.Request{Audiences: []string{"billing-api"}, RequestedTokenType: "urn:ietf:params:oauth:token-type:access_token", Mode: "impersonation"},
		Now:     t0,
	}
}

func mustCompile(t *testing.T, spec workflow.Spec, opts ...workflow.Option) *workflow.Workflow {
	t.Helper()
	w, err := workflow.Compile(spec, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestCELDeny(t *testing.T) {
	for _, tc := range []struct {
		expr  string
		allow bool
	}{
		{`"interns" in subject.groups`, false},
		{`has(subject.groups) && "blocked" in subject.groups`, true},
		{`has(actor.sub)`, true}, // impersonation: actor is an empty map
		{`client != "demo-client"`, true},
		{`service.name == "billing-api" && "billing:read" in scopes`, false},
		{`request.mode == "impersonation" && "billing-api" in request.audiences`, false},
		{`now > timestamp("2026-03-04T05:06:08Z")`, true},
		{`subject.exp > 1000`, false}, // a JSON number against an int
		{`subject.email.split("@")[1] == "corp.example"`, false},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			w := mustCompile(t, workflow.Spec{Name: "r", DenyIf: tc.expr, Message: "no"})
			v, err := w.Run(context.Background(), input())
			if err != nil {
				t.Fatal(err)
			}
			if v.Allow != tc.allow {
				t.Fatalf("allow = %v, want %v", v.Allow, tc.allow)
			}
			if !v.Allow && v.Reason != "no" {
				t.Fatalf("reason = %q", v.Reason)
			}
		})
	}
}

func TestCELClaims(t *testing.T) {
	w := mustCompile(t, workflow.Spec{Name: "tag", Claims: map[string]string{
		"dept":    `subject.email.split("@")[1]`,
		"n":       `size(subject.groups)`,
		"teams":   `subject.groups.filter(g, g != "interns")`,
		"meta":    `{"by": client, "at": now, "ratio": 0.5, "none": null}`,
		"svc":     `service.audience`,
		"is_dele": `request.mode == "delegation"`,
	}})
	v, err := w.Run(context.Background(), input())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"dept": "corp.example", "n": int64(2), "teams": []any{"staff"},
		"meta": map[string]any{"by": "demo-client", "at": "2026-03-04T05:06:07Z", "ratio": 0.5, "none": nil},
		"svc":  "billing-api", "is_dele": false,
	}
	if !v.Allow || !reflect.DeepEqual(v.Claims, want) {
		t.Fatalf("got %v %#v, want %#v", v.Allow, v.Claims, want)
	}
	if _, err := json.Marshal(v.Claims); err != nil {
		t.Fatal(err)
	}
}

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec workflow.Spec
		want string
	}{
		{"syntax", workflow.Spec{Name: "w", Claims: map[string]string{"dept": `subject.email.split("@"`}}, "claims.dept: 1:"},
		{"undeclared", workflow.Spec{Name: "w", DenyIf: `user.admin`, Message: "m"}, "deny_if: 1:1: undeclared reference to 'user'"},
		{"not bool", workflow.Spec{Name: "w", DenyIf: `client + "x"`, Message: "m"}, "deny_if: has type string, want bool"},
		{"dyn is not bool", workflow.Spec{Name: "w", DenyIf: `subject.admin`, Message: "m"}, "deny_if: has type dyn, want bool"},
		{"reserved sub", workflow.Spec{Name: "w", Claims: map[string]string{"sub": `"mallory"`}}, `claims.sub: "sub" is reserved`},
		{"reserved scope", workflow.Spec{Name: "w", Claims: map[string]string{"scope": `"admin"`}}, `claims.scope: "scope" is reserved`},
		{"reserved may_act", workflow.Spec{Name: "w", Claims: map[string]string{"may_act": `{"sub": "x"}`}}, `claims.may_act: "may_act" is reserved`},
		// encoding/json would read these as sub and scope (case folding)
		{"reserved Sub", workflow.Spec{Name: "w", Claims: map[string]string{"Sub": `"mallory"`}}, `claims.Sub: "Sub" is reserved`},
		{"reserved long-s scope", workflow.Spec{Name: "w", Claims: map[string]string{"\u017fcope": `"admin"`}}, "claims.\u017fcope: \"\u017fcope\" is reserved"},
		{"no message", workflow.Spec{Name: "w", DenyIf: `true`}, "message: required with deny_if"},
		{"message alone", workflow.Spec{Name: "w", Message: "m", Claims: map[string]string{"a": "1"}}, "message: only goes with deny_if"},
		{"empty", workflow.Spec{Name: "w"}, "needs deny_if (with message), claims, or webhook"},
		{"both kinds", workflow.Spec{Name: "w", DenyIf: "true", Message: "m", Webhook: "https://x.test", Secret: "s"}, "not both"},
		{"bad name", workflow.Spec{Name: "a b", DenyIf: "true", Message: "m"}, `name: "a b" is not a workflow name`},
		{"no secret", workflow.Spec{Name: "w", Webhook: "https://x.test/hook"}, "secret: required with webhook"},
		{"bad url", workflow.Spec{Name: "w", Webhook: "file:///etc/passwd", Secret: "s"}, "webhook: \"file:///etc/passwd\" is not an http(s) URL"},
		{"long timeout", workflow.Spec{Name: "w", Webhook: "https://x.test", Secret: "s", Timeout: time.Hour}, "timeout: 1h0m0s is outside"},
		{"secret on CEL", workflow.Spec{Name: "w", DenyIf: "true", Message: "m", Secret: "s"}, "secret, timeout: only go with webhook"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := workflow.Compile(tc.spec)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestCompileReportsEveryProblem(t *testing.T) {
	_, err := workflow.Compile(workflow.Spec{Name: "w", DenyIf: "1", Claims: map[string]string{"iss": `"x"`, "ok": `nope`}})
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != 4 {
		t.Fatalf("err = %v, want 4 problems (message, deny_if, claims.iss, claims.ok)", err)
	}
}

func TestEvalErrorsFailClosed(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec workflow.Spec
		want string
	}{
		{"missing key", workflow.Spec{Name: "w", DenyIf: `"x" in subject.roles`, Message: "m"}, "deny_if: no such key: roles"},
		{"missing actor key", workflow.Spec{Name: "w", DenyIf: `actor.sub == "bot"`, Message: "m"}, "deny_if: no such key: sub"},
		{"not JSON", workflow.Spec{Name: "w", Claims: map[string]string{"raw": `b"bytes"`}}, "claims.raw: a value of type bytes is not JSON"},
		{"NaN", workflow.Spec{Name: "w", Claims: map[string]string{"x": `0.0 / 0.0`}}, "claims.x: NaN is not a JSON number"},
		{"wrong type at run time", workflow.Spec{Name: "w", DenyIf: `subject.sub > 3`, Message: "m"}, "deny_if: no such overload"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := mustCompile(t, tc.spec)
			_, err := w.Run(context.Background(), input())
			if !errors.Is(err, workflow.ErrEval) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrEval containing %q", err, tc.want)
			}
		})
	}
}

func TestCostLimit(t *testing.T) {
	in := input()
	groups := make([]any, 400) // within workflow.MaxRuleValues
	for i := range groups {
		groups[i] = "g" + strconv.Itoa(i)
	}
	in.Subject["groups"] = groups
	spec := workflow.Spec{Name: "quadratic", DenyIf: `subject.groups.exists(a, subject.groups.exists(b, a + b == "none"))`, Message: "m"}
	// The default limit stops a rule that is quadratic in a claim (the
	// budget, wide here, would stop it too, on a busy machine first).
	w := mustCompile(t, spec, workflow.WithEvalBudget(time.Minute))
	_, err := w.Run(context.Background(), in)
	if !errors.Is(err, workflow.ErrEval) || !strings.Contains(err.Error(), "cost limit exceeded") {
		t.Fatalf("err = %v, want the cost limit exceeded", err)
	}
	// The same rule over a few groups is well within it.
	if _, err := w.Run(context.Background(), input()); err != nil {
		t.Fatal(err)
	}
	// A tighter limit stops even a linear one.
	w = mustCompile(t, workflow.Spec{Name: "linear", DenyIf: `subject.groups.exists(g, g == "none")`, Message: "m"}, workflow.WithCostLimit(100))
	if _, err := w.Run(context.Background(), in); !errors.Is(err, workflow.ErrEval) || !strings.Contains(err.Error(), "cost limit exceeded") {
		t.Fatalf("err = %v, want the cost limit exceeded", err)
	}
}

// hook is a webhook receiver that verifies X-Idtx-Signature itself, the way
// docs/workflows.md tells a receiver to, before answering.
type hook struct {
	t       *testing.T
	secret  string
	now     time.Time // the receiver's clock
	answer  func(w http.ResponseWriter, r *http.Request, p workflow.Payload)
	got     []workflow.Payload
	refused []string
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := h.verify(r.Header.Get("X-Idtx-Signature"), body); err != nil {
		h.refused = append(h.refused, err.Error())
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var p workflow.Payload
	if err := json.Unmarshal(body, &p); err != nil {
		h.t.Errorf("payload: %v", err)
	}
	h.got = append(h.got, p)
	h.answer(w, r, p)
}

// verify is the receiver's recipe, written out without the package's
// helper: split t= and v1=, refuse a timestamp outside 5 minutes, compare
// HMAC-SHA256("<t>.<body>") in constant time.
func (h *hook) verify(header string, body []byte) error {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("no timestamp in %q", header)
	}
	if d := h.now.Sub(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("stale timestamp %s", d)
	}
	m := hmac.New(sha256.New, []byte(h.secret))
	m.Write([]byte(ts + "." + string(body)))
	got, _ := hex.DecodeString(sig)
	if !hmac.Equal(got, m.Sum(nil)) {
		return fmt.Errorf("bad signature")
	}
	return nil
}

func answerJSON(s string) func(http.ResponseWriter, *http.Request, workflow.Payload) {
	return func(w http.ResponseWriter, _ *http.Request, _ workflow.Payload) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, s)
	}
}

func newHook(t *testing.T, answer func(http.ResponseWriter, *http.Request, workflow.Payload)) (*hook, *httptest.Server) {
	h := &hook{t: t, secret: "s3cret-s3cret", now: t0.Add(90 * time.Second), answer: answer}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return h, srv
}

func TestWebhook(t *testing.T) {
	for _, tc := range []struct {
		name    string
		answer  func(http.ResponseWriter, *http.Request, workflow.Payload)
		allow   bool
		reason  string
		claims  map[string]any
		wantErr string // wraps ErrUnavailable
	}{
		{name: "allow", answer: answerJSON(`{"allow": true, "claims": {"risk": "low", "score": 3}}`), allow: true, claims: map[string]any{"risk": "low", "score": float64(3)}},
		{name: "deny", answer: answerJSON(`{"allow": false, "reason": "account frozen\n", "claims": {"sub": "ignored"}}`), reason: "account frozen"},
		{name: "echo", answer: func(w http.ResponseWriter, _ *http.Request, p workflow.Payload) {
			json.NewEncoder(w).Encode(map[string]any{"allow": true, "claims": map[string]any{"who": p.Subject["sub"], "svc": p.Service.Name, "wf": p.Workflow, "mode": p.Request.Mode}})
		}, allow: true, claims: map[string]any{"who": "alice", "svc": "billing-api", "wf": "fraud", "mode": "impersonation"}},
		{name: "timeout", answer: func(_ http.ResponseWriter, r *http.Request, _ workflow.Payload) { <-r.Context().Done() }, wantErr: "no answer within 50ms"},
		{name: "500", answer: func(w http.ResponseWriter, _ *http.Request, _ workflow.Payload) { http.Error(w, "boom", 500) }, wantErr: "answered HTTP 500"},
		{name: "redirect not followed", answer: func(w http.ResponseWriter, _ *http.Request, _ workflow.Payload) {
			w.Header().Set("Location", "http://127.0.0.1:1/elsewhere")
			w.WriteHeader(http.StatusTemporaryRedirect)
		}, wantErr: "answered HTTP 307"},
		{name: "garbage", answer: answerJSON(`<html>ok</html>`), wantErr: "answer is not the JSON"},
		{name: "allow not bool", answer: answerJSON(`{"allow": "yes"}`), wantErr: "answer is not the JSON"},
		{name: "no allow", answer: answerJSON(`{"reason": "fine"}`), wantErr: `answer has no "allow"`},
		{name: "trailing data", answer: answerJSON(`{"allow": true} {"allow": false}`), wantErr: "answer is not the JSON"},
		{name: "reserved claim", answer: answerJSON(`{"allow": true, "claims": {"aud": "everything"}}`), wantErr: `answer sets the reserved claim "aud"`},
		{name: "reserved claim in another case", answer: answerJSON(`{"allow": true, "claims": {"ISS": "https://evil.example"}}`), wantErr: `answer sets the reserved claim "ISS"`},
		// encoding/json takes the last of two members, and "ALLOW" for allow
		{name: "allow twice", answer: answerJSON(`{"allow": false, "allow": true}`), wantErr: `answer has the member "allow" twice`},
		{name: "allow twice in two cases", answer: answerJSON(`{"allow": false, "ALLOW": true}`), wantErr: `answer has the member "ALLOW" twice`},
		{name: "nested claim twice", answer: answerJSON(`{"allow": true, "claims": {"x": [{"a": 1}, {"a": 1, "A": 2}]}}`), wantErr: `answer has the member "A" twice`},
		// The scanner strictjson replaced lost its place after an object
		// in an array: this deny was read as an allow.
		{name: "deny, then ALLOW after an object in an array", answer: answerJSON(`{"allow": false, "reason": "x", "c": [{"a":1}], "ALLOW": true, "y": ""}`), wantErr: `webhook unavailable: answer has the member "ALLOW" twice (names compare without case)`},
		// ... and, after an object, took a later "" for a second name "".
		{name: "empty strings are not member names", answer: answerJSON(`{"allow": true, "claims": {"x": ""}, "reason": ""}`), allow: true, claims: map[string]any{"x": ""}},
		{name: "huge", answer: answerJSON(`{"allow": true, "reason": "` + strings.Repeat("x", 70<<10) + `"}`), wantErr: "answer is larger than 65536 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, srv := newHook(t, tc.answer)
			w := mustCompile(t, workflow.Spec{Name: "fraud", Webhook: srv.URL + "/check", Secret: h.secret, Timeout: 50 * time.Millisecond})
			v, err := w.Run(context.Background(), input())
			if len(h.refused) > 0 {
				t.Fatalf("the receiver refused the signature: %v", h.refused)
			}
			if tc.wantErr != "" {
				if !errors.Is(err, workflow.ErrUnavailable) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want ErrUnavailable containing %q", err, tc.wantErr)
				}
				if v.Allow {
					t.Fatal("a failed webhook allowed")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v.Allow != tc.allow || v.Reason != tc.reason || (tc.allow && !reflect.DeepEqual(v.Claims, tc.claims)) {
				t.Fatalf("got %+v, want allow %v reason %q claims %v", v, tc.allow, tc.reason, tc.claims)
			}
			if len(h.got) != 1 || h.got[0].Subject["email"] != "alice@corp.example" || h.got[0].Actor == nil || !h.got[0].Now.Equal(t0) {
				t.Fatalf("payload = %+v", h.got)
			}
		})
	}
}

func TestWebhookSignatureRefusedWithWrongSecretOrClock(t *testing.T) {
	h, srv := newHook(t, answerJSON(`{"allow": true}`))
	w := mustCompile(t, workflow.Spec{Name: "fraud", Webhook: srv.URL, Secret: "another-secret"})
	if _, err := w.Run(context.Background(), input()); !errors.Is(err, workflow.ErrUnavailable) || len(h.refused) != 1 || h.refused[0] != "bad signature" {
		t.Fatalf("err = %v, receiver: %v; want the receiver to refuse a bad signature", err, h.refused)
	}
	// A request signed more than 5 minutes before the receiver's clock is
	// a replay.
	h.refused = nil
	w = mustCompile(t, workflow.Spec{Name: "fraud", Webhook: srv.URL, Secret: h.secret})
	in := input()
	in.Now = h.now.Add(-6 * time.Minute)
	if _, err := w.Run(context.Background(), in); !errors.Is(err, workflow.ErrUnavailable) || len(h.refused) != 1 || !strings.HasPrefix(h.refused[0], "stale timestamp") {
		t.Fatalf("err = %v, receiver: %v; want a stale timestamp refused", err, h.refused)
	}
}

func TestVerifySignature(t *testing.T) {
	body := []byte(`{"workflow":"x"}`)
	secret := []byte("k")
	header := workflow.Sign(secret, t0, body)
	if !strings.HasPrefix(header, "t="+strconv.FormatInt(t0.Unix(), 10)+",v1=") {
		t.Fatalf("header = %q", header)
	}
	if err := workflow.VerifySignature(header, body, secret, t0.Add(time.Minute), workflow.ReplayWindow); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		header string
		body   []byte
		now    time.Time
		want   string
	}{
		{"tampered body", header, []byte(`{"workflow":"y"}`), t0, "no v1 signature matches"},
		{"replayed", header, body, t0.Add(6 * time.Minute), "outside 5m0s"},
		{"no timestamp", "v1=00", body, t0, "no timestamp"},
		{"other timestamp", strings.Replace(header, "t=", "t=1", 1), body, t0, "outside"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := workflow.VerifySignature(tc.header, tc.body, secret, tc.now, workflow.ReplayWindow)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// BenchmarkRun is the marginal cost of workflows in an exchange: one CEL
// deny rule and one claims expression over a subject's claims.
//
//	go test -run '^$' -bench Run -cpu 1 ./workflow
func BenchmarkRun(b *testing.B) {
	deny, err := workflow.Compile(workflow.Spec{Name: "no-interns", DenyIf: `has(subject.groups) && "interns" in subject.groups`, Message: "m"})
	if err != nil {
		b.Fatal(err)
	}
	claims, err := workflow.Compile(workflow.Spec{Name: "tenant", Claims: map[string]string{"tenant": `subject.iss.split("/")[2]`}})
	if err != nil {
		b.Fatal(err)
	}
	in := input()
	in.Subject["iss"] = "https://idp.test"
	in.Subject["groups"] = []any{"staff", "sales"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if v, err := deny.Run(ctx, in); err != nil || !v.Allow {
			b.Fatal(v, err)
		}
		if v, err := claims.Run(ctx, in); err != nil || v.Claims["tenant"] != "idp.test" {
			b.Fatal(v, err)
		}
	}
}

// TestWebhookUnreachableNamesNoURL: the error's text reaches the client
// and the trace, so it names neither the URL nor its query; the server's
// log reads the URL, query values redacted, from fetch.Detail.
func TestWebhookUnreachableNamesNoURL(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens there now
	w := mustCompile(t, workflow.Spec{Name: "fraud", Webhook: "http://" + addr + "/check?api_key=SECRET", Secret: "s3cret-s3cret", Timeout: time.Second})
	_, err = w.Run(context.Background(), input())
	if !errors.Is(err, workflow.ErrUnavailable) || err.Error() != "webhook unavailable: unreachable" {
		t.Fatalf("err = %v, want exactly %q", err, "webhook unavailable: unreachable")
	}
	want := "http://" + addr + "/check?api_key=REDACTED: Post: dial tcp " + addr + ": connect: connection refused"
	if got := fetch.Detail(err); got != want {
		t.Fatalf("detail = %q, want %q", got, want)
	}
}

// SubjectClaims names what a rule reads of subject, so that a chained
// token that lacks a claim is refused rather than passed for want of it.
func TestSubjectClaims(t *testing.T) {
	for _, c := range []struct {
		deny   string
		claims map[string]string
		names  []string
		whole  bool
	}{
		{deny: `has(subject.groups) && "contractor" in subject.groups`, names: []string{"groups"}},
		{deny: `subject["roles"].exists(r, r == "x") || "email" in subject`, names: []string{"email", "roles"}},
		{deny: `subject.sub == "x" && actor.sub == "y"`, names: []string{"sub"}},
		{deny: `client == "x"`, names: []string{}},
		{deny: `size(subject) > 3`, whole: true, names: []string{}},
		{deny: `subject[client] == "x"`, whole: true, names: []string{}},
		{deny: `subject.exists(k, k == "admin")`, whole: true, names: []string{}},
		{claims: map[string]string{"dept": `subject.email.split("@")[1]`}, names: []string{"email"}},
	} {
		spec := workflow.Spec{Name: "w", DenyIf: c.deny, Claims: c.claims}
		if c.deny != "" {
			spec.Message = "no"
		}
		w, err := workflow.Compile(spec)
		if err != nil {
			t.Fatal(err)
		}
		names, whole := w.SubjectClaims()
		if names == nil {
			names = []string{}
		}
		if !reflect.DeepEqual(names, c.names) || whole != c.whole {
			t.Errorf("%s %v: SubjectClaims = %v, %v; want %v, %v", c.deny, c.claims, names, whole, c.names, c.whole)
		}
	}
}

// The identity claims a token carries to the next hop are the IDP's: a
// workflow may not set them.
func TestCarriedClaimsAreReserved(t *testing.T) {
	for _, name := range []string{"groups", "roles", "entitlements", "carried", "Groups"} {
		_, err := workflow.Compile(workflow.Spec{Name: "w", Claims: map[string]string{name: `["admin"]`}})
		if err == nil || !strings.Contains(err.Error(), "claims."+name+`: "`+name+`" is reserved`) {
			t.Errorf("claims.%s: %v", name, err)
		}
	}
}
