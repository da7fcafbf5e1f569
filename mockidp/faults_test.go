package mockidp

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestParseFault reads every fault spec and writes it back the same;
// each malformed spec is refused with its reason.
func TestParseFault(t *testing.T) {
	for _, c := range []struct {
		spec string
		want Fault
	}{
		{"unavailable=1s", Fault{Kind: FaultUnavailable, RetryAfter: time.Second}},
		{"unavailable=3600s,times=1", Fault{Kind: FaultUnavailable, RetryAfter: time.Hour, Times: 1}},
		{"slow=1m0s", Fault{Kind: FaultSlow, Delay: time.Minute}},
		{"error=slow_down", Fault{Kind: FaultError, Error: "slow_down"}},
		{"unavailable=30s,times=2", Fault{Kind: FaultUnavailable, RetryAfter: 30 * time.Second, Times: 2}},
		{"slow=1.5s", Fault{Kind: FaultSlow, Delay: 1500 * time.Millisecond}},
		{"error=invalid_grant,times=1", Fault{Kind: FaultError, Error: "invalid_grant", Times: 1}},
		{"drop", Fault{Kind: FaultDrop}},
		{"jwks-down,times=3", Fault{Kind: FaultJWKSDown, Times: 3}},
		{"rotate-key", Fault{Kind: FaultRotateKey}},
	} {
		got, err := ParseFault(c.spec)
		if err != nil || got != c.want || got.String() != c.spec {
			t.Errorf("ParseFault(%q) = %+v (%q), %v; want %+v", c.spec, got, got.String(), err, c.want)
		}
	}
	const codes = "invalid_request, invalid_client, invalid_grant, unauthorized_client, unsupported_grant_type, invalid_scope, invalid_target, consent_required, temporarily_unavailable, server_error, slow_down"
	for _, c := range []struct{ spec, want string }{
		{"", `fault "": "" is not a fault (faults: unavailable, slow, error, drop, jwks-down, rotate-key)`},
		{"unavailable=500ms", `fault "unavailable=500ms": Retry-After "500ms" is not whole seconds from 1s to 1h`},
		{"unavailable=1.5s", `fault "unavailable=1.5s": Retry-After "1.5s" is not whole seconds from 1s to 1h`},
		{"unavailable=1h0m1s", `fault "unavailable=1h0m1s": Retry-After "1h0m1s" is not whole seconds from 1s to 1h`},
		{"slow=-1s", `fault "slow=-1s": slow needs a positive duration of at most 1m, such as slow=2s`},
		{"slow=1000000h", `fault "slow=1000000h": slow needs a positive duration of at most 1m, such as slow=2s`},
		{"slow=1m1s", `fault "slow=1m1s": slow needs a positive duration of at most 1m, such as slow=2s`},
		{"error=", `fault "error=": error needs an OAuth error code the token endpoint answers (` + codes + `)`},
		{"error=access_denied", `fault "error=access_denied": error needs an OAuth error code the token endpoint answers (` + codes + `)`},
		{"rotate-key=now", `fault "rotate-key=now": rotate-key takes no value`},
		{"drop,times=x", `fault "drop,times=x": after the comma only times=N (N >= 1) may follow`},
		{"drop,count=2", `fault "drop,count=2": after the comma only times=N (N >= 1) may follow`},
	} {
		if _, err := ParseFault(c.spec); err == nil || err.Error() != c.want {
			t.Errorf("ParseFault(%q): %v\nwant %s", c.spec, err, c.want)
		}
	}
}

// TestFaultsHit: no fault costs nothing (nil); a fault with times=N hits
// N requests, and stays in force until the last of them is done.
func TestFaultsHit(t *testing.T) {
	m, err := NewIDP(nil)
	if err != nil {
		t.Fatal(err)
	}
	f := m.Faults()
	if h := f.Hit(); h != nil {
		t.Fatalf("no fault set: Hit() = %+v", h)
	}
	f.Set(Fault{Kind: FaultJWKSDown, Times: 1}, Fault{Kind: FaultSlow, Delay: time.Second})
	h := f.Hit()
	if h == nil || h.Delay != time.Second || len(h.Notes) != 2 || !f.jwksDown() {
		t.Fatalf("Hit() = %+v, jwks down %v", h, f.jwksDown())
	}
	if got := f.List(); len(got) != 1 || got[0].Kind != FaultSlow {
		t.Fatalf("List() while the last jwks-down request is in flight = %+v", got)
	}
	h.Done()
	if f.jwksDown() {
		t.Fatal("jwks-down lasts past its one request")
	}
	if h := f.Hit(); h == nil || len(h.Notes) != 1 {
		t.Fatalf("slow until cleared: Hit() = %+v", h)
	}
	f.Clear()
	if h := f.Hit(); h != nil {
		t.Fatalf("after Clear: Hit() = %+v", h)
	}
}

// TestFaultString: a fault prints its value even when it is the default,
// so that Go, traces and GET /mock/faults show one form.
func TestFaultString(t *testing.T) {
	f, err := ParseFault("unavailable,times=1")
	if err != nil || f.String() != "unavailable=1s,times=1" {
		t.Fatalf("ParseFault(unavailable,times=1) = %q, %v; want unavailable=1s,times=1", f, err)
	}
}

// TestFaultsBound: at most MaxFaults at once, however they are set.
func TestFaultsBound(t *testing.T) {
	specs := make([]string, MaxFaults+1)
	for i := range specs {
		specs[i] = "drop"
	}
	if _, err := ParseFaults(specs); !errors.Is(err, ErrTooManyFaults) || err.Error() != "too many faults: 17 given, at most 16 at once" {
		t.Fatalf("ParseFaults(17 specs): %v", err)
	}
	m, err := NewIDP(nil)
	if err != nil {
		t.Fatal(err)
	}
	faults, err := ParseFaults(specs[:MaxFaults-1])
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Faults().Set(faults...); err != nil {
		t.Fatal(err)
	}
	if err := m.Faults().Set(Fault{Kind: FaultDrop}, Fault{Kind: FaultRotateKey}); !errors.Is(err, ErrTooManyFaults) ||
		err.Error() != "too many faults: 15 set, 2 more asked, at most 16 at once" {
		t.Fatalf("Set past the bound: %v", err)
	}
	if n := len(m.Faults().List()); n != MaxFaults-1 {
		t.Fatalf("a refused Set added faults: %d set", n)
	}
	if m.KeyID() != m.fixture.kid {
		t.Fatal("a refused Set rotated the key")
	}
	if err := m.Faults().Set(Fault{Kind: FaultDrop}); err != nil {
		t.Fatalf("the 16th fault: %v", err)
	}
}

// TestFaultsPrecedence: of unavailable, error and drop the oldest
// answers; the others take no effect, so they are neither in the notes
// nor counted; slow takes effect with any of them.
func TestFaultsPrecedence(t *testing.T) {
	m, err := NewIDP(nil)
	if err != nil {
		t.Fatal(err)
	}
	f := m.Faults()
	f.Set(Fault{Kind: FaultUnavailable, RetryAfter: 2 * time.Second, Times: 1},
		Fault{Kind: FaultError, Error: "invalid_grant", Times: 1},
		Fault{Kind: FaultSlow, Delay: time.Second, Times: 2},
		Fault{Kind: FaultJWKSDown, Times: 1})
	h := f.Hit()
	if h == nil || h.Error == nil || h.Error.Code != "temporarily_unavailable" || h.Delay != time.Second ||
		!slices.Equal(h.Notes, []string{"unavailable=2s,times=1", "slow=1s,times=2"}) {
		t.Fatalf("first request: %+v", h)
	}
	h.Done()
	if got := fmt.Sprint(f.List()); got != "[error=invalid_grant,times=1 slow=1s,times=1 jwks-down,times=1]" {
		t.Fatalf("after the first request: %s", got)
	}
	h = f.Hit()
	if h == nil || h.Error == nil || h.Error.Code != "invalid_grant" || h.Drop ||
		!slices.Equal(h.Notes, []string{"error=invalid_grant,times=1", "slow=1s,times=2"}) {
		t.Fatalf("second request: %+v", h)
	}
	h.Done()
	h = f.Hit()
	if h == nil || h.Error != nil || h.Delay != 0 || !slices.Equal(h.Notes, []string{"jwks-down,times=1: GET /mock/jwks answers 503"}) {
		t.Fatalf("third request: %+v", h)
	}
	h.Done()
	if got := f.List(); len(got) != 0 {
		t.Fatalf("after the third request: %v", got)
	}
	// drop set after an error: the error, older, answers.
	f.Set(Fault{Kind: FaultError, Error: "server_error", Times: 1}, Fault{Kind: FaultDrop, Times: 1})
	if h := f.Hit(); h == nil || h.Drop || h.Error == nil || h.Error.Status != 500 || len(h.Notes) != 1 {
		t.Fatalf("error then drop: %+v", h)
	} else {
		h.Done()
	}
	if h := f.Hit(); h == nil || !h.Drop || h.Error != nil {
		t.Fatalf("then drop: %+v", h)
	}
	f.Clear()
	// slow faults add up to MaxDelay at most.
	f.Set(Fault{Kind: FaultSlow, Delay: 40 * time.Second}, Fault{Kind: FaultSlow, Delay: 40 * time.Second})
	if h := f.Hit(); h == nil || h.Delay != MaxDelay || len(h.Notes) != 2 {
		t.Fatalf("two slow=40s: %+v", h)
	}
}

// TestRotateKeyEnds: when rotate-key faults end, used up or cleared, the
// mock IDP signs with its fixture key and publishes only it, as at start.
func TestRotateKeyEnds(t *testing.T) {
	m, err := NewIDP(nil)
	if err != nil {
		t.Fatal(err)
	}
	fixtureKID, fixtureJWKS := m.KeyID(), string(m.state.Load().jwks)
	atFixture := func(when string) {
		t.Helper()
		st := m.state.Load()
		if st.kid != fixtureKID || string(st.jwks) != fixtureJWKS || !slices.Equal(st.order, []string{fixtureKID}) || st.signer != m.fixture.signer {
			t.Fatalf("%s: signs with %s, publishes %v; want the fixture key %s only", when, st.kid, st.order, fixtureKID)
		}
	}
	f := m.Faults()
	// Used up.
	f.Set(Fault{Kind: FaultRotateKey, Times: 1})
	rotated := m.KeyID()
	if rotated == fixtureKID || len(m.state.Load().order) != 2 {
		t.Fatalf("rotated: signs with %s, publishes %v", rotated, m.state.Load().order)
	}
	gen := m.state.Load().gen
	h := f.Hit()
	h.Done()
	atFixture("rotate-key,times=1 used up")
	if m.state.Load().gen <= gen {
		t.Fatal("back to the fixture key, the generation did not change: the STS would keep identities of the rotated key")
	}
	tok, err := m.JWT(TokenOptions{Sub: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if kid := jwtKID(t, tok); kid != fixtureKID {
		t.Fatalf("after the rotation a token has kid %s, want the fixture's %s", kid, fixtureKID)
	}
	// Two rotations: ending the newer signs with the older; clearing
	// ends both.
	f.Set(Fault{Kind: FaultRotateKey}, Fault{Kind: FaultRotateKey, Times: 1})
	first := m.state.Load().order[1]
	if n := len(m.state.Load().order); n != 3 {
		t.Fatalf("two rotations publish %d keys, want 3", n)
	}
	f.Hit().Done()
	if st := m.state.Load(); st.kid != first || !slices.Equal(st.order, []string{fixtureKID, first}) {
		t.Fatalf("after the newer rotation ended: signs with %s, publishes %v; want %s and [%s %s]", st.kid, st.order, first, fixtureKID, first)
	}
	f.Clear()
	atFixture("cleared")
}

func jwtKID(t *testing.T, tok string) string {
	t.Helper()
	p, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := p.Header["kid"].(string)
	return kid
}
