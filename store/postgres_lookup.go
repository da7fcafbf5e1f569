package store

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// pgLookups runs the consent lookups of one process against PostgreSQL.
// Every lookup is answered by a query sent after the lookup began, so
// that a grant or revocation committed before it (by any replica, by
// `idtx consent`) decides it: nothing is remembered between queries.
// What it saves is round trips: while maxFlights queries are on their way,
// the lookups that arrive wait together, and the next query answers all
// of them at once. Each round trip costs the database a wake-up, a
// statement and a reply, which under load cost more than the exchange's
// own work; one query for many waiting lookups costs about one.
type pgLookups struct {
	query      func(ctx context.Context, keys []consentKey) ([]map[string]bool, error)
	maxFlights int
	maxWave    int // keys one query asks for at most

	mu      sync.Mutex
	flights int       // queries on their way
	queued  []*pgWave // full waves, to leave in turn
	next    *pgWave   // lookups waiting for the next query; nil if none
}

// pgWave is the lookups one query answers.
type pgWave struct {
	keys      []consentKey
	index     map[consentKey]int
	lookups   int       // how many lookups it answers
	deadline  time.Time // the latest of the lookups' deadlines
	unbounded bool      // a lookup has no deadline

	done   chan struct{}
	scopes []map[string]bool // by index, once done
	err    error
}

// pgMaxWave bounds the users (keys) one query asks for; past it a lookup
// waits for a later query.
const pgMaxWave = 256

func newPGLookups(pool *pgxpool.Pool, maxFlights int) *pgLookups {
	return &pgLookups{maxFlights: max(1, maxFlights), maxWave: pgMaxWave, query: func(ctx context.Context, keys []consentKey) ([]map[string]bool, error) {
		return pgScopes(ctx, pool, keys)
	}}
}

// scopes is the scopes granted to k, read by a query sent after the call
// began.
func (l *pgLookups) scopes(ctx context.Context, k consentKey) (map[string]bool, error) {
	l.mu.Lock()
	w := l.next
	if w == nil || len(w.keys) >= l.maxWave {
		if w != nil {
			// Full: it goes with the next flight that lands, and this
			// lookup waits for the one after.
			l.send(w)
		}
		w = &pgWave{index: map[consentKey]int{}, done: make(chan struct{})}
		l.next = w
	}
	w.lookups++
	i, ok := w.index[k]
	if !ok {
		i = len(w.keys)
		w.keys = append(w.keys, k)
		w.index[k] = i
	}
	// The query is cut at the last lookup's deadline: a lookup whose own
	// deadline comes first leaves without it.
	if dl, ok := ctx.Deadline(); !ok {
		w.unbounded = true
	} else if dl.After(w.deadline) {
		w.deadline = dl
	}
	if l.flights < l.maxFlights {
		// A query may leave now: this lookup sends the wave itself.
		l.next = nil
		l.flights++
		l.mu.Unlock()
		l.fly(w)
	} else {
		l.mu.Unlock()
	}
	select {
	case <-w.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if w.err != nil {
		return nil, w.err
	}
	return w.scopes[i], nil
}

// send queues a full wave w to leave when a flight lands; l.mu is held.
// Waves queued this way leave in turn, before the wave then gathering.
func (l *pgLookups) send(w *pgWave) {
	l.queued = append(l.queued, w)
}

// fly runs w's query, then sends the next wave, if any lookup waits, in
// a goroutine of its own: w's lookups need not wait for it.
func (l *pgLookups) fly(w *pgWave) {
	ctx := context.Background()
	if !w.unbounded {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, w.deadline)
		defer cancel()
	}
	w.scopes, w.err = l.query(ctx, w.keys)
	close(w.done)
	l.mu.Lock()
	var next *pgWave
	switch {
	case len(l.queued) > 0:
		next = l.queued[0]
		l.queued = l.queued[1:]
	case l.next != nil:
		next, l.next = l.next, nil
	default:
		l.flights--
	}
	l.mu.Unlock()
	if next != nil {
		go l.fly(next)
	}
}

// pgScopes reads the scopes granted to each of keys in one statement.
func pgScopes(ctx context.Context, pool *pgxpool.Pool, keys []consentKey) ([]map[string]bool, error) {
	out := make([]map[string]bool, len(keys))
	for i := range out {
		out[i] = map[string]bool{}
	}
	if len(keys) == 1 {
		// The common case, and the cheaper statement.
		k := keys[0]
		rows, err := pool.Query(ctx, `SELECT scope FROM consents WHERE idp = $1 AND usr = $2 AND service = $3`, k.idp, k.user, k.service)
		if err != nil {
			return nil, pgError(err)
		}
		defer rows.Close()
		for rows.Next() {
			var sc string
			if err := rows.Scan(&sc); err != nil {
				return nil, pgError(err)
			}
			out[0][sc] = true
		}
		return out, pgError(rows.Err())
	}
	idps, users, services := make([]string, len(keys)), make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		idps[i], users[i], services[i] = k.idp, k.user, k.service
	}
	rows, err := pool.Query(ctx, `SELECT k.i, c.scope
		FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS k(idp, usr, service, i)
		JOIN consents c ON c.idp = k.idp AND c.usr = k.usr AND c.service = k.service`, idps, users, services)
	if err != nil {
		return nil, pgError(err)
	}
	defer rows.Close()
	for rows.Next() {
		var i int64
		var sc string
		if err := rows.Scan(&i, &sc); err != nil {
			return nil, pgError(err)
		}
		if i < 1 || int(i) > len(keys) {
			return nil, fmt.Errorf("consent lookup: row for key %d of %d", i, len(keys))
		}
		out[i-1][sc] = true
	}
	return out, pgError(rows.Err())
}

// pgLookupFlights is how many consent queries may be on their way at
// once, of a pool of poolSize connections: half, so that the replay cache
// and the key set always find one.
func pgLookupFlights(poolSize int32) int { return max(1, int(poolSize)/2) }
