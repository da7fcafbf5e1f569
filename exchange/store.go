package exchange

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/idtx/idtx/consent"
	"github.com/idtx/idtx/store"
)

// measuredStore times every call of the store it wraps
// (idtx_store_duration_seconds) and retries a call the database refused
// as busy (SQLite's SQLITE_BUSY once its own busy_timeout has passed)
// for as long as the request's deadline allows.
type measuredStore struct {
	store.Store
	m                           *Metrics
	grant, revoke, list, missng prometheus.Observer
	sleep                       func(ctx context.Context, d time.Duration) error
}

func newMeasuredStore(s store.Store, m *Metrics) *measuredStore {
	return &measuredStore{
		Store: s, m: m,
		grant:  m.storeTime.WithLabelValues("grant"),
		revoke: m.storeTime.WithLabelValues("revoke"),
		list:   m.storeTime.WithLabelValues("list"),
		missng: m.storeTime.WithLabelValues("missing"),
		sleep:  sleepCtx,
	}
}

func (s *measuredStore) Grant(ctx context.Context, idp, user, service string, scopes []string) error {
	return s.do(ctx, "grant", s.grant, func() error { return s.Store.Grant(ctx, idp, user, service, scopes) })
}

func (s *measuredStore) Revoke(ctx context.Context, idp, user, service string, scopes []string) (n int, err error) {
	err = s.do(ctx, "revoke", s.revoke, func() (err error) { n, err = s.Store.Revoke(ctx, idp, user, service, scopes); return err })
	return n, err
}

func (s *measuredStore) List(ctx context.Context, f consent.Filter) (out []consent.Consent, err error) {
	err = s.do(ctx, "list", s.list, func() (err error) { out, err = s.Store.List(ctx, f); return err })
	return out, err
}

func (s *measuredStore) Missing(ctx context.Context, idp, user, service string, scopes []string) (out []string, err error) {
	err = s.do(ctx, "missing", s.missng, func() (err error) { out, err = s.Store.Missing(ctx, idp, user, service, scopes); return err })
	return out, err
}

// busyBackoff is the first wait before a busy call is tried again; it
// doubles up to busyBackoffMax.
const (
	busyBackoff    = 2 * time.Millisecond
	busyBackoffMax = 100 * time.Millisecond
)

func (s *measuredStore) do(ctx context.Context, op string, took prometheus.Observer, call func() error) error {
	start := time.Now()
	err := call()
	if err != nil && isBusy(err) {
		if _, ok := ctx.Deadline(); !ok { // a caller without a deadline: RequestTimeout
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, start.Add(RequestTimeout))
			defer cancel()
		}
	}
	for wait := busyBackoff; err != nil && isBusy(err); wait = min(2*wait, busyBackoffMax) {
		if serr := s.sleep(ctx, wait); serr != nil {
			// Busy past the deadline is a store that is not answering now:
			// the exchange says temporarily_unavailable, not server_error.
			err = fmt.Errorf("database busy until the request's deadline: %w: %w", store.ErrUnavailable, err)
			break
		}
		s.m.storeRetry.Inc()
		err = call()
	}
	took.Observe(time.Since(start).Seconds())
	if err != nil {
		s.m.storeErrors.WithLabelValues(op).Inc()
	}
	return err
}

// isBusy says whether err is SQLite's SQLITE_BUSY or SQLITE_LOCKED (any
// extended code of them): another connection holds the lock, and the same
// call may succeed a moment later.
func isBusy(err error) bool {
	var coded interface{ Code() int }
	if errors.As(err, &coded) {
		switch coded.Code() & 0xff {
		case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED
			return true
		}
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "SQLITE_BUSY") || strings.Contains(msg, "database is locked")
}

// sleepCtx waits d, or less when ctx ends first, or refuses when ctx
// ends before d would pass.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		return context.DeadlineExceeded
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
