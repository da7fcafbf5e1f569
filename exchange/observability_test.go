package exchange_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/exchange"
	"github.com/idtx/idtx/oauth"
	"github.com/idtx/idtx/store"
)

const observedConfig = `
issuer: https://sts.test
idps:
  - {name: corp, type: jwt, issuer: https://idp.test, jwks_uri: %JWKS%, audiences: [idtx-sts]}
services:
  - {name: billing-api, scopes: {billing:read: {consent: true}}, default_scopes: [billing:read]}
  - {name: orders-api, scopes: {orders:read: {}}, default_scopes: [orders:read]}
clients:
  - {id: demo-client, secret: demo-secret, services: ["*"]}
`

// observed is a server built as idtx serve builds it, over a remote JWKS.
type observed struct {
	handler http.Handler
	jwks    *httptest.Server
	key     *keyPair
	now     time.Time
}

func newObserved(t *testing.T, store store.Store) *observed {
	return newObservedWith(t, store, "")
}

// newObservedWith is newObserved with more top-level config keys.
func newObservedWith(t *testing.T, store store.Store, extra string) *observed {
	t.Helper()
	o := &observed{key: newKeyPair(t, "RS256", rsaKeys()[0]), now: t0}
	o.jwks = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(o.key.jwks) }))
	t.Cleanup(o.jwks.Close)
	cfg, err := config.Parse([]byte(strings.Replace(observedConfig, "%JWKS%", o.jwks.URL, 1)+extra), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	eng, err := exchange.Build(ctx, cfg, exchange.BuildOptions{Home: t.TempDir(), Store: store,
		Clock: func() time.Time { return o.now }, HTTPClient: o.jwks.Client()})
	if err != nil {
		t.Fatal(err)
	}
	o.handler = exchange.NewHandler(eng, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return o
}

func (o *observed) exchange(t *testing.T, token, audience, scope string) response {
	t.Helper()
	form := url.Values{"grant_type": {oauth.GrantTypeTokenExchange}, "subject_token": {token},
		"subject_token_type": {oauth.TokenTypeJWT}, "audience": {audience}, "scope": {scope}}
	req := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("demo-client", "demo-secret")
	rec := httptest.NewRecorder()
	o.handler.ServeHTTP(rec, req)
	r := response{status: rec.Code, header: rec.Header()}
	json.Unmarshal(rec.Body.Bytes(), &r.body)
	return r
}

// /metrics counts exchanges by result, step, service, IDP and mode, times
// each step and the store, and counts cache hits and key fetches.
func TestMetrics(t *testing.T) {
	store := store.NewMemory()
	if err := store.Grant(t.Context(), "corp", "alice", "billing-api", []string{"billing:read"}); err != nil {
		t.Fatal(err)
	}
	o := newObserved(t, store)
	tok := o.key.sign(t, jwt.MapClaims{"iss": "https://idp.test", "sub": "alice", "aud": "idtx-sts", "exp": o.now.Add(time.Hour).Unix()}, nil)
	for _, aud := range []string{"billing-api", "orders-api", "billing-api"} {
		if r := o.exchange(t, tok, aud, ""); r.status != 200 {
			t.Fatalf("%s: %d %v", aud, r.status, r.body)
		}
	}
	if r := o.exchange(t, tok, "orders-api", "billing:read"); r.status != 400 {
		t.Fatalf("a scope of another service: %d %v", r.status, r.body)
	}
	text := metricsText(t, o.handler)
	for _, want := range []string{
		`idtx_exchanges_total{idp="corp",mode="impersonation",result="ok",service="billing-api",step="issue"} 2`,
		`idtx_exchanges_total{idp="corp",mode="impersonation",result="ok",service="orders-api",step="issue"} 1`,
		`idtx_exchanges_total{idp="corp",mode="impersonation",result="invalid_scope",service="orders-api",step="scope"} 1`,
		`idtx_step_duration_seconds_count{step="subject"} 4`,
		`idtx_step_duration_seconds_count{step="issue"} 3`,
		`idtx_step_duration_seconds_count{step="consent"} 3`,
		`idtx_validation_cache_lookups_total{result="hit"} 3`,
		`idtx_validation_cache_lookups_total{result="miss"} 1`,
		`idtx_jwks_fetches_total{idp="corp",result="ok"} 1`,
		`idtx_store_duration_seconds_count{op="missing"} 2`,
		`idtx_exchanges_in_flight 0`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("metrics lack %s", want)
		}
	}
	if t.Failed() {
		t.Log(text)
	}
}

// downStore fails every call, as a database that went away.
type downStore struct{ store.Store }

func (downStore) Ping(context.Context) error { return errors.New("connection refused") }

// pingStore counts the pings readyz sends.
type pingStore struct {
	store.Store
	pings atomic.Int32
	err   error
}

func (p *pingStore) Ping(context.Context) error { p.pings.Add(1); return p.err }

func readyz(t *testing.T, h http.Handler) (int, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("readyz body %q: %v", rec.Body, err)
	}
	return rec.Code, body
}

// /readyz reflects the store and the IDPs' keys; /healthz only says the
// process answers.
func TestReadyz(t *testing.T) {
	o := newObserved(t, store.NewMemory())
	if code, body := readyz(t, o.handler); code != 200 || body["ready"] != true || body["store"] != "ok" || body["idps"] != nil {
		t.Fatalf("ready server: %d %v", code, body)
	}
	o.jwks.Close() // keys fetched once stay in use: still ready
	if code, body := readyz(t, o.handler); code != 200 {
		t.Fatalf("IDP down after a fetch: %d %v", code, body)
	}

	ps := &pingStore{Store: store.NewMemory()}
	o = newObserved(t, ps)
	if code, _ := readyz(t, o.handler); code != 200 || ps.pings.Load() != 1 {
		t.Fatalf("pingable store: %d after %d pings", code, ps.pings.Load())
	}
	ps.err = errors.New("dial tcp: connection refused")
	if code, body := readyz(t, o.handler); code != 503 || body["ready"] != false || body["store"] != "unreachable" {
		t.Fatalf("store that fails its ping: %d %v", code, body)
	}

	o = newObserved(t, downStore{store.NewMemory()})
	if code, body := readyz(t, o.handler); code != 503 || body["store"] != "unreachable" {
		t.Fatalf("store down: %d %v", code, body)
	}

	// An IDP whose keys were never fetched.
	e := newEnvWith(t, store.NewMemory(), func(yaml string, _ map[string][]byte) string {
		return strings.Replace(yaml, "jwks_file: corp.jwks", "jwks_uri: http://127.0.0.1:1/jwks", 1)
	})
	code, body := readyz(t, e.handler)
	idps, _ := body["idps"].(map[string]any)
	if code != 503 || body["store"] != "ok" || !strings.Contains(idps["corp"].(string), "key set not fetched yet") {
		t.Fatalf("IDP never fetched: %d %v", code, body)
	}
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != 200 {
		t.Fatalf("healthz while not ready: %d", rec.Code)
	}
}

// validation_cache_size bounds the cache a configured server builds: with
// room for one identity, a token that another displaced is verified
// again; -1 turns the cache off.
func TestValidationCacheSizeFromConfig(t *testing.T) {
	for _, tc := range []struct {
		extra     string
		hit, miss int
	}{
		{"", 1, 2},
		{"validation_cache_size: 1\n", 0, 3},
		{"validation_cache_size: -1\n", 0, 0},
	} {
		o := newObservedWith(t, store.NewMemory(), tc.extra)
		a := o.key.sign(t, jwt.MapClaims{"iss": "https://idp.test", "sub": "alice", "aud": "idtx-sts", "exp": o.now.Add(time.Hour).Unix()}, nil)
		b := o.key.sign(t, jwt.MapClaims{"iss": "https://idp.test", "sub": "bob", "aud": "idtx-sts", "exp": o.now.Add(time.Hour).Unix()}, nil)
		for _, tok := range []string{a, b, a} {
			if r := o.exchange(t, tok, "orders-api", ""); r.status != 200 {
				t.Fatalf("%q: %d %v", tc.extra, r.status, r.body)
			}
		}
		text := metricsText(t, o.handler)
		for _, want := range []string{
			fmt.Sprintf(`idtx_validation_cache_lookups_total{result="hit"} %d`, tc.hit),
			fmt.Sprintf(`idtx_validation_cache_lookups_total{result="miss"} %d`, tc.miss),
		} {
			if !strings.Contains(text, want+"\n") {
				t.Errorf("%q: metrics lack %s", tc.extra, want)
			}
		}
	}
}
