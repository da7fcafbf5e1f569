package keyset

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/idtx/idtx/consent"
)

// ForStore is the key store that lives beside a consent store: in the
// same SQLite file or PostgreSQL database, or in memory.
func ForStore(s consent.Store) (Store, error) {
	switch s := s.(type) {
	case *consent.Memory:
		return NewMemory(), nil
	case *consent.SQLite:
		return &sqliteStore{db: s.DB()}, nil
	case *consent.Postgres:
		return &pgStore{pool: s.Pool()}, nil
	}
	return nil, fmt.Errorf("signing keys: no key store for a %T", s)
}

// Memory is a Store in memory: one process's key set.
type Memory struct {
	mu   sync.Mutex
	recs []Record
	life time.Duration
}

// NewMemory returns an empty key set.
func NewMemory() *Memory { return &Memory{} }

func (m *Memory) Records(context.Context) ([]Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.recs), nil
}

func (m *Memory) Update(ctx context.Context, fn func(Tx) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	tx := &memTx{recs: slices.Clone(m.recs), life: m.life}
	if err := fn(tx); err != nil {
		return err
	}
	m.recs, m.life = tx.recs, tx.life
	return nil
}

func (m *Memory) MaxLifetime(context.Context) (time.Duration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.life, nil
}

type memTx struct {
	recs []Record
	life time.Duration
}

func (t *memTx) MaxLifetime(context.Context) (time.Duration, error) { return t.life, nil }
func (t *memTx) SetMaxLifetime(_ context.Context, d time.Duration) error {
	t.life = d
	return nil
}

func (t *memTx) Records(context.Context) ([]Record, error) { return slices.Clone(t.recs), nil }
func (t *memTx) Add(_ context.Context, r Record) error {
	t.recs = append(t.recs, r)
	return nil
}
func (t *memTx) SetRetireAfter(_ context.Context, id string, at time.Time) error {
	for i := range t.recs {
		if t.recs[i].ID == id {
			t.recs[i].RetireAfter = at
		}
	}
	return nil
}
func (t *memTx) Delete(_ context.Context, id string) error {
	t.recs = slices.DeleteFunc(t.recs, func(r Record) bool { return r.ID == id })
	return nil
}

// sqliteStore keeps keys in the signing_keys table of a SQLite store;
// its transactions are immediate, so writers queue on the file's lock.
type sqliteStore struct{ db *sql.DB }

type sqlQuerier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
}

func (s *sqliteStore) Records(ctx context.Context) ([]Record, error) { return sqliteRecords(ctx, s.db) }

func (s *sqliteStore) MaxLifetime(ctx context.Context) (time.Duration, error) {
	return sqliteLifetime(ctx, s.db)
}

// sqliteLifetime reads the one row of signing_lifetime, if any.
func sqliteLifetime(ctx context.Context, q sqlQuerier) (time.Duration, error) {
	rows, err := q.QueryContext(ctx, `SELECT max(max_seconds) FROM signing_lifetime`)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var secs sql.NullInt64
	if rows.Next() {
		if err := rows.Scan(&secs); err != nil {
			return 0, err
		}
	}
	return time.Duration(secs.Int64) * time.Second, rows.Err()
}

func (s *sqliteStore) Update(ctx context.Context, fn func(Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(&sqliteTx{tx}); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func sqliteRecords(ctx context.Context, q sqlQuerier) ([]Record, error) {
	rows, err := q.QueryContext(ctx, `SELECT kid, alg, private_key, created_at, signs_from, retire_after FROM signing_keys ORDER BY signs_from, kid`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		var r Record
		var created, from int64
		var retire sql.NullInt64
		if err := rows.Scan(&r.ID, &r.Alg, &r.Private, &created, &from, &retire); err != nil {
			return nil, err
		}
		r.CreatedAt, r.SignsFrom = time.Unix(created, 0), time.Unix(from, 0)
		if retire.Valid {
			r.RetireAfter = time.Unix(retire.Int64, 0)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

type sqliteTx struct{ tx *sql.Tx }

func (t *sqliteTx) Records(ctx context.Context) ([]Record, error) { return sqliteRecords(ctx, t.tx) }

func (t *sqliteTx) MaxLifetime(ctx context.Context) (time.Duration, error) {
	return sqliteLifetime(ctx, t.tx)
}

func (t *sqliteTx) SetMaxLifetime(ctx context.Context, d time.Duration) error {
	if _, err := t.tx.ExecContext(ctx, `DELETE FROM signing_lifetime`); err != nil {
		return err
	}
	_, err := t.tx.ExecContext(ctx, `INSERT INTO signing_lifetime (max_seconds) VALUES (?)`, seconds(d))
	return err
}

// seconds is d in whole seconds, rounded up: a lifetime is never
// recorded shorter than it is.
func seconds(d time.Duration) int64 { return int64((d + time.Second - 1) / time.Second) }

func (t *sqliteTx) Add(ctx context.Context, r Record) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO signing_keys (kid, alg, private_key, created_at, signs_from, retire_after) VALUES (?, ?, ?, ?, ?, ?)`,
		r.ID, r.Alg, r.Private, r.CreatedAt.Unix(), r.SignsFrom.Unix(), nullUnix(r.RetireAfter))
	return err
}

func (t *sqliteTx) SetRetireAfter(ctx context.Context, id string, at time.Time) error {
	_, err := t.tx.ExecContext(ctx, `UPDATE signing_keys SET retire_after = ? WHERE kid = ?`, at.Unix(), id)
	return err
}

func (t *sqliteTx) Delete(ctx context.Context, id string) error {
	_, err := t.tx.ExecContext(ctx, `DELETE FROM signing_keys WHERE kid = ?`, id)
	return err
}

func nullUnix(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.Unix(), Valid: true}
}

// pgStore keeps keys in the signing_keys table of a PostgreSQL store; an
// Update holds the keys' advisory lock for its transaction.
type pgStore struct{ pool *pgxpool.Pool }

type pgQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func (s *pgStore) Records(ctx context.Context) ([]Record, error) {
	recs, err := pgRecords(ctx, s.pool)
	return recs, consent.PGError(err)
}

func (s *pgStore) MaxLifetime(ctx context.Context) (time.Duration, error) {
	d, err := pgLifetime(ctx, s.pool)
	return d, consent.PGError(err)
}

func pgLifetime(ctx context.Context, q pgQuerier) (time.Duration, error) {
	var secs *int64
	if err := q.QueryRow(ctx, `SELECT max(max_seconds) FROM signing_lifetime`).Scan(&secs); err != nil {
		return 0, err
	}
	if secs == nil {
		return 0, nil
	}
	return time.Duration(*secs) * time.Second, nil
}

func (s *pgStore) Update(ctx context.Context, fn func(Tx) error) error {
	return consent.PGError(pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, consent.PGKeysLock); err != nil {
			return err
		}
		return fn(&pgTx{tx})
	}))
}

func pgRecords(ctx context.Context, q pgQuerier) ([]Record, error) {
	rows, err := q.Query(ctx, `SELECT kid, alg, private_key, created_at, signs_from, retire_after FROM signing_keys ORDER BY signs_from, kid`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		var r Record
		var retire *time.Time
		if err := rows.Scan(&r.ID, &r.Alg, &r.Private, &r.CreatedAt, &r.SignsFrom, &retire); err != nil {
			return nil, err
		}
		if retire != nil {
			r.RetireAfter = *retire
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

type pgTx struct{ tx pgx.Tx }

func (t *pgTx) Records(ctx context.Context) ([]Record, error) { return pgRecords(ctx, t.tx) }

func (t *pgTx) MaxLifetime(ctx context.Context) (time.Duration, error) { return pgLifetime(ctx, t.tx) }

func (t *pgTx) SetMaxLifetime(ctx context.Context, d time.Duration) error {
	if _, err := t.tx.Exec(ctx, `DELETE FROM signing_lifetime`); err != nil {
		return err
	}
	_, err := t.tx.Exec(ctx, `INSERT INTO signing_lifetime (max_seconds) VALUES ($1)`, seconds(d))
	return err
}

func (t *pgTx) Add(ctx context.Context, r Record) error {
	var retire *time.Time
	if !r.RetireAfter.IsZero() {
		retire = &r.RetireAfter
	}
	_, err := t.tx.Exec(ctx, `INSERT INTO signing_keys (kid, alg, private_key, created_at, signs_from, retire_after) VALUES ($1, $2, $3, $4, $5, $6)`,
		r.ID, r.Alg, r.Private, r.CreatedAt, r.SignsFrom, retire)
	return err
}

func (t *pgTx) SetRetireAfter(ctx context.Context, id string, at time.Time) error {
	_, err := t.tx.Exec(ctx, `UPDATE signing_keys SET retire_after = $1 WHERE kid = $2`, at, id)
	return err
}

func (t *pgTx) Delete(ctx context.Context, id string) error {
	_, err := t.tx.Exec(ctx, `DELETE FROM signing_keys WHERE kid = $1`, id)
	return err
}
