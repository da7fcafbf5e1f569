package exchange_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/idtx/idtx/store"
)

func metricsText(t testing.TB, h http.Handler) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Body.String()
}

// A client over its rate_limit gets 429 slow_down with Retry-After; only
// authenticated requests spend its budget; a client's own rate_limit
// replaces the top-level one.
func TestRateLimit(t *testing.T) {
	e := newEnvWith(t, store.NewMemory(), func(yaml string, _ map[string][]byte) string {
		yaml = strings.Replace(yaml, "issuer: https://sts.test\n", "issuer: https://sts.test\nrate_limit: {rate: 1/m, burst: 2}\n", 1)
		return strings.Replace(yaml, "    services: [orders-api]\n", "    services: [orders-api]\n    rate_limit: {rate: unlimited}\n", 1)
	})
	tok := e.subject(nil)
	for range 5 { // wrong secrets: refused by the client step, not counted
		expectError(t, e.post("/token", e.form(tok), "demo-client", "wrong"), 401, "invalid_client", "")
	}
	for i := range 2 {
		if r := e.post("/token", e.form(tok)); r.status != 200 {
			t.Fatalf("exchange %d within the burst: %d %v", i, r.status, r.body)
		}
	}
	r := e.post("/token", e.form(tok))
	expectError(t, r, 429, "slow_down", "rate limit: client demo-client exceeded its rate_limit of 1/m (burst 2); retry after 60s")
	if got := r.header.Get("Retry-After"); got != "60" {
		t.Errorf("Retry-After = %q, want 60", got)
	}
	// Another client's budget is its own; restricted-client is unlimited.
	for range 5 {
		if r := e.post("/token", e.form(tok), "restricted-client", "restricted-secret"); r.status != 200 {
			t.Fatalf("unlimited client: %d %v", r.status, r.body)
		}
	}
	e.now = e.now.Add(30 * time.Second) // half a token back: still refused
	r = e.post("/token", e.form(tok))
	expectError(t, r, 429, "slow_down", "retry after 30s")
	e.now = e.now.Add(30 * time.Second)
	if r := e.post("/token", e.form(tok)); r.status != 200 {
		t.Fatalf("after a minute: %d %v", r.status, r.body)
	}
	text := metricsText(t, e.handler)
	for _, want := range []string{
		`idtx_limited_total{limit="rate"} 2`,
		`idtx_exchanges_total{idp="",mode="impersonation",result="slow_down",service="",step="client"} 2`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// holdingStore blocks Missing until released, to hold an exchange in
// flight.
type holdingStore struct {
	store.Store
	entered chan struct{}
	release chan struct{}
}

func (s *holdingStore) Missing(ctx context.Context, idp, user, service string, scopes []string) ([]string, error) {
	s.entered <- struct{}{}
	<-s.release
	return s.Store.Missing(ctx, idp, user, service, scopes)
}

// Beyond max_in_flight exchanges, POST /token answers 503
// temporarily_unavailable with Retry-After at once.
func TestMaxInFlight(t *testing.T) {
	store := &holdingStore{Store: store.NewMemory(), entered: make(chan struct{}), release: make(chan struct{})}
	e := newEnvWith(t, store, func(yaml string, _ map[string][]byte) string {
		return strings.Replace(yaml, "issuer: https://sts.test\n", "issuer: https://sts.test\nmax_in_flight: 1\n", 1)
	})
	tok := e.subject(nil)
	done := make(chan response)
	go func() { done <- e.post("/token", e.form(tok, "audience", "billing-api")) }()
	<-store.entered // the first exchange is at the consent step
	r := e.post("/token", e.form(tok))
	expectError(t, r, 503, "temporarily_unavailable", "max_in_flight: the server is answering 1 exchanges already; retry after 1s")
	if got := r.header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After = %q, want 1", got)
	}
	close(store.release)
	if r := <-done; r.status != 200 {
		t.Fatalf("the exchange in flight: %d %v", r.status, r.body)
	}
	if r := e.post("/token", e.form(tok)); r.status != 200 {
		t.Fatalf("after it left: %d %v", r.status, r.body)
	}
	if text := metricsText(t, e.handler); !strings.Contains(text, `idtx_limited_total{limit="in_flight"} 1`+"\n") {
		t.Errorf("metrics lack the refusal:\n%s", text)
	}
}
