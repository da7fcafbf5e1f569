package exchange

import (
	"fmt"
	"math"
	"net/http"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/oauth"
)

// Labels of idtx_limited_total.
const (
	limitRate     = "rate"
	limitInFlight = "in_flight"
)

// limits are the server's answers to load: a token bucket per client
// (config rate_limit) and a cap on exchanges in flight (max_in_flight).
//
// The rate limit is taken after the client has authenticated, so that
// requests with a wrong secret cannot spend a client's budget; the cap is
// taken before anything else, so that a flood is refused before it costs
// a signature.
type limits struct {
	perClient   map[string]*rate.Limiter // client id → bucket; absent: unlimited
	rates       map[string]string        // client id → its rate, as configured
	maxInFlight int64
	inFlight    atomic.Int64
}

func newLimits(cfg *config.Config) (*limits, error) {
	l := &limits{perClient: map[string]*rate.Limiter{}, rates: map[string]string{}, maxInFlight: int64(cfg.MaxInFlight)}
	if l.maxInFlight <= 0 {
		l.maxInFlight = config.DefaultMaxInFlight
	}
	for _, c := range cfg.Clients {
		rl := cfg.RateLimit
		if c.RateLimit != nil {
			rl = c.RateLimit
		}
		if rl == nil {
			continue
		}
		perSec, err := rl.PerSecond()
		if err != nil {
			return nil, fmt.Errorf("client %s: rate_limit: %w", c.ID, err)
		}
		if math.IsInf(perSec, 1) {
			continue
		}
		l.perClient[c.ID] = rate.NewLimiter(rate.Limit(perSec), rl.BurstOrDefault())
		l.rates[c.ID] = rl.Rate
	}
	return l, nil
}

// allow takes one exchange from client's bucket at now, or says when to
// come back: 429 slow_down with Retry-After. RFC 6749 has no error for
// "too many requests"; slow_down is the token endpoint's error for a
// client that asks too often (RFC 8628 §3.5, registered for the token
// endpoint in RFC 8628 §7.2).
func (l *limits) allow(clientID string, now time.Time) *oauth.Error {
	lim, ok := l.perClient[clientID]
	if !ok || lim.AllowN(now, 1) {
		return nil
	}
	// The time until the bucket holds one token again.
	wait := time.Duration((1 - lim.TokensAt(now)) / float64(lim.Limit()) * float64(time.Second))
	e := newError(oauth.CodeSlowDown, http.StatusTooManyRequests, "rate limit: client %s exceeded its rate_limit of %s (burst %d); retry after %s",
		clientID, l.rates[clientID], lim.Burst(), retrySeconds(wait))
	e.RetryAfter = max(wait, time.Second)
	return e
}

// enter counts an exchange in, or refuses it with 503
// temporarily_unavailable when max_in_flight are being answered; a
// caller let in must call leave.
func (l *limits) enter() *oauth.Error {
	if l.inFlight.Add(1) > l.maxInFlight {
		l.inFlight.Add(-1)
		e := oauth.ErrTemporarilyUnavailable("max_in_flight: the server is answering %d exchanges already; retry after 1s", l.maxInFlight)
		e.RetryAfter = time.Second
		return e
	}
	return nil
}

func (l *limits) leave() { l.inFlight.Add(-1) }

// retrySeconds is a wait as Retry-After says it: whole seconds, rounded
// up, at least 1.
func retrySeconds(d time.Duration) string {
	return fmt.Sprintf("%ds", max(1, int((d+time.Second-1)/time.Second)))
}
