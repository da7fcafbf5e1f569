package conformance

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/idtx/idtx/store"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// RunReplay checks the store.ReplayCache contract (RFC 7523 §3, item 7:
// a jti is accepted once until its assertion expires) against the caches
// of stores made fresh by open.
func RunReplay(t *testing.T, open Opener) {
	ctx := context.Background()
	cache := func(t *testing.T, now *time.Time, limit int) store.ReplayCache {
		return open(t).Replay(func() time.Time { return *now }, limit)
	}
	t.Run("a jti is accepted once until it expires", func(t *testing.T) {
		now := t0
		c := cache(t, &now, 0)
		must(t, c.Use(ctx, "a", "j0", t0.Add(time.Minute)))
		if err := c.Use(ctx, "a", "j0", t0.Add(time.Minute)); !errors.Is(err, store.ErrReplayed) {
			t.Fatalf("replayed j0: %v, want ErrReplayed", err)
		}
		// The same jti from another client is another assertion.
		must(t, c.Use(ctx, "b", "j0", t0.Add(time.Minute)))
		now = t0.Add(time.Minute - time.Millisecond)
		if err := c.Use(ctx, "a", "j0", t0.Add(2*time.Minute)); !errors.Is(err, store.ErrReplayed) {
			t.Fatalf("j0 replayed 1ms before its exp: %v, want ErrReplayed", err)
		}
		now = t0.Add(time.Minute)
		must(t, c.Use(ctx, "a", "j0", t0.Add(2*time.Minute)))
	})
	// An assertion stops counting against its client's bound at its exp:
	// a client at the bound is not locked out by expired assertions.
	t.Run("the bound is freed at exp", func(t *testing.T) {
		now := t0
		c := cache(t, &now, 1)
		must(t, c.Use(ctx, "a", "j0", t0.Add(time.Minute)))
		now = t0.Add(time.Minute - time.Millisecond)
		if err := c.Use(ctx, "a", "j1", t0.Add(2*time.Minute)); !errors.Is(err, store.ErrReplayLimit) {
			t.Fatalf("j1 before j0's exp: %v, want ErrReplayLimit", err)
		}
		now = t0.Add(time.Minute)
		must(t, c.Use(ctx, "a", "j1", t0.Add(2*time.Minute)))
	})
	t.Run("each client has its own bound", func(t *testing.T) {
		now := t0
		c := cache(t, &now, 3)
		use := func(client, jti string, exp time.Duration) error { return c.Use(ctx, client, jti, t0.Add(exp)) }
		for i, exp := range []time.Duration{3 * time.Minute, time.Minute, 2 * time.Minute} {
			must(t, use("a", fmt.Sprint("j", i), exp))
		}
		err := use("a", "j3", time.Minute)
		var limit *store.ReplayLimitError
		if !errors.Is(err, store.ErrReplayLimit) || !errors.As(err, &limit) || limit.Limit != 3 ||
			err.Error() != "client a has 3 unexpired assertions (the limit)" {
			t.Errorf("a's fourth: %v, want the limit", err)
		}
		if err := use("b", "j0", time.Minute); err != nil {
			t.Errorf("b is locked out by a: %v", err)
		}
		if err := use("a", "j0", 3*time.Minute); !errors.Is(err, store.ErrReplayed) {
			t.Errorf("replayed j0 at the bound: %v, want ErrReplayed", err)
		}
		now = t0.Add(90 * time.Second) // j1 (exp 1m) has expired
		if err := use("a", "j3", 4*time.Minute); err != nil {
			t.Errorf("after j1 expired: %v", err)
		}
		if err := use("a", "j2", 4*time.Minute); !errors.Is(err, store.ErrReplayed) {
			t.Errorf("j2 (exp 2m) is forgotten early: %v", err)
		}
		now = t0.Add(10 * time.Minute)
		if err := use("a", "j0", 11*time.Minute); err != nil {
			t.Errorf("after all expired: %v", err)
		}
	})
}
