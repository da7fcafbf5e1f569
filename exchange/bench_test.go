package exchange_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/golang-jwt/jwt/v5"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/idtx/idtx/exchange"
	"github.com/idtx/idtx/idp"
	"github.com/idtx/idtx/mockidp"
	"github.com/idtx/idtx/oauth"
	"github.com/idtx/idtx/store"
)

// BenchmarkExchange is one whole exchange through the HTTP handler: an
// RS256 subject token from a test IDP, Basic client auth, a consent lookup
// in SQLite, ES256 minting. Target (issue 2): at most 80 µs/op on one core:
//
//	go test -run '^$' -bench Exchange -cpu 1 ./exchange
//
// The registry has no validation cache: every op verifies the subject
// token, as for a token never seen before. BenchmarkExchangeCached is the
// same exchange through the cache.
func BenchmarkExchange(b *testing.B) {
	store, err := store.Open("sqlite:" + filepath.Join(b.TempDir(), "idtx.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	e := newEnvOpts(b, store, nil, func(o *exchange.Options) { o.Registry = uncachedCorp(b) })
	// As `idtx serve` runs (cmd/serve.go sets GOGC 400 unless GOGC is set).
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	body := e.form(e.subject(nil), "audience", "billing-api", "scope", "billing:read").Encode()
	benchExchanges(b, e.handler, body)
}

// BenchmarkExchangeTraces is BenchmarkExchange with traces on, which asks
// the steps for detail evidence (docs/explain.md); compare the two in one
// run to see what explaining every exchange costs.
func BenchmarkExchangeTraces(b *testing.B) {
	store, err := store.Open("sqlite:" + filepath.Join(b.TempDir(), "idtx.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	e := newEnvWith(b, store, nil)
	h := exchange.NewHandler(e.engine, slog.New(slog.NewTextHandler(io.Discard, nil)))
	h.EnableTraces(200, false)
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	body := e.form(e.subject(nil), "audience", "billing-api", "scope", "billing:read").Encode()
	benchExchanges(b, h, body)
}

// BenchmarkExchangeWorkflows is BenchmarkExchange with one CEL deny rule
// and one claims expression on billing-api. Target (issue 9): within
// 10 µs/op of BenchmarkExchange; compare the two in one run:
//
//	go test -run '^$' -bench 'Exchange$|ExchangeWorkflows' -cpu 1 ./exchange
func BenchmarkExchangeWorkflows(b *testing.B) {
	store, err := store.Open("sqlite:" + filepath.Join(b.TempDir(), "idtx.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	// Uncached, as BenchmarkExchange: the difference is the workflows.
	e := newEnvOpts(b, store, withWorkflows("no-interns, tenant", `
  - name: no-interns
    deny_if: 'has(subject.groups) && "interns" in subject.groups'
    message: interns may not call billing
  - name: tenant
    claims: {tenant: 'subject.iss.split("/")[2]'}
`), func(o *exchange.Options) { o.Registry = uncachedCorp(b) })
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	body := e.form(e.subject(nil), "audience", "billing-api", "scope", "billing:read").Encode()
	benchExchanges(b, e.handler, body)
}

// BenchmarkExchangeChained is the second hop of a chain: a token this
// STS issued for orders-api (carrying the user's groups) exchanged for
// billing-api, judged by the same CEL rules as BenchmarkExchangeWorkflows
// on the carried claims. Compare the two in one run:
//
//	go test -run '^$' -bench 'ExchangeWorkflows|ExchangeChained' -cpu 1 ./exchange
func BenchmarkExchangeChained(b *testing.B) {
	st, err := store.Open("sqlite:" + filepath.Join(b.TempDir(), "idtx.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	e := newEnvOpts(b, st, withWorkflows("no-interns, tenant", `
  - name: no-interns
    deny_if: 'has(subject.groups) && "interns" in subject.groups'
    message: interns may not call billing
  - name: tenant
    claims: {tenant: 'subject.sub + "@" + service.name'}
`), func(o *exchange.Options) { o.Registry = uncachedCorp(b) })
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	r := e.post("/token", e.form(e.subject(jwt.MapClaims{"groups": []string{"staff"}}), "audience", "billing-api", "scope", "billing:read"))
	first := r.str("access_token")
	if first == "" {
		b.Fatalf("first hop: %d %v", r.status, r.body)
	}
	body := e.form(first, "subject_token_type", oauth.TokenTypeAccessToken, "audience", "billing-api").Encode()
	benchExchanges(b, e.handler, body)
}

// BenchmarkExchangeCached is one subject token exchanged for three
// services in turn (billing-api with its consent lookup, orders-api,
// narrow-api): after the first op the validation cache answers the
// subject step.
func BenchmarkExchangeCached(b *testing.B) {
	store, err := store.Open("sqlite:" + filepath.Join(b.TempDir(), "idtx.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	e := newEnvWith(b, store, nil)
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	tok := e.subject(nil)
	benchExchanges(b, e.handler,
		e.form(tok, "audience", "billing-api", "scope", "billing:read").Encode(),
		e.form(tok, "audience", "orders-api").Encode(),
		e.form(tok, "audience", "narrow-api", "scope", "narrow:a").Encode())
}

// uncachedCorp is a registry without a validation cache that trusts the
// test IDP corp as the harness configures it.
func uncachedCorp(b *testing.B) *idp.Registry {
	keys, err := idp.StaticKeys(newKeyPair(b, "RS256", rsaKeys()[0]).jwks)
	if err != nil {
		b.Fatal(err)
	}
	v, err := idp.NewJWT(idp.JWTConfig{Name: "corp", Issuer: "https://idp.test", Audiences: []string{"idtx-sts"},
		Algorithms: []string{"RS256"}, ClockSkew: 30 * time.Second, Clock: func() time.Time { return t0 }, Keys: keys})
	if err != nil {
		b.Fatal(err)
	}
	r := idp.NewRegistry()
	if err := r.Add(v); err != nil {
		b.Fatal(err)
	}
	return r
}

// benchExchanges posts the bodies in turn to h's /token as demo-client,
// one per op.
func benchExchanges(b *testing.B, h http.Handler, bodies ...string) {
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		body := bodies[i%len(bodies)]
		i++
		req, _ := http.NewRequest(http.MethodPost, "/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("demo-client", "demo-secret")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
}

// BenchmarkSignaturesOnly is the floor under BenchmarkExchange: the RS256
// verification and ES256 signature every exchange needs, nothing else.
// Compare the two in one run; absolute figures drift on shared machines.
func BenchmarkSignaturesOnly(b *testing.B) {
	e := newEnv(b)
	subject := e.subject(nil)
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"RS256"}), jwt.WithTimeFunc(func() time.Time { return t0 }))
	pub := e.corp.key.Public()
	for b.Loop() {
		if _, err := parser.Parse(subject, func(*jwt.Token) (any, error) { return pub, nil }); err != nil {
			b.Fatal(err)
		}
		if _, err := e.sts.Sign(jwt.MapClaims{"sub": "alice", "exp": t0.Unix()}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkExchangeSAML is one SAML 2.0 exchange through the HTTP handler
// with the mock's configuration: a signed mock-saml assertion (RSA-SHA256)
// for orders-api, ES256 minting. Target (issue 4): at most 300 µs/op on
// one core:
//
//	go test -run '^$' -bench SAML -cpu 1 ./exchange
//
// Each op exchanges a different assertion (1,024 of them, each with its
// own ID, instants, digest and signature), so the round-trip memo in idp
// only ever remembers what all of the IDP's assertions share. Compare it
// with BenchmarkSAMLParseAndVerifyOnly in the same run.
func BenchmarkExchangeSAML(b *testing.B) {
	cfg, err := mockidp.Config()
	if err != nil {
		b.Fatal(err)
	}
	cfg.Issuer = "https://sts.test"
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	clock := func() time.Time { return now }
	engine, err := exchange.Build(context.Background(), cfg, exchange.BuildOptions{Home: b.TempDir(), Store: store.NewMemory(), Clock: clock, CacheSize: -1})
	if err != nil {
		b.Fatal(err)
	}
	h := exchange.NewHandler(engine, slog.New(slog.NewTextHandler(io.Discard, nil)))
	tokens := samlAssertions(b, now)
	bodies := make([]string, len(tokens))
	for i, token := range tokens {
		bodies[i] = url.Values{
			"grant_type": {oauth.GrantTypeTokenExchange}, "subject_token": {token},
			"subject_token_type": {oauth.TokenTypeSAML2}, "audience": {"orders-api"},
		}.Encode()
	}
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	benchExchanges(b, h, bodies...)
}

// BenchmarkSAMLParseAndVerifyOnly is the floor under BenchmarkExchangeSAML
// that the required libraries set: etree parsing the same assertions and
// goxmldsig validating their signatures, nothing else. The issue measured
// it at ~170 µs against its 300 µs budget for the exchange.
func BenchmarkSAMLParseAndVerifyOnly(b *testing.B) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	certs, err := idp.ParseCertificates(mockidp.CertificatePEM())
	if err != nil {
		b.Fatal(err)
	}
	store := &dsig.MemoryX509CertificateStore{Roots: certs}
	tokens := samlAssertions(b, now)
	docs := make([][]byte, len(tokens))
	for i, t := range tokens {
		_, docs[i] = idp.Sniff(t)
	}
	i := 0
	for b.Loop() {
		doc := etree.NewDocument()
		if err := doc.ReadFromBytes(docs[i%len(docs)]); err != nil {
			b.Fatal(err)
		}
		i++
		ctx := dsig.NewDefaultValidationContext(store)
		ctx.Clock = dsig.NewFakeClockAt(now)
		if _, err := ctx.Validate(doc.Root()); err != nil {
			b.Fatal(err)
		}
	}
}

// samlAssertions are 1,024 distinct signed mock-saml assertions for alice,
// issued in the minutes before now.
func samlAssertions(b *testing.B, now time.Time) []string {
	tokens := make([]string, 1024)
	for i := range tokens {
		token, err := mockidp.SAML(mockidp.TokenOptions{Sub: "alice", Now: now.Add(-time.Duration(i) * time.Second)}, 2)
		if err != nil {
			b.Fatal(err)
		}
		tokens[i] = token
	}
	return tokens
}
