package mockidp

import (
	"testing"
	"time"
)

// TestParseFault reads every fault spec and writes it back the same;
// each malformed spec is refused with its reason.
func TestParseFault(t *testing.T) {
	for _, c := range []struct {
		spec string
		want Fault
	}{
		{"unavailable", Fault{Kind: FaultUnavailable, RetryAfter: time.Second}},
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
	for _, c := range []struct{ spec, want string }{
		{"", `fault "": "" is not a fault (faults: unavailable, slow, error, drop, jwks-down, rotate-key)`},
		{"unavailable=500ms", `fault "unavailable=500ms": Retry-After "500ms" is not a duration of at least 1s`},
		{"slow=-1s", `fault "slow=-1s": slow needs a positive duration, such as slow=2s`},
		{"error=", `fault "error=": error needs an OAuth error code, such as error=invalid_grant`},
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
