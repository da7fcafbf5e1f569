package exchange

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/idtx/idtx/store"
)

// sqliteErr carries a result code as modernc.org/sqlite's errors do.
type sqliteErr struct{ code int }

func (e sqliteErr) Error() string { return "sqlite error" }
func (e sqliteErr) Code() int     { return e.code }

// busyStore answers busy a number of times before it answers.
type busyStore struct {
	store.Store
	busy  int
	calls int
}

func (s *busyStore) Missing(ctx context.Context, idp, user, service string, scopes []string) ([]string, error) {
	s.calls++
	if s.calls <= s.busy {
		return nil, sqliteErr{5 | 2<<8} // SQLITE_BUSY_SNAPSHOT
	}
	return s.Store.Missing(ctx, idp, user, service, scopes)
}

func TestStoreBusyRetriedWithinDeadline(t *testing.T) {
	m := NewMetrics()
	inner := &busyStore{Store: store.NewMemory(), busy: 3}
	s := newMeasuredStore(inner, m)
	var waited []time.Duration
	s.sleep = func(ctx context.Context, d time.Duration) error { waited = append(waited, d); return ctx.Err() }
	ctx, cancel := context.WithTimeout(t.Context(), time.Hour)
	defer cancel()
	missing, err := s.Missing(ctx, "corp", "alice", "billing-api", []string{"billing:read"})
	if err != nil || len(missing) != 1 || inner.calls != 4 {
		t.Fatalf("Missing = %v, %v after %d calls; want [billing:read] after 4", missing, err, inner.calls)
	}
	if len(waited) != 3 || waited[0] != busyBackoff || waited[2] != 4*busyBackoff {
		t.Errorf("waits %v", waited)
	}
	text := scrapeMetrics(m)
	for _, want := range []string{"idtx_store_busy_retries_total 3\n", `idtx_store_duration_seconds_count{op="missing"} 1` + "\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q:\n%s", want, text)
		}
	}

	// Busy until the deadline: the last busy error, saying so.
	inner = &busyStore{Store: store.NewMemory(), busy: 1 << 30}
	s = newMeasuredStore(inner, m)
	left := 5
	s.sleep = func(ctx context.Context, d time.Duration) error {
		if left--; left < 0 {
			return context.DeadlineExceeded
		}
		return nil
	}
	_, err = s.Missing(ctx, "corp", "alice", "billing-api", []string{"billing:read"})
	var coded sqliteErr
	if err == nil || !strings.Contains(err.Error(), "database busy until the request's deadline") || !errors.As(err, &coded) || !errors.Is(err, store.ErrUnavailable) || inner.calls != 6 {
		t.Fatalf("always busy: %v after %d calls", err, inner.calls)
	}
	if text := scrapeMetrics(m); !strings.Contains(text, `idtx_store_errors_total{op="missing"} 1`+"\n") {
		t.Errorf("metrics lack the store error:\n%s", text)
	}

	// The real sleep refuses a wait the deadline leaves no room for.
	short, cancel2 := context.WithTimeout(t.Context(), time.Millisecond)
	defer cancel2()
	if err := sleepCtx(short, time.Hour); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("sleepCtx past the deadline = %v", err)
	}
}

func TestIsBusy(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{sqliteErr{5}, true},
		{sqliteErr{6}, true},
		{sqliteErr{5 | 1<<8}, true},
		{sqliteErr{1}, false},
		{sqliteErr{13}, false}, // SQLITE_FULL
		{errors.New("database is locked (5) (SQLITE_BUSY)"), true},
		{errors.New("no such table"), false},
	} {
		if got := isBusy(tc.err); got != tc.want {
			t.Errorf("isBusy(%v) = %v", tc.err, got)
		}
	}
}

func scrapeMetrics(m *Metrics) string {
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Body.String()
}
