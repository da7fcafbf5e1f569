package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/idtx/idtx/consent"
)

// postgres is a Store in a PostgreSQL database, for replicas: every
// replica of `idtx serve` and every `idtx consent` command pointed at one
// database sees the same consents. The same database holds what else
// replicas must agree on: the private_key_jwt jti replay cache and the
// signing keys.
type postgres struct {
	pool    *pgxpool.Pool
	lookups *pgLookups
}

// PostgresSchemaVersion is the schema version this idtx writes, recorded in
// the schema_version table.
var PostgresSchemaVersion = len(pgMigrations)

// pgMigrations[i] brings the schema from version i to i+1. Append only.
var pgMigrations = []string{
	// 1: consents, the client assertion replay cache, signing keys.
	`CREATE TABLE consents (
		idp        TEXT NOT NULL,
		usr        TEXT NOT NULL,
		service    TEXT NOT NULL,
		scope      TEXT NOT NULL,
		granted_at TIMESTAMPTZ NOT NULL DEFAULT now(),
		PRIMARY KEY (idp, usr, service, scope)
	);
	CREATE TABLE client_assertions (
		client     TEXT NOT NULL,
		jti_hash   BYTEA NOT NULL,
		expires_at TIMESTAMPTZ NOT NULL,
		PRIMARY KEY (client, jti_hash)
	);
	CREATE INDEX client_assertions_expiry ON client_assertions (client, expires_at);
	CREATE TABLE signing_keys (
		kid          TEXT PRIMARY KEY,
		alg          TEXT NOT NULL,
		private_key  TEXT NOT NULL,
		created_at   TIMESTAMPTZ NOT NULL,
		signs_from   TIMESTAMPTZ NOT NULL,
		retire_after TIMESTAMPTZ
	);`,
	// 2: the longest token lifetime of any server that used the store
	// (one row, in seconds): a key is deleted only when no token any
	// replica signed with it is still valid.
	`CREATE TABLE signing_lifetime (max_seconds BIGINT NOT NULL);`,
}

// pgSchemaLock is the advisory lock key held while migrating, so that
// replicas starting at once migrate once ("idtx" in ASCII, then 1).
const pgSchemaLock int64 = 0x69647478_00000001

// pgKeysLock is the advisory lock key held while changing the signing
// key set (a rotation, the first key), so that replicas make one key.
const pgKeysLock int64 = 0x69647478_00000002

// pgConnectTimeout bounds a connection attempt when the URL sets none, so
// that a database that went away answers quickly rather than at the
// client's deadline.
const pgConnectTimeout = 5 * time.Second

// openPostgres connects to the database url names (a postgres:// URL, as
// libpq reads it) and creates or migrates its schema.
func openPostgres(url string) (*postgres, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The parse error may quote the URL, password and all.
		return nil, errors.New("postgres store: cannot parse the URL (postgres://user:password@host:port/database?sslmode=...)")
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = pgConnectTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres store %s: %w", cfg.ConnConfig.Host, err)
	}
	if err := pgMigrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres store %s/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Database, err)
	}
	return &postgres{pool: pool, lookups: newPGLookups(pool, pgLookupFlights(cfg.MaxConns))}, nil
}

// pgMigrate brings the schema to PostgresSchemaVersion in one transaction
// under an advisory lock: a second replica starting at once waits, then
// finds the schema current.
func pgMigrate(ctx context.Context, pool *pgxpool.Pool) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, pgSchemaLock); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
			return err
		}
		var version int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(max(version), 0) FROM schema_version`).Scan(&version); err != nil {
			return err
		}
		if version > PostgresSchemaVersion {
			return fmt.Errorf("schema version %d is newer than this idtx knows (%d): use a newer idtx", version, PostgresSchemaVersion)
		}
		for v := version; v < PostgresSchemaVersion; v++ {
			if _, err := tx.Exec(ctx, pgMigrations[v]); err != nil {
				return fmt.Errorf("migrate to schema version %d: %w", v+1, err)
			}
		}
		if version == PostgresSchemaVersion {
			return nil
		}
		if _, err := tx.Exec(ctx, `DELETE FROM schema_version`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO schema_version (version) VALUES ($1)`, PostgresSchemaVersion)
		return err
	})
}

// Keys is the key set in the database's signing_keys table.
func (s *postgres) Keys() Keys { return &pgKeys{pool: s.pool} }

// Replay is the client_assertions table, shared by every replica.
func (s *postgres) Replay(now func() time.Time, limit int) ReplayCache {
	return newPGReplay(s.pool, now, limit)
}

func (s *postgres) Grant(ctx context.Context, idp, user, service string, scopes []string) error {
	if err := consent.CheckKey(idp, user, service); err != nil {
		return err
	}
	if len(scopes) == 0 {
		return nil
	}
	// One statement: the grant is whole or not at all, and acknowledged
	// only once committed.
	_, err := s.pool.Exec(ctx, `INSERT INTO consents (idp, usr, service, scope)
		SELECT $1, $2, $3, unnest($4::text[]) ON CONFLICT DO NOTHING`, idp, user, service, scopes)
	return pgError(err)
}

func (s *postgres) Revoke(ctx context.Context, idp, user, service string, scopes []string) (int, error) {
	if err := consent.CheckKey(idp, user, service); err != nil {
		return 0, err
	}
	var tag pgconn.CommandTag
	var err error
	if len(scopes) == 0 {
		tag, err = s.pool.Exec(ctx, `DELETE FROM consents WHERE idp = $1 AND usr = $2 AND service = $3`, idp, user, service)
	} else {
		tag, err = s.pool.Exec(ctx, `DELETE FROM consents WHERE idp = $1 AND usr = $2 AND service = $3 AND scope = ANY($4)`, idp, user, service, scopes)
	}
	if err != nil {
		return 0, pgError(err)
	}
	return int(tag.RowsAffected()), nil
}

func (s *postgres) List(ctx context.Context, f consent.Filter) ([]consent.Consent, error) {
	var conds []string
	var args []any
	for _, c := range []struct{ col, v string }{{"idp", f.IDP}, {"usr", f.User}, {"service", f.Service}} {
		if c.v != "" {
			args = append(args, c.v)
			conds = append(conds, fmt.Sprintf("%s = $%d", c.col, len(args)))
		}
	}
	q := `SELECT idp, usr, service, scope FROM consents`
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	// COLLATE "C": sorted by bytes, as the other backends sort.
	q += ` ORDER BY idp COLLATE "C", usr COLLATE "C", service COLLATE "C", scope COLLATE "C"`
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, pgError(err)
	}
	defer rows.Close()
	var out []consent.Consent
	for rows.Next() {
		var idp, user, service, scope string
		if err := rows.Scan(&idp, &user, &service, &scope); err != nil {
			return nil, pgError(err)
		}
		if n := len(out); n > 0 && out[n-1].IDP == idp && out[n-1].User == user && out[n-1].Service == service {
			out[n-1].Scopes = append(out[n-1].Scopes, scope)
			continue
		}
		out = append(out, consent.Consent{IDP: idp, User: user, Service: service, Scopes: []string{scope}})
	}
	return out, pgError(rows.Err())
}

// Missing is answered by a query sent after it began (pgLookups), so
// that a grant or revocation committed before it, by any replica or
// `idtx consent`, decides it.
func (s *postgres) Missing(ctx context.Context, idp, user, service string, scopes []string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	have, err := s.lookups.scopes(ctx, consentKey{idp, user, service})
	if err != nil {
		return nil, err
	}
	return missingFrom(have, scopes), nil
}

// Ping runs an empty statement on a pooled connection.
func (s *postgres) Ping(ctx context.Context) error { return pgError(s.pool.Ping(ctx)) }

func (s *postgres) Close() error {
	s.pool.Close()
	return nil
}

// PGError wraps err in ErrUnavailable when it says the database cannot be
// reached rather than that it refused the statement; nil stays nil.
func pgError(err error) error {
	if err == nil || !pgUnavailable(err) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

func pgUnavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && len(pgErr.Code) == 5 {
		// SQLSTATE classes (PostgreSQL manual, appendix A): 08 connection
		// exception, 53 insufficient resources, 57 operator intervention
		// (admin shutdown, cannot connect now), 58 system error.
		switch pgErr.Code[:2] {
		case "08", "53", "57", "58":
			return true
		}
		return false
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connErr) || errors.As(err, &netErr) || pgconn.Timeout(err) ||
		pgconn.SafeToRetry(err) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "conn closed")
}

var _ Store = (*postgres)(nil)
