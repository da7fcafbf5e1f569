package exchange_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/idtx/idtx/exchange"
)

// The STS signs with a key only under the one algorithm it suits, and an
// RSA key only of 2048 bits or more (RFC 8725 §3.5, §3.1). Mutation
// testing found that dropping any of these checks but the P-256 one
// passed every test.
func TestNewSignerKeyMustSuitAlg(t *testing.T) {
	must := func(k crypto.Signer, err error) crypto.Signer {
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	p256 := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	p384 := must(ecdsa.GenerateKey(elliptic.P384(), rand.Reader))
	rsa2048 := must(rsa.GenerateKey(rand.Reader, 2048))
	rsa1024 := must(rsa.GenerateKey(rand.Reader, 1024))
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		alg  string
		key  crypto.Signer
		want string // "" for accepted
	}{
		{"P-256 ES256", "ES256", p256, ""},
		{"P-384 ES256", "ES256", p384, "signing: a P-256 key signs ES256 only, not ES256"},
		{"P-256 RS256", "RS256", p256, "signing: a P-256 key signs ES256 only, not RS256"},
		{"RSA-2048 RS256", "RS256", rsa2048, ""},
		{"RSA-2048 ES256", "ES256", rsa2048, "signing: an RSA key (2048 bits or more) signs RS256 only, not ES256"},
		{"RSA-2048 PS256", "PS256", rsa2048, "signing: an RSA key (2048 bits or more) signs RS256 only, not PS256"},
		{"RSA-1024 RS256", "RS256", rsa1024, "signing: an RSA key (2048 bits or more) signs RS256 only, not RS256"},
		{"Ed25519 EdDSA", "EdDSA", ed, ""},
		{"Ed25519 ES256", "ES256", ed, "signing: an Ed25519 key signs EdDSA only, not ES256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := exchange.NewSigner(tc.alg, tc.key)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("NewSigner: %v, want accepted", err)
			case tc.want != "" && (err == nil || err.Error() != tc.want):
				t.Fatalf("NewSigner = %v, %v; want %q", s, err, tc.want)
			}
		})
	}
}

// A request body is read in one allocation of its declared length only
// up to MaxBodyBytes: a Content-Length of 256 MiB over a short body does
// not make the server allocate 256 MiB.
func TestReadRequestDoesNotAllocateTheDeclaredLength(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader("a=b"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.ContentLength = 256 << 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	req := exchange.ReadRequest(httptest.NewRecorder(), r)
	runtime.ReadMemStats(&after)
	if req.ParseErr != nil || req.Form.Get("a") != "b" {
		t.Fatalf("ReadRequest: %v, form %v", req.ParseErr, req.Form)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 64<<20 {
		t.Fatalf("ReadRequest allocated %d bytes for a declared 256 MiB", n)
	}
}
