package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/idtx/idtx/store/pgtest"
)

func openPG(t *testing.T, dsn string) *postgres {
	t.Helper()
	s, err := openPostgres(dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Open selects the PostgreSQL backend by the URL's scheme, as --store
// and the config's store: do.
func TestOpenPostgresURL(t *testing.T) {
	dsn := pgtest.DSN(t)
	s, err := Open(dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok := s.(*postgres); !ok {
		t.Fatalf("Open(%s) = %T, want *postgres", dsn, s)
	}
}

// Replicas starting at once over an empty database: the advisory lock
// makes one of them create the schema and the others find it current.
func TestPostgresConcurrentMigration(t *testing.T) {
	dsn := pgtest.DSN(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			s, err := openPostgres(dsn)
			if err == nil {
				s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: %v", i, err)
		}
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n, version int
	if err := conn.QueryRow(ctx, `SELECT count(*), max(version) FROM schema_version`).Scan(&n, &version); err != nil {
		t.Fatal(err)
	}
	if n != 1 || version != PostgresSchemaVersion {
		t.Fatalf("schema_version has %d rows, version %d; want 1 row, version %d", n, version, PostgresSchemaVersion)
	}
}

// A database migrated by a newer idtx is refused, not written to.
func TestPostgresNewerSchemaRefused(t *testing.T) {
	dsn := pgtest.DSN(t)
	openPG(t, dsn)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE schema_version SET version = 99`); err != nil {
		t.Fatal(err)
	}
	_, err = openPostgres(dsn)
	if err == nil || !strings.Contains(err.Error(), "schema version 99 is newer than this idtx knows") {
		t.Fatalf("OpenPostgres over schema 99 = %v", err)
	}
}

// A database that went away is ErrUnavailable (the STS answers
// temporarily_unavailable), and the store works again once it is back.
func TestPostgresUnavailableAndRecovery(t *testing.T) {
	c := pgtest.Start(t)
	s := openPG(t, pgtest.NewDatabase(t, c.DSN()))
	ctx := context.Background()
	if err := s.Grant(ctx, "corp", "alice", "billing-api", []string{"x"}); err != nil {
		t.Fatal(err)
	}
	c.Stop()
	if err := s.Ping(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Ping with the database stopped = %v, want ErrUnavailable", err)
	}
	_, err := s.Missing(ctx, "corp", "alice", "billing-api", []string{"x"})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Missing with the database stopped = %v, want ErrUnavailable", err)
	}
	if err := s.Grant(ctx, "corp", "bob", "billing-api", []string{"x"}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Grant with the database stopped = %v, want ErrUnavailable", err)
	}
	c.StartAgain()
	m, err := s.Missing(ctx, "corp", "alice", "billing-api", []string{"x"})
	if err != nil || len(m) != 0 {
		t.Fatalf("Missing after the database came back = %v, %v", m, err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping after the database came back = %v", err)
	}
}

// A statement the database refuses is not "unavailable": it is a bug to
// report, not to retry.
func TestPGErrorClassifies(t *testing.T) {
	if err := pgError(errors.New("syntax error")); errors.Is(err, ErrUnavailable) {
		t.Fatal("a plain error was classified unavailable")
	}
	if pgError(nil) != nil {
		t.Fatal("pgError(nil) != nil")
	}
}

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func openPGReplay(t *testing.T, dsn string, now *time.Time, limit int) ReplayCache {
	t.Helper()
	s, err := openPostgres(dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s.Replay(func() time.Time { return *now }, limit)
}

// Two replicas over one database share the PostgreSQL replay cache (the
// conformance suite checks the rest), and a client's expired rows are
// deleted as it sends its next assertion.
func TestPostgresReplayCache(t *testing.T) {
	dsn := pgtest.DSN(t)
	now := t0
	c := openPGReplay(t, dsn, &now, 3)
	other := openPGReplay(t, dsn, &now, 3) // a second replica
	ctx := context.Background()
	use := func(c ReplayCache, client, jti string, exp time.Duration) error {
		return c.Use(ctx, client, jti, t0.Add(exp))
	}
	for i, exp := range []time.Duration{3 * time.Minute, time.Minute, 2 * time.Minute} {
		if err := use(c, "a", fmt.Sprint("j", i), exp); err != nil {
			t.Fatal(err)
		}
	}
	err := use(c, "a", "j3", time.Minute)
	var limit *ReplayLimitError
	if !errors.Is(err, ErrReplayLimit) || !errors.As(err, &limit) || err.Error() != "client a has 3 unexpired assertions (the limit)" {
		t.Errorf("a's fourth: %v, want the limit", err)
	}
	if err := use(c, "b", "j0", time.Minute); err != nil {
		t.Errorf("b is locked out by a: %v", err)
	}
	if err := use(other, "a", "j0", 3*time.Minute); !errors.Is(err, ErrReplayed) {
		t.Errorf("j0 replayed at the other replica: %v", err)
	}
	now = t0.Add(90 * time.Second) // j1 (exp 1m) has expired
	if err := use(other, "a", "j3", 4*time.Minute); err != nil {
		t.Errorf("after j1 expired: %v", err)
	}
	if err := use(c, "a", "j2", 4*time.Minute); !errors.Is(err, ErrReplayed) {
		t.Errorf("j2 (exp 2m) is forgotten early: %v", err)
	}
	now = t0.Add(10 * time.Minute)
	if err := use(c, "a", "j0", 11*time.Minute); err != nil {
		t.Errorf("after all expired: %v", err)
	}
	s, err := openPostgres(dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM client_assertions WHERE client = 'a'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("a has %d rows after every entry expired, want 1: expired rows are not deleted", n)
	}
}

// The database gone: the cache says so as ErrUnavailable, so the client
// step answers temporarily_unavailable, and works again when it is back.
func TestPostgresReplayCacheUnavailable(t *testing.T) {
	cluster := pgtest.Start(t)
	now := t0
	c := openPGReplay(t, pgtest.NewDatabase(t, cluster.DSN()), &now, 0)
	ctx := context.Background()
	if err := c.Use(ctx, "a", "j0", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	cluster.Stop()
	if err := c.Use(ctx, "a", "j1", t0.Add(time.Minute)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("with the database stopped: %v", err)
	}
	cluster.StartAgain()
	if err := c.Use(ctx, "a", "j0", t0.Add(time.Minute)); !errors.Is(err, ErrReplayed) {
		t.Fatalf("j0 after the database came back: %v", err)
	}
}

// Lookups that arrive while the consent queries are all on their way wait
// together and one query answers them, each with its own key's scopes;
// and a lookup that began after a revocation, through another replica,
// committed is refused by it, though it joined lookups that began before.
func TestPostgresLookupsShareOneQuery(t *testing.T) {
	t.Run("one wave", func(t *testing.T) { testPGLookups(t, false) })
	t.Run("a full wave and the next", func(t *testing.T) { testPGLookups(t, true) })
}

func testPGLookups(t *testing.T, full bool) {
	dsn := pgtest.DSN(t)
	s, other := openPG(t, dsn), openPG(t, dsn)
	ctx := context.Background()
	for _, g := range []struct {
		user   string
		scopes []string
	}{{"alice", []string{"billing:read"}}, {"dave", []string{"billing:read", "billing:write"}}} {
		if err := other.Grant(ctx, "mock", g.user, "billing-api", g.scopes); err != nil {
			t.Fatal(err)
		}
	}
	// One flight at a time, the first held until released.
	release := make(chan struct{})
	var mu sync.Mutex
	var queries [][]consentKey
	l := s.lookups
	l.maxFlights = 1
	query := l.query
	l.query = func(ctx context.Context, keys []consentKey) ([]map[string]bool, error) {
		mu.Lock()
		queries = append(queries, keys)
		first := len(queries) == 1
		mu.Unlock()
		if first {
			<-release
		}
		return query(ctx, keys)
	}
	type answer struct {
		missing []string
		err     error
	}
	lookup := func(user string, scopes ...string) chan answer {
		c := make(chan answer, 1)
		go func() {
			m, err := s.Missing(ctx, "mock", user, "billing-api", scopes)
			c <- answer{m, err}
		}()
		return c
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	waiting := func(lookups int) func() bool {
		return func() bool {
			l.mu.Lock()
			defer l.mu.Unlock()
			return l.next != nil && l.next.lookups == lookups
		}
	}

	if full {
		// Waves of two keys: the third key waits for the query after.
		l.maxWave = 2
	}
	held := lookup("bob", "billing:read")
	waitFor("the first query", func() bool { mu.Lock(); defer mu.Unlock(); return len(queries) == 1 })
	before := lookup("alice", "billing:read")
	waitFor("alice's lookup to wait", waiting(1))
	if n, err := other.Revoke(ctx, "mock", "alice", "billing-api", nil); err != nil || n != 1 {
		t.Fatalf("revoke through the other replica: %d %v", n, err)
	}
	after := lookup("alice", "billing:read")
	waitFor("alice's second lookup to wait", waiting(2))
	carol := lookup("carol", "billing:read")
	waitFor("carol's lookup to wait", waiting(3))
	dave := lookup("dave", "billing:write", "billing:read", "orders:read")
	waitFor("dave's lookup to wait", func() bool {
		if !full {
			return waiting(4)()
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.queued) == 1 && l.next != nil && l.next.lookups == 1
	})
	close(release)

	for _, c := range []struct {
		what string
		got  chan answer
		want []string
	}{
		{"bob, never granted", held, []string{"billing:read"}},
		{"alice, asked before the revocation", before, []string{"billing:read"}},
		{"alice, asked after the revocation", after, []string{"billing:read"}},
		{"carol, never granted", carol, []string{"billing:read"}},
		{"dave", dave, []string{"orders:read"}},
	} {
		if a := <-c.got; a.err != nil || !slices.Equal(a.missing, c.want) {
			t.Errorf("%s: missing %v, %v, want %v", c.what, a.missing, a.err, c.want)
		}
	}
	want := [][]consentKey{{{"mock", "bob", "billing-api"}},
		{{"mock", "alice", "billing-api"}, {"mock", "carol", "billing-api"}, {"mock", "dave", "billing-api"}}}
	if full {
		want = [][]consentKey{want[0], want[1][:2], want[1][2:]}
	}
	if !slices.EqualFunc(queries, want, slices.Equal) {
		t.Fatalf("queries %v, want %v", queries, want)
	}
}

// BenchmarkPostgresMissing is the consent lookup of busy replicas: 16
// goroutines a core, each asking for one of 100 users in turn. It
// reports the lookups each query answered (lookups/query):
//
//	scripts/test-postgres.sh go test -run '^$' -bench PostgresMissing ./store
func BenchmarkPostgresMissing(b *testing.B) {
	dsn := pgtest.DSN(b)
	s, err := openPostgres(dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	users := make([]string, 100)
	for i := range users {
		users[i] = fmt.Sprintf("user%d", i)
		if err := s.Grant(ctx, "mock", users[i], "billing-api", []string{"billing:read"}); err != nil {
			b.Fatal(err)
		}
	}
	var queries atomic.Int64
	query := s.lookups.query
	s.lookups.query = func(ctx context.Context, keys []consentKey) ([]map[string]bool, error) {
		queries.Add(1)
		return query(ctx, keys)
	}
	var next atomic.Int64
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			user := users[next.Add(1)%int64(len(users))]
			if m, err := s.Missing(ctx, "mock", user, "billing-api", []string{"billing:read"}); err != nil || len(m) != 0 {
				b.Errorf("%s: missing %v, %v", user, m, err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/float64(queries.Load()), "lookups/query")
}
