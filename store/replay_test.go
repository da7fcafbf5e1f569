package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// The replay cache bounds each client on its own and evicts entries whose
// exp has passed, oldest first.
func TestMemoryReplayCache(t *testing.T) {
	now := t0
	c := NewMemoryReplayCache(func() time.Time { return now }, 3)
	ctx := context.Background()
	use := func(client, jti string, exp time.Duration) error { return c.Use(ctx, client, jti, t0.Add(exp)) }
	for i, exp := range []time.Duration{3 * time.Minute, time.Minute, 2 * time.Minute} {
		if err := use("a", fmt.Sprint("j", i), exp); err != nil {
			t.Fatal(err)
		}
	}
	err := use("a", "j3", time.Minute)
	var limit *ReplayLimitError
	if !errors.Is(err, ErrReplayLimit) || !errors.As(err, &limit) || err.Error() != "client a has 3 unexpired assertions (the limit)" {
		t.Errorf("a's fourth: %v, want the limit", err)
	}
	if err := use("b", "j0", time.Minute); err != nil {
		t.Errorf("b is locked out by a: %v", err)
	}
	if err := use("a", "j0", 3*time.Minute); !errors.Is(err, ErrReplayed) {
		t.Errorf("replayed j0: %v", err)
	}
	now = t0.Add(90 * time.Second) // j1 (exp 1m) has expired
	if err := use("a", "j3", 4*time.Minute); err != nil {
		t.Errorf("after j1 expired: %v", err)
	}
	if n := c.Len("a"); n != 3 {
		t.Errorf("a holds %d, want 3 (j0, j2, j3)", n)
	}
	if err := use("a", "j2", 4*time.Minute); !errors.Is(err, ErrReplayed) {
		t.Errorf("j2 (exp 2m) is forgotten early: %v", err)
	}
	now = t0.Add(10 * time.Minute)
	if err := use("a", "j0", 11*time.Minute); err != nil {
		t.Errorf("after all expired: %v", err)
	}
	if n := c.Len("a"); n != 1 {
		t.Errorf("a holds %d after every entry expired, want 1", n)
	}
}

// The memory replay cache sweeps one-second buckets: an entry that lives
// longer than the ring is parked, never forgotten early, and a client idle
// for longer than the ring has everything expired swept at its next use.
func TestMemoryReplayCacheRing(t *testing.T) {
	ctx := context.Background()
	now := t0
	c := NewMemoryReplayCache(func() time.Time { return now }, 100)
	if err := c.Use(ctx, "a", "long", t0.Add(20*time.Minute)); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if err := c.Use(ctx, "a", fmt.Sprint("short", i), t0.Add(time.Duration(i)*time.Second+500*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
	}
	now = t0.Add(18 * time.Minute) // past the 1024 s ring, before the long entry's end
	if err := c.Use(ctx, "a", "long", t0.Add(30*time.Minute)); !errors.Is(err, ErrReplayed) {
		t.Fatalf("a jti kept for 20m was forgotten at 18m: %v", err)
	}
	if n := c.Len("a"); n != 1 {
		t.Fatalf("after an idle 18m, %d entries held; want only the long one", n)
	}
	now = t0.Add(20*time.Minute + time.Second)
	if err := c.Use(ctx, "a", "long", t0.Add(25*time.Minute)); err != nil {
		t.Fatalf("a jti past its time is refused: %v", err)
	}
}
