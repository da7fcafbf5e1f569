package consent_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/idtx/idtx/consent"
	"github.com/idtx/idtx/consent/consenttest"
	"github.com/idtx/idtx/consent/pgtest"
)

func openPG(t *testing.T, dsn string) *consent.Postgres {
	t.Helper()
	s, err := consent.OpenPostgres(dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestPostgres(t *testing.T) {
	server := pgtest.Server(t)
	consenttest.Run(t, func(t *testing.T) consent.Store {
		return openPG(t, pgtest.NewDatabase(t, server))
	})
}

// Open selects the PostgreSQL backend by the URL's scheme, as --store
// and the config's store: do.
func TestOpenPostgresURL(t *testing.T) {
	dsn := pgtest.DSN(t)
	s, err := consent.Open(dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok := s.(*consent.Postgres); !ok {
		t.Fatalf("Open(%s) = %T, want *consent.Postgres", dsn, s)
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
			s, err := consent.OpenPostgres(dsn)
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
	if n != 1 || version != consent.PostgresSchemaVersion {
		t.Fatalf("schema_version has %d rows, version %d; want 1 row, version %d", n, version, consent.PostgresSchemaVersion)
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
	_, err = consent.OpenPostgres(dsn)
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
	if err := s.Ping(ctx); !errors.Is(err, consent.ErrUnavailable) {
		t.Fatalf("Ping with the database stopped = %v, want ErrUnavailable", err)
	}
	_, err := s.Missing(ctx, "corp", "alice", "billing-api", []string{"x"})
	if !errors.Is(err, consent.ErrUnavailable) {
		t.Fatalf("Missing with the database stopped = %v, want ErrUnavailable", err)
	}
	if err := s.Grant(ctx, "corp", "bob", "billing-api", []string{"x"}); !errors.Is(err, consent.ErrUnavailable) {
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
	if err := consent.PGError(errors.New("syntax error")); errors.Is(err, consent.ErrUnavailable) {
		t.Fatal("a plain error was classified unavailable")
	}
	if consent.PGError(nil) != nil {
		t.Fatal("PGError(nil) != nil")
	}
}
