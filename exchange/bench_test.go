package exchange_test

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/idtx/idtx/consent"
)

// BenchmarkExchange is one whole exchange through the HTTP handler: an
// RS256 subject token from a test IDP, Basic client auth, a consent lookup
// in SQLite, ES256 minting. Target (issue 2): at most 80 µs/op on one core:
//
//	go test -run '^$' -bench Exchange -cpu 1 ./exchange
func BenchmarkExchange(b *testing.B) {
	store, err := consent.OpenSQLite(filepath.Join(b.TempDir(), "idtx.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	e := newEnvWith(b, store, nil)
	// As `idtx serve` runs (cmd/serve.go sets GOGC 400 unless GOGC is set).
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	body := e.form(e.subject(nil), "audience", "billing-api", "scope", "billing:read").Encode()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodPost, "/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("demo-client", "demo-secret")
		rec := httptest.NewRecorder()
		e.handler.ServeHTTP(rec, req)
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
