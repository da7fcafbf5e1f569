package idtxtest_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/idtx/idtx/idtxtest"
)

// TestParallelSTSs starts 50 STSs at once (run it with -race): each has
// its own faults, consents and exchanges.
func TestParallelSTSs(t *testing.T) {
	for i := range 50 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			sts := idtxtest.New(t)
			want := 200
			if i%2 == 1 {
				sts.Fault(t, "error=invalid_grant")
				want = 400
			}
			if i%3 == 0 {
				sts.Fault(t, "rotate-key")
			}
			user := fmt.Sprintf("user%d", i)
			sts.Grant(t, idtxtest.IDP, user, "billing-api", "billing:read")
			a := exchange(t, sts, sts.SubjectToken(t, user), typeJWT, "billing-api")
			if a.Status != want {
				t.Fatalf("%d %v, want %d", a.Status, a.Body, want)
			}
			if n := len(sts.Exchanges()); n != 1 {
				t.Fatalf("%d exchanges seen, want this test's 1", n)
			}
		})
	}
}

// iterTB runs the cleanups of one benchmark iteration at its end.
type iterTB struct {
	testing.TB
	cleanups []func()
}

func (t *iterTB) Cleanup(f func()) { t.cleanups = append(t.cleanups, f) }
func (t *iterTB) done() {
	for _, f := range slices.Backward(t.cleanups) {
		f()
	}
}

// BenchmarkStartToFirstExchange is the budget of a test that starts its
// own STS: New to the first exchange's answer over HTTP, under 50 ms on a 2-core
// machine (docs/testing.md). A benchmark, not a timed test:
//
//	go test ./idtxtest -run '^$' -bench StartToFirstExchange -benchmem
func BenchmarkStartToFirstExchange(b *testing.B) {
	tb := &iterTB{TB: b}
	for b.Loop() {
		tb.cleanups = nil
		sts := idtxtest.New(tb)
		tok := sts.AccessToken(tb, "alice", "orders-api", nil)
		if tok == "" {
			b.Fatal("no token")
		}
		tb.done()
	}
}
