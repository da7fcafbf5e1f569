package conformance

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/idtx/idtx/store"
)

// RunKeys checks the store.Keys contract (the signing key set and the
// recorded max token lifetime) against stores made fresh by open.
func RunKeys(t *testing.T, open Opener) {
	ctx := context.Background()
	// Whole seconds: SQLite keeps Unix seconds.
	rec := func(id string, from time.Duration) store.KeyRecord {
		return store.KeyRecord{ID: id, Alg: "ES256", Private: "-----BEGIN PRIVATE KEY-----\n" + id,
			CreatedAt: t0, SignsFrom: t0.Add(from)}
	}
	ids := func(t *testing.T, ks store.Keys) []string {
		t.Helper()
		recs, err := ks.Records(ctx)
		must(t, err)
		var out []string
		for _, r := range recs {
			out = append(out, r.ID)
		}
		slices.Sort(out)
		return out
	}
	t.Run("empty", func(t *testing.T) {
		ks := open(t).Keys()
		if recs, err := ks.Records(ctx); err != nil || len(recs) != 0 {
			t.Fatalf("Records = %v, %v; want none", recs, err)
		}
		if d, err := ks.MaxLifetime(ctx); err != nil || d != 0 {
			t.Fatalf("MaxLifetime = %v, %v; want 0", d, err)
		}
	})
	t.Run("records round trip", func(t *testing.T) {
		ks := open(t).Keys()
		a, b := rec("a", 0), rec("b", time.Hour)
		b.RetireAfter = t0.Add(48 * time.Hour)
		must(t, ks.Update(ctx, func(tx store.KeyTx) error {
			if err := tx.Add(ctx, a); err != nil {
				return err
			}
			return tx.Add(ctx, b)
		}))
		recs, err := ks.Records(ctx)
		must(t, err)
		slices.SortFunc(recs, func(x, y store.KeyRecord) int { return x.SignsFrom.Compare(y.SignsFrom) })
		if len(recs) != 2 {
			t.Fatalf("Records = %+v, want a and b", recs)
		}
		for i, w := range []store.KeyRecord{a, b} {
			g := recs[i]
			if g.ID != w.ID || g.Alg != w.Alg || g.Private != w.Private || !g.CreatedAt.Equal(w.CreatedAt) ||
				!g.SignsFrom.Equal(w.SignsFrom) || !g.RetireAfter.Equal(w.RetireAfter) || g.RetireAfter.IsZero() != w.RetireAfter.IsZero() {
				t.Errorf("record %d = %+v, want %+v", i, g, w)
			}
		}
	})
	t.Run("retire and delete", func(t *testing.T) {
		ks := open(t).Keys()
		must(t, ks.Update(ctx, func(tx store.KeyTx) error {
			for _, r := range []store.KeyRecord{rec("a", 0), rec("b", time.Hour)} {
				if err := tx.Add(ctx, r); err != nil {
					return err
				}
			}
			return nil
		}))
		at := t0.Add(2 * time.Hour)
		must(t, ks.Update(ctx, func(tx store.KeyTx) error { return tx.SetRetireAfter(ctx, "a", at) }))
		recs, err := ks.Records(ctx)
		must(t, err)
		for _, r := range recs {
			if r.ID == "a" && !r.RetireAfter.Equal(at) || r.ID == "b" && !r.RetireAfter.IsZero() {
				t.Errorf("%s retires after %v", r.ID, r.RetireAfter)
			}
		}
		must(t, ks.Update(ctx, func(tx store.KeyTx) error { return tx.Delete(ctx, "a") }))
		want(t, ids(t, ks), []string{"b"})
	})
	t.Run("a failed update changes nothing", func(t *testing.T) {
		ks := open(t).Keys()
		boom := errors.New("boom")
		err := ks.Update(ctx, func(tx store.KeyTx) error {
			if err := tx.Add(ctx, rec("a", 0)); err != nil {
				return err
			}
			if err := tx.SetMaxLifetime(ctx, time.Hour); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Update = %v, want fn's error", err)
		}
		want(t, ids(t, ks), nil)
		if d, err := ks.MaxLifetime(ctx); err != nil || d != 0 {
			t.Fatalf("MaxLifetime = %v, %v after a failed update; want 0", d, err)
		}
	})
	t.Run("max lifetime is never recorded shorter", func(t *testing.T) {
		ks := open(t).Keys()
		must(t, ks.Update(ctx, func(tx store.KeyTx) error { return tx.SetMaxLifetime(ctx, time.Hour) }))
		must(t, ks.Update(ctx, func(tx store.KeyTx) error {
			d, err := tx.MaxLifetime(ctx)
			if err != nil {
				return err
			}
			if d != time.Hour {
				t.Errorf("MaxLifetime in a transaction = %v, want 1h", d)
			}
			return tx.SetMaxLifetime(ctx, 90*time.Minute+time.Millisecond)
		}))
		// A backend may keep whole seconds, rounded up.
		if d, err := ks.MaxLifetime(ctx); err != nil || d < 90*time.Minute+time.Millisecond || d > 90*time.Minute+time.Second {
			t.Fatalf("MaxLifetime = %v, %v; want 1h30m0.001s, or 1h30m1s in whole seconds", d, err)
		}
	})
	// Two replicas finding the key set empty at once make one key: Update
	// is serialized for every handle on the store.
	t.Run("updates are serialized", func(t *testing.T) {
		ks := open(t).Keys()
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Go(func() {
				errs[i] = ks.Update(ctx, func(tx store.KeyTx) error {
					recs, err := tx.Records(ctx)
					if err != nil || len(recs) > 0 {
						return err
					}
					return tx.Add(ctx, rec(string(rune('a'+i)), 0))
				})
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("update %d: %v", i, err)
			}
		}
		if got := ids(t, ks); len(got) != 1 {
			t.Fatalf("keys = %q, want exactly one", got)
		}
	})
}
