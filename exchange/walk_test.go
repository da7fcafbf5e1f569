package exchange_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/exchange"
	"github.com/idtx/idtx/idp"
	"github.com/idtx/idtx/oauth"
	"github.com/idtx/idtx/store"
)

// Walking step by step records what Run records, one entry per Next.
func TestWalkMatchesRun(t *testing.T) {
	e := newEnv(t)
	req := &exchange.Request{Form: e.form(e.subject(nil)), Basic: &exchange.BasicAuth{ID: "demo-client", Secret: "demo-secret"}}
	w := e.engine.Walk(t.Context(), req)
	if !slices.Equal(w.Steps(), []string{"request", "client", "target", "subject", "actor", "scope", "consent", "workflows", "issue"}) {
		t.Fatalf("steps %v", w.Steps())
	}
	for i := 1; !w.Done(); i++ {
		if res, oerr := w.Result(); res != nil || oerr != nil {
			t.Fatalf("result before done: %v %v", res, oerr)
		}
		entry, ok := w.Next()
		if !ok || entry.N != i || entry.Step != w.Steps()[i-1] || len(w.Trace()) != i {
			t.Fatalf("step %d: %+v %v", i, entry, ok)
		}
	}
	if _, ok := w.Next(); ok {
		t.Fatal("Next ran a step after the walk was done")
	}
	res, oerr := w.Result()
	if oerr != nil || res == nil || w.State().Result != res {
		t.Fatalf("result %v %v", res, oerr)
	}
	_, trace, _ := e.engine.Run(t.Context(), req)
	if len(trace) != len(w.Trace()) {
		t.Fatalf("Run trace %d entries, walk %d", len(trace), len(w.Trace()))
	}
	for i := range trace {
		if trace[i].Step != w.Trace()[i].Step || trace[i].Status != w.Trace()[i].Status || trace[i].N != i+1 {
			t.Fatalf("entry %d: run %+v walk %+v", i, trace[i], w.Trace()[i])
		}
	}
}

// A walk stops at the first failure, with the OAuth error of that step.
func TestWalkStopsAtFailure(t *testing.T) {
	e := newEnv(t)
	req := &exchange.Request{Form: e.form(e.subject(nil), "audience", "nope"), Basic: &exchange.BasicAuth{ID: "demo-client", Secret: "demo-secret"}}
	w := e.engine.Walk(t.Context(), req)
	for !w.Done() {
		w.Next()
	}
	last := w.Trace()[len(w.Trace())-1]
	_, oerr := w.Result()
	if last.Step != exchange.StepTarget || last.Status != exchange.Fail || oerr == nil || oerr.Code != oauth.CodeInvalidTarget || last.Err != oerr {
		t.Fatalf("last %+v, error %v", last, oerr)
	}
}

// The underlying idp error survives into the outcome: an untrusted issuer
// and a bad signature both answer invalid_request, but the trace says which.
func TestOutcomeCategory(t *testing.T) {
	e := newEnv(t)
	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	forged := newKeyPair(t, "ES256", stranger)
	for _, tc := range []struct {
		name, token, category string
		is                    error
	}{
		{"untrusted issuer", e.subject(jwt.MapClaims{"iss": "https://evil.test"}), exchange.CategoryUntrustedIssuer, idp.ErrUntrusted},
		{"bad signature", forged.sign(t, e.claims(nil), map[string]any{"alg": "RS256"}), exchange.CategoryInvalidToken, idp.ErrInvalid},
		{"signed by another key", e.other.sign(t, e.claims(nil), nil), exchange.CategoryInvalidToken, idp.ErrInvalid},
		{"not a token", "not-a-jwt", exchange.CategoryMalformedToken, idp.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := &exchange.Request{Form: e.form(tc.token), Basic: &exchange.BasicAuth{ID: "demo-client", Secret: "demo-secret"}}
			_, trace, oerr := e.engine.Run(t.Context(), req)
			last := trace[len(trace)-1]
			if oerr == nil || oerr.Code != oauth.CodeInvalidRequest || last.Step != exchange.StepSubject {
				t.Fatalf("got %v at %s", oerr, last.Step)
			}
			if last.Category != tc.category || !errors.Is(last.Cause, tc.is) {
				t.Fatalf("category %q cause %v, want %q wrapping %v", last.Category, last.Cause, tc.category, tc.is)
			}
		})
	}
}

// Building an engine changes nothing it is given: the same registry backs
// a second engine, and a signer made in memory writes no file.
func TestNewEngineLeavesItsInputs(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("IDTX_HOME", dir)
	cfg, err := config.Parse([]byte("issuer: https://sts.test\nservices: [{name: a, scopes: {x: {}}}]\nclients: [{id: c, secret: s, services: [a]}]\n"), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := idp.NewRegistry()
	for i := range 2 {
		signer, err := exchange.NewEphemeralSigner("ES256")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := exchange.NewEngine(cfg, exchange.Options{Registry: reg, Store: store.NewMemory(), Signer: signer}); err != nil {
			t.Fatalf("engine %d: %v", i, err)
		}
	}
	for _, alg := range []string{"RS256", "EdDSA"} {
		if s, err := exchange.NewEphemeralSigner(alg); err != nil || s.Alg() != alg {
			t.Fatalf("%s: %v", alg, err)
		}
	}
	if _, err := exchange.NewEphemeralSigner("HS256"); err == nil {
		t.Fatal("HS256 signer made")
	}
	if _, err := exchange.Build(context.Background(), cfg, exchange.BuildOptions{Store: store.NewMemory(), Signer: mustSigner(t)}); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Fatalf("building wrote %v into %s", entries, filepath.Base(dir))
	}
}

func mustSigner(t *testing.T) *exchange.Signer {
	s, err := exchange.NewEphemeralSigner("ES256")
	if err != nil {
		t.Fatal(err)
	}
	return s
}
