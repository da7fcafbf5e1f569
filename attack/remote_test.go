package attack

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// Webhooks and introspection endpoints are remote parties the STS trusts
// with a verdict: what they send is read by one strict decoder, and their
// configured URLs never reach a client.

// remoteEnv is the fixture plus a service hook-api guarded by the workflow
// hook (a webhook at hookURL) and an introspection IDP internal at
// introspectURL for tokens starting int_, with traces on.
func remoteEnv(t *testing.T, hookURL, introspectURL string) *env {
	t.Helper()
	f := newFixtureMore(t, fixtureMore{
		top: "traces: 50\nworkflows:\n  - name: hook\n    webhook: " + hookURL + "\n    secret: hook-s3cret-hook-s3cret\n    timeout: 5s\n",
		idps: "  - name: internal\n    type: introspection\n    issuer: https://internal.test\n    introspection_endpoint: " + introspectURL +
			"\n    client_id: idtx\n    client_secret: intro-s3cret\n    token_prefix: int_\n    audiences: [" + stsAudience + "]\n",
	})
	data, err := os.ReadFile(f.config)
	if err != nil {
		t.Fatal(err)
	}
	svc := "services:\n  - name: hook-api\n    scopes: {hook:read: {}}\n    default_scopes: [hook:read]\n    token_lifetime: 5m\n    workflows: [hook]\n"
	data = []byte(strings.Replace(string(data), "services:\n", svc, 1))
	if err := os.WriteFile(f.config, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return &env{fixture: f, srv: startServer(t, serveOptions{config: f.config})}
}

// closedPort is a loopback address nobody listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestWebhookDenyIsNeverAllow: a webhook that denies and then, after an
// object inside an array, says "ALLOW": true. encoding/json reads the last
// of the two as allow; the STS refuses the answer.
func TestWebhookDenyIsNeverAllow(t *testing.T) {
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"allow": false, "reason": "x", "c": [{"a":1}], "ALLOW": true, "y": ""}`))
	}))
	t.Cleanup(hook.Close)
	e := remoteEnv(t, hook.URL+"/check", "http://"+closedPort(t)+"/introspect")
	r := e.srv.exchange(t, exchangeForm(e.corp.sign(t, claims(nil), nil), "audience", "hook-api"))
	const want = `workflow hook: webhook unavailable: answer has the member "ALLOW" twice (names compare without case); try again later`
	if r.status != http.StatusServiceUnavailable || r.str("error") != "temporarily_unavailable" || r.str("error_description") != want || r.str("access_token") != "" {
		t.Fatalf("got %d %s\nwant 503 temporarily_unavailable %q", r.status, r.raw, want)
	}
}

// TestNoConfiguredURLReachesClient: a webhook and an introspection
// endpoint whose URLs carry ?api_key=SECRET, on a port nobody listens on.
// The answer and the trace name the workflow or the IDP, never the URL;
// the server's log has the URL with the query value redacted.
func TestNoConfiguredURLReachesClient(t *testing.T) {
	const secret = "SECRET-4f1c9a"
	hookURL := "http://" + closedPort(t) + "/check?api_key=" + secret
	introspectURL := "http://" + closedPort(t) + "/introspect?api_key=" + secret
	e := remoteEnv(t, hookURL, introspectURL)
	for _, tc := range []struct {
		name, url, description string
		form                   func() *response
	}{
		{"webhook", hookURL, "workflow hook: webhook unavailable: unreachable; try again later", func() *response {
			return e.srv.exchange(t, exchangeForm(e.corp.sign(t, claims(nil), nil), "audience", "hook-api"))
		}},
		{"introspection", introspectURL, "subject_token: idp unavailable: introspection endpoint of IDP internal is unreachable", func() *response {
			return e.srv.exchange(t, exchangeForm("int_opaque-token", "subject_token_type", tokenTypeAccessToken))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.form()
			if r.status != http.StatusServiceUnavailable || r.str("error") != "temporarily_unavailable" || r.str("error_description") != tc.description {
				t.Fatalf("got %d %s\nwant 503 temporarily_unavailable %q", r.status, r.raw, tc.description)
			}
			u, err := url.Parse(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			host := u.Host // 127.0.0.1:PORT
			id := r.str("trace_id")
			if id == "" {
				t.Fatalf("no trace_id in %s", r.raw)
			}
			tr := e.srv.do(t, &request{method: http.MethodGet, path: "/traces/" + id})
			if tr.status != http.StatusOK || !strings.Contains(string(tr.raw), tc.description) {
				t.Fatalf("trace %s: %d %s", id, tr.status, tr.raw)
			}
			for _, got := range []string{string(r.raw), string(tr.raw)} {
				if strings.Contains(got, secret) || strings.Contains(got, host) || strings.Contains(got, "api_key") {
					t.Errorf("%s names the URL %s:\n%s", tc.name, tc.url, got)
				}
			}
			redacted := strings.Replace(tc.url, secret, "REDACTED", 1)
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(e.srv.stderr.String(), `"detail":"`+redacted+`: Post: dial tcp `+host+`: connect: connection refused"`) {
				if time.Now().After(deadline) {
					t.Fatalf("the server's log has no detail naming %s:\n%s", redacted, e.srv.stderr)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if log := e.srv.stderr.String(); strings.Contains(log, secret) {
				t.Errorf("the server's log holds the query value:\n%s", log)
			}
		})
	}
}
