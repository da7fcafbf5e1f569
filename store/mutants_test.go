package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// These tests kill mutants of the memory replay cache that the others
// let live: the instant a jti stops being refused, and the instant its
// entry stops counting against the client's bound.

// A jti is refused up to the last nanosecond before its exp, and
// accepted again at exp (RFC 7523 §3: "until it expires").
func TestMemoryReplayCacheRefusesUntilExp(t *testing.T) {
	ctx := context.Background()
	for _, exp := range []time.Time{t0.Add(time.Minute), t0.Add(59500 * time.Millisecond)} {
		now := t0
		c := NewMemoryReplayCache(func() time.Time { return now }, 10)
		if err := c.Use(ctx, "a", "j0", exp); err != nil {
			t.Fatal(err)
		}
		now = exp.Add(-time.Nanosecond)
		if err := c.Use(ctx, "a", "j0", exp.Add(time.Minute)); !errors.Is(err, ErrReplayed) {
			t.Fatalf("j0 (exp %s) replayed 1ns before its exp: %v, want ErrReplayed", exp, err)
		}
		now = exp
		if err := c.Use(ctx, "a", "j0", exp.Add(time.Minute)); err != nil {
			t.Fatalf("j0 (exp %s) at its exp: %v, want accepted", exp, err)
		}
	}
}

// An expired entry stops counting against the client's bound at the first
// use at or after its exp: a client at its bound is not locked out by
// assertions that have expired, whether exp falls on a whole second or
// within one, or beyond the ring (parked and moved on).
func TestMemoryReplayCacheFreesTheBoundAtExp(t *testing.T) {
	ctx := context.Background()
	limited := func(err error) bool { return errors.Is(err, ErrReplayLimit) }
	t.Run("whole second", func(t *testing.T) {
		now := t0
		c := NewMemoryReplayCache(func() time.Time { return now }, 1)
		if err := c.Use(ctx, "a", "j0", t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		now = t0.Add(time.Minute - time.Nanosecond)
		if err := c.Use(ctx, "a", "j1", t0.Add(2*time.Minute)); !limited(err) {
			t.Fatalf("before j0's exp: %v, want the limit", err)
		}
		now = t0.Add(time.Minute)
		if err := c.Use(ctx, "a", "j1", t0.Add(2*time.Minute)); err != nil {
			t.Fatalf("at j0's exp: %v, want accepted", err)
		}
	})
	t.Run("within a second", func(t *testing.T) {
		now := t0
		c := NewMemoryReplayCache(func() time.Time { return now }, 2)
		if err := c.Use(ctx, "a", "j0", t0.Add(60500*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		now = t0.Add(time.Minute) // sweeps second 60: j0 is not yet due
		if err := c.Use(ctx, "a", "x", t0.Add(10*time.Minute)); err != nil {
			t.Fatal(err)
		}
		now = t0.Add(61 * time.Second)
		if err := c.Use(ctx, "a", "y", t0.Add(10*time.Minute)); err != nil {
			t.Fatalf("after j0's exp (60.5s): %v, want accepted", err)
		}
	})
	t.Run("beyond the ring", func(t *testing.T) {
		now := t0
		c := NewMemoryReplayCache(func() time.Time { return now }, 1)
		if err := c.Use(ctx, "a", "long", t0.Add(20*time.Minute)); err != nil {
			t.Fatal(err)
		}
		now = t0.Add(18 * time.Minute) // past the 1024 s ring: parked again
		if err := c.Use(ctx, "a", "long", t0.Add(30*time.Minute)); !errors.Is(err, ErrReplayed) {
			t.Fatalf("at 18m: %v, want ErrReplayed", err)
		}
		now = t0.Add(20 * time.Minute)
		if err := c.Use(ctx, "a", "other", t0.Add(25*time.Minute)); err != nil {
			t.Fatalf("at the long entry's exp: %v, want accepted", err)
		}
	})
}

// Only a postgres:// URL is parsed for a password: a SQLite path that is
// no valid URL is shown as it is.
func TestRedactLeavesSQLitePaths(t *testing.T) {
	for _, in := range []string{"sqlite:/srv/idtx 100%/idtx.db", "/srv/idtx%zz/idtx.db"} {
		if got := Redact(in); got != in {
			t.Errorf("Redact(%q) = %q, want it unchanged", in, got)
		}
	}
}
