package store

import (
	"context"
	"database/sql"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// KeyRecord is one stored signing key (package keyset gives it its
// lifecycle). Private is the PEM of the private key, sealed or not.
type KeyRecord struct {
	ID, Alg, Private                  string
	CreatedAt, SignsFrom, RetireAfter time.Time
}

// KeyTx changes the key set; every replica's changes are serialized.
type KeyTx interface {
	Records(ctx context.Context) ([]KeyRecord, error)
	Add(ctx context.Context, r KeyRecord) error
	SetRetireAfter(ctx context.Context, id string, t time.Time) error
	Delete(ctx context.Context, id string) error
	// MaxLifetime is the longest token lifetime any server or `idtx
	// keys` sharing the store has recorded; zero when none has.
	MaxLifetime(ctx context.Context) (time.Duration, error)
	SetMaxLifetime(ctx context.Context, d time.Duration) error
}

// Keys keeps the signing key set.
type Keys interface {
	Records(ctx context.Context) ([]KeyRecord, error)
	// MaxLifetime is KeyTx.MaxLifetime outside a transaction.
	MaxLifetime(ctx context.Context) (time.Duration, error)
	// Update runs fn in one transaction under a lock that every process
	// sharing the store takes, so that two replicas make one key.
	Update(ctx context.Context, fn func(tx KeyTx) error) error
}

// memoryKeys is a key set in memory: one process's.
type memoryKeys struct {
	mu   sync.Mutex
	recs []KeyRecord
	life time.Duration
}

func (m *memoryKeys) Records(context.Context) ([]KeyRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.recs), nil
}

func (m *memoryKeys) Update(ctx context.Context, fn func(KeyTx) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	tx := &memTx{recs: slices.Clone(m.recs), life: m.life}
	if err := fn(tx); err != nil {
		return err
	}
	m.recs, m.life = tx.recs, tx.life
	return nil
}

func (m *memoryKeys) MaxLifetime(context.Context) (time.Duration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.life, nil
}

type memTx struct {
	recs []KeyRecord
	life time.Duration
}

func (t *memTx) MaxLifetime(context.Context) (time.Duration, error) { return t.life, nil }
func (t *memTx) SetMaxLifetime(_ context.Context, d time.Duration) error {
	t.life = d
	return nil
}

func (t *memTx) Records(context.Context) ([]KeyRecord, error) { return slices.Clone(t.recs), nil }
func (t *memTx) Add(_ context.Context, r KeyRecord) error {
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
	t.recs = slices.DeleteFunc(t.recs, func(r KeyRecord) bool { return r.ID == id })
	return nil
}

// sqliteKeys keeps keys in the signing_keys table of a SQLite store;
// its transactions are immediate, so writers queue on the file's lock.
type sqliteKeys struct{ db *sql.DB }

type sqlQuerier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
}

func (s *sqliteKeys) Records(ctx context.Context) ([]KeyRecord, error) {
	return sqliteRecords(ctx, s.db)
}

func (s *sqliteKeys) MaxLifetime(ctx context.Context) (time.Duration, error) {
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

func (s *sqliteKeys) Update(ctx context.Context, fn func(KeyTx) error) error {
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

func sqliteRecords(ctx context.Context, q sqlQuerier) ([]KeyRecord, error) {
	rows, err := q.QueryContext(ctx, `SELECT kid, alg, private_key, created_at, signs_from, retire_after FROM signing_keys ORDER BY signs_from, kid`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []KeyRecord
	for rows.Next() {
		var r KeyRecord
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

func (t *sqliteTx) Records(ctx context.Context) ([]KeyRecord, error) { return sqliteRecords(ctx, t.tx) }

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

func (t *sqliteTx) Add(ctx context.Context, r KeyRecord) error {
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

// pgKeys keeps keys in the signing_keys table of a PostgreSQL store; an
// Update holds the keys' advisory lock for its transaction.
type pgKeys struct{ pool *pgxpool.Pool }

type pgQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func (s *pgKeys) Records(ctx context.Context) ([]KeyRecord, error) {
	recs, err := pgRecords(ctx, s.pool)
	return recs, pgError(err)
}

func (s *pgKeys) MaxLifetime(ctx context.Context) (time.Duration, error) {
	d, err := pgLifetime(ctx, s.pool)
	return d, pgError(err)
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

func (s *pgKeys) Update(ctx context.Context, fn func(KeyTx) error) error {
	return pgError(pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, pgKeysLock); err != nil {
			return err
		}
		return fn(&pgTx{tx})
	}))
}

func pgRecords(ctx context.Context, q pgQuerier) ([]KeyRecord, error) {
	rows, err := q.Query(ctx, `SELECT kid, alg, private_key, created_at, signs_from, retire_after FROM signing_keys ORDER BY signs_from, kid`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []KeyRecord
	for rows.Next() {
		var r KeyRecord
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

func (t *pgTx) Records(ctx context.Context) ([]KeyRecord, error) { return pgRecords(ctx, t.tx) }

func (t *pgTx) MaxLifetime(ctx context.Context) (time.Duration, error) { return pgLifetime(ctx, t.tx) }

func (t *pgTx) SetMaxLifetime(ctx context.Context, d time.Duration) error {
	if _, err := t.tx.Exec(ctx, `DELETE FROM signing_lifetime`); err != nil {
		return err
	}
	_, err := t.tx.Exec(ctx, `INSERT INTO signing_lifetime (max_seconds) VALUES ($1)`, seconds(d))
	return err
}

func (t *pgTx) Add(ctx context.Context, r KeyRecord) error {
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
