package attack

import (
	"strings"
	"testing"
	"time"
)

// waitFor polls cond every 10ms until it holds, and fails t if it does
// not within the given time: a test waits for what it needs, never for a
// fixed while.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", within, what)
		}
	}
}

// waitLogCount waits until the server has logged at least n lines that
// hold substr, and fails t if it has not within 5s.
func waitLogCount(t testing.TB, s *server, substr string, n int) {
	t.Helper()
	waitFor(t, 5*time.Second, "the server's log to hold "+substr, func() bool {
		return strings.Count(s.stderr.String(), substr) >= n
	})
}
