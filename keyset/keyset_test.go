package keyset_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idtx/idtx/keyset"
	"github.com/idtx/idtx/store"
	"github.com/idtx/idtx/store/pgtest"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func backends(t *testing.T) map[string]func(t *testing.T) store.Keys {
	open := func(t *testing.T, url string) store.Keys {
		s, err := store.Open(url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s.Keys()
	}
	return map[string]func(t *testing.T) store.Keys{
		"memory":   func(t *testing.T) store.Keys { return open(t, store.MemoryURL) },
		"sqlite":   func(t *testing.T) store.Keys { return open(t, "sqlite:"+filepath.Join(t.TempDir(), "idtx.db")) },
		"postgres": func(t *testing.T) store.Keys { return open(t, pgtest.DSN(t)) },
	}
}

// The lifecycle on every backend: a first key, a rotation that publishes
// the new key before it signs and the old one until its last token
// expires, then the old one's deletion at the next rotation.
func TestLifecycle(t *testing.T) {
	kek, err := keyset.ParseKEK("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	if err != nil {
		t.Fatal(err)
	}
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := open(t)
			p := keyset.Policy{Alg: "ES256", MaxTokenLifetime: time.Hour, KEK: kek}
			if err := keyset.Ensure(ctx, s, t0, p); err != nil {
				t.Fatal(err)
			}
			keys, err := keyset.Load(ctx, s, kek)
			if err != nil || len(keys) != 1 {
				t.Fatalf("after Ensure: %d keys, %v", len(keys), err)
			}
			first := keys[0]
			if !first.SignsFrom.Equal(t0) || first.Alg != "ES256" {
				t.Fatalf("first key %+v", first)
			}
			// Ensure again changes nothing.
			if err := keyset.Ensure(ctx, s, t0.Add(time.Minute), p); err != nil {
				t.Fatal(err)
			}
			at := t0.Add(time.Hour)
			next, err := keyset.Rotate(ctx, s, t0.Add(time.Hour-keyset.PublishLead), at, "EdDSA", p)
			if err != nil {
				t.Fatal(err)
			}
			keys, _ = keyset.Load(ctx, s, kek)
			if len(keys) != 2 || keys[1].ID != next.ID || !keys[0].RetireAfter.Equal(at.Add(time.Hour)) {
				t.Fatalf("after Rotate: %+v", keys)
			}
			for _, c := range []struct {
				at        time.Time
				current   string
				published int
			}{
				{at.Add(-time.Second), first.ID, 2},
				{at, next.ID, 2},
				{at.Add(time.Hour - time.Second), next.ID, 2},
				{at.Add(time.Hour), next.ID, 1},
			} {
				if got := keyset.Current(keys, c.at).ID; got != c.current {
					t.Errorf("at %s the current key is %s, want %s", c.at, got, c.current)
				}
				if got := keyset.Published(keys, c.at, time.Hour); len(got) != c.published {
					t.Errorf("at %s %d keys are published, want %d", c.at, len(got), c.published)
				}
			}
			// A rotation after the first key retired deletes it.
			if _, err := keyset.Rotate(ctx, s, at.Add(2*time.Hour), at.Add(3*time.Hour), "ES256", p); err != nil {
				t.Fatal(err)
			}
			keys, _ = keyset.Load(ctx, s, kek)
			if len(keys) != 2 || keys[0].ID != next.ID {
				t.Fatalf("the retired key was not deleted: %+v", keys)
			}
		})
	}
}

// A schedule (signing.rotate_every) adds the next key PublishLead before
// it is due; replicas checking at once add one.
func TestScheduleReplicasAgree(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := open(t)
			p := keyset.Policy{Alg: "ES256", MaxTokenLifetime: 5 * time.Minute, RotateEvery: 24 * time.Hour}
			var wg sync.WaitGroup
			for range 3 {
				wg.Go(func() {
					if err := keyset.Ensure(ctx, s, t0, p); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			due := t0.Add(24 * time.Hour)
			if err := keyset.Ensure(ctx, s, due.Add(-keyset.PublishLead-time.Second), p); err != nil {
				t.Fatal(err)
			}
			if keys, _ := keyset.Load(ctx, s, nil); len(keys) != 1 {
				t.Fatalf("%d keys before the schedule's lead, want 1", len(keys))
			}
			for range 3 {
				wg.Go(func() {
					if err := keyset.Ensure(ctx, s, due.Add(-keyset.PublishLead), p); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			keys, _ := keyset.Load(ctx, s, nil)
			if len(keys) != 2 || !keys[1].SignsFrom.Equal(due) {
				t.Fatalf("after the schedule: %+v, want a second key signing from %s", keys, due)
			}
		})
	}
}

// Sealed keys need their KEK; a wrong one, or none, is refused by name.
func TestKEK(t *testing.T) {
	ctx := context.Background()
	kek, _ := keyset.ParseKEK("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	other, _ := keyset.ParseKEK("ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=")
	s := store.NewMemory().Keys()
	if err := keyset.Ensure(ctx, s, t0, keyset.Policy{Alg: "ES256", KEK: kek}); err != nil {
		t.Fatal(err)
	}
	recs, _ := s.Records(ctx)
	if strings.Contains(recs[0].Private, "PRIVATE KEY") {
		t.Fatal("the private key is stored in the clear under a KEK")
	}
	for _, c := range []struct {
		kek  *keyset.KEK
		want string
	}{
		{nil, "is encrypted: give its key-encryption key (signing.kek_file or IDTX_KEK)"},
		{other, "does not open with this key-encryption key"},
	} {
		if _, err := keyset.Load(ctx, s, c.kek); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Load = %v, want %q", err, c.want)
		}
	}
	if _, err := keyset.Load(ctx, s, kek); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "c2hvcnQ=", "not base64!"} {
		if _, err := keyset.ParseKEK(bad); err == nil || !strings.Contains(err.Error(), "base64 of 32 random bytes") {
			t.Errorf("ParseKEK(%q) = %v", bad, err)
		}
	}
}

// Two configs over one store that differ only in token_lifetime: the
// replica with 1h records it at start, so two rotations by a process with
// 5m, five minutes apart, keep the key the 1h replica signed with until
// its last token expires, then delete it.
func TestRotationKeepsTheLongestLifetime(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := open(t)
			long := keyset.Policy{Alg: "ES256", MaxTokenLifetime: time.Hour}
			short := keyset.Policy{Alg: "ES256", MaxTokenLifetime: 5 * time.Minute}
			if err := keyset.Ensure(ctx, s, t0, long); err != nil { // replica A starts
				t.Fatal(err)
			}
			if d, err := s.MaxLifetime(ctx); err != nil || d != time.Hour {
				t.Fatalf("MaxLifetime after A started = %s, %v; want 1h", d, err)
			}
			if err := keyset.Ensure(ctx, s, t0, short); err != nil { // replica B: never lowers it
				t.Fatal(err)
			}
			first, _ := keyset.Load(ctx, s, nil)
			// A signs T1 at t0 (exp t0+1h); rotate twice from the 5m config.
			at1 := t0.Add(keyset.PublishLead)
			if _, err := keyset.Rotate(ctx, s, t0, at1, "ES256", short); err != nil {
				t.Fatal(err)
			}
			now2 := at1.Add(5*time.Minute + time.Second)
			if _, err := keyset.Rotate(ctx, s, now2, now2.Add(keyset.PublishLead), "ES256", short); err != nil {
				t.Fatal(err)
			}
			keys, _ := keyset.Load(ctx, s, nil)
			if len(keys) != 3 || keys[0].ID != first[0].ID || !keys[0].RetireAfter.Equal(at1.Add(time.Hour)) {
				t.Fatalf("after two rotations by the 5m config: %+v; want the first key kept until %s", keys, at1.Add(time.Hour))
			}
			// Once T1 cannot be valid any more, the next rotation deletes it.
			now3 := at1.Add(time.Hour + time.Second)
			if _, err := keyset.Rotate(ctx, s, now3, now3.Add(keyset.PublishLead), "ES256", short); err != nil {
				t.Fatal(err)
			}
			keys, _ = keyset.Load(ctx, s, nil)
			if len(keys) != 3 || keys[0].ID == first[0].ID {
				t.Fatalf("after the first key's last token expired: %+v; want it deleted", keys)
			}
		})
	}
}

// A start time already past is taken as now: the previous key stays
// published for the tokens it signed until now, and the new key is not
// said to have signed before it existed.
func TestRotateInThePast(t *testing.T) {
	ctx := context.Background()
	s := store.NewMemory().Keys()
	p := keyset.Policy{Alg: "ES256", MaxTokenLifetime: time.Hour}
	if err := keyset.Ensure(ctx, s, t0, p); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(2 * time.Hour)
	k, err := keyset.Rotate(ctx, s, now, now.Add(-time.Hour), "ES256", p)
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := keyset.Load(ctx, s, nil)
	if !k.SignsFrom.Equal(now) || len(keys) != 2 || !keys[0].RetireAfter.Equal(now.Add(time.Hour)) {
		t.Fatalf("rotate at an hour ago: new key signs from %s, keys %+v; want now %s and the old key kept until %s", k.SignsFrom, keys, now, now.Add(time.Hour))
	}
	if got := keyset.Published(keys, now.Add(time.Hour-time.Second), time.Hour); len(got) != 2 {
		t.Fatalf("%d keys published 59m59s later, want 2", len(got))
	}
}

// Beside sealed keys, no key is added in the clear: not by a rotation,
// not by a server's schedule.
func TestNoPlaintextKeyBesideSealedOnes(t *testing.T) {
	ctx := context.Background()
	kek, _ := keyset.ParseKEK("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	s := store.NewMemory().Keys()
	if err := keyset.Ensure(ctx, s, t0, keyset.Policy{Alg: "ES256", KEK: kek, RotateEvery: 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	want := "the store's signing keys are sealed: give the key-encryption key (signing.kek_file or IDTX_KEK) so that the new key is sealed too"
	if _, err := keyset.Rotate(ctx, s, t0, t0.Add(keyset.PublishLead), "ES256", keyset.Policy{}); err == nil || err.Error() != want {
		t.Errorf("Rotate without the KEK = %v, want %q", err, want)
	}
	due := t0.Add(24 * time.Hour)
	if err := keyset.Ensure(ctx, s, due, keyset.Policy{Alg: "ES256", RotateEvery: 24 * time.Hour}); err == nil || err.Error() != want {
		t.Errorf("scheduled rotation without the KEK = %v, want %q", err, want)
	}
	if recs, _ := s.Records(ctx); len(recs) != 1 || !keyset.Sealed(recs[0]) {
		t.Fatalf("records after the refusals: %+v", recs)
	}
}
