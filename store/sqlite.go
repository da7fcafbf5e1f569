package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite" // pure-Go SQLite: the binary stays cgo-free

	"github.com/idtx/idtx/consent"
)

// sqliteStore is a Store in a SQLite database (WAL mode), the default. Several
// processes may share it: `idtx consent grant` writes while a server reads,
// and the server sees the change at its next request.
type sqliteStore struct {
	db   *sql.DB
	path string

	// Missing runs on every exchange that needs a consent. It reads
	// through driver connections of its own (query_only), each with the
	// lookup prepared: database/sql's pool and row bookkeeping were a
	// third of the lookup's cost. At most maxReaders are open: a lookup
	// waits for one rather than opening (and preparing on) a connection
	// that is closed again at once, which cost a third of the lookup
	// under load.
	readerDSN string
	slots     chan struct{} // one per reader in use
	mu        sync.Mutex
	idle      []*sqliteReader
	closed    bool

	// writes counts the consent changes committed through this handle.
	// A reader's remembered consents are valid while neither it nor the
	// reader's PRAGMA data_version has changed (see Missing).
	writes atomic.Uint64
}

// sqliteReader is a driver connection with the consent lookup prepared,
// and the consents it read since the database last changed.
type sqliteReader struct {
	conn    driver.Conn
	stmt    driver.Stmt
	version driver.Stmt // PRAGMA data_version

	// seen is the data_version and writes the remembered consents were
	// read under; remembered maps (idp, user, service) to scopes.
	seen       int64
	writes     uint64
	remembered map[consentKey]map[string]bool
}

type consentKey struct{ idp, user, service string }

// maxRemembered bounds the consents a reader remembers; past it, it
// forgets them all and starts again.
const maxRemembered = 1024

const missingQuery = `SELECT scope FROM consents WHERE idp = ? AND user = ? AND service = ?`

// schemaVersion is the PRAGMA user_version of the current schema. Schema 1
// (idtx before consents named their IDP) never set user_version, so it
// reads as 0, like an empty file; the two are told apart by the table.
const schemaVersion = 4

// schema is version 2: a consent names its IDP. legacy_consents holds the
// rows of a schema 1 file, kept apart so that no lookup can honour them.
const schema = `
CREATE TABLE IF NOT EXISTS consents (
	idp     TEXT NOT NULL,
	user    TEXT NOT NULL,
	service TEXT NOT NULL,
	scope   TEXT NOT NULL,
	granted_at INTEGER NOT NULL DEFAULT (unixepoch()),
	PRIMARY KEY (idp, user, service, scope)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS legacy_consents (
	user    TEXT NOT NULL,
	service TEXT NOT NULL,
	scope   TEXT NOT NULL,
	granted_at INTEGER NOT NULL DEFAULT (unixepoch()),
	PRIMARY KEY (user, service, scope)
) WITHOUT ROWID;` + keysSchema + lifetimeSchema

// keysSchema, added in version 3, holds the STS's signing keys (package
// keyset): times are Unix seconds, retire_after NULL until a newer key
// takes over.
const keysSchema = `
CREATE TABLE IF NOT EXISTS signing_keys (
	kid          TEXT PRIMARY KEY,
	alg          TEXT NOT NULL,
	private_key  TEXT NOT NULL,
	created_at   INTEGER NOT NULL,
	signs_from   INTEGER NOT NULL,
	retire_after INTEGER
);`

// lifetimeSchema, added in version 4, records the longest token lifetime
// of any server that used the store (one row, in seconds), so that a key
// leaves the store only when no token any replica signed with it is still
// valid (Keys).
const lifetimeSchema = `
CREATE TABLE IF NOT EXISTS signing_lifetime (
	max_seconds INTEGER NOT NULL
);`

// maxConns bounds SQLite connections; WAL readers run side by side, and
// writers queue on the busy timeout.
var maxConns = max(4, 2*runtime.GOMAXPROCS(0))

// maxReaders bounds the consent lookup's readers: a lookup is a few
// microseconds of CPU, so more than a few per core only queue on it.
var maxReaders = max(8, 4*runtime.GOMAXPROCS(0))

// openSQLite opens (creating if needed) the database at path, migrating a
// file of an earlier schema first. Consents of schema 1, which did not
// name an IDP, are moved to the legacy set: listed, never honoured (see
// Legacy).
func openSQLite(path string) (*sqliteStore, error) {
	if path == "" {
		return nil, fmt.Errorf("sqlite store: empty path")
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("sqlite store: %w", err)
		}
	}
	// The file holds the signing keys: create it readable by its owner
	// alone. SQLite gives the -wal and -shm files the mode of the
	// database, so they follow.
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		f.Close()
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	readerDSN := "file:" + path + "?" + q.Encode() + "&_pragma=query_only(1)"
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite store %s: %w", path, err)
	}
	if err := migrate(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite store %s: %w", path, err)
	}
	// Keep every connection: the default of two idle connections makes a
	// busy server open (and re-prepare on) a new one per request.
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	s := &sqliteStore{db: db, path: path, readerDSN: readerDSN, slots: make(chan struct{}, maxReaders)}
	// Open one reader now, so that a file the lookup cannot read fails
	// here rather than at the first exchange.
	r, err := s.reader(context.Background())
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite store %s: %w", path, err)
	}
	s.release(r)
	return s, nil
}

// reader is an idle reader, or a new one, once fewer than maxReaders are
// in use; release or discard gives it back.
func (s *sqliteStore) reader(ctx context.Context) (*sqliteReader, error) {
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.slots
		return nil, errors.New("sqlite store: closed")
	}
	if n := len(s.idle); n > 0 {
		r := s.idle[n-1]
		s.idle = s.idle[:n-1]
		s.mu.Unlock()
		return r, nil
	}
	s.mu.Unlock()
	r, err := s.openReader()
	if err != nil {
		<-s.slots
		return nil, err
	}
	return r, nil
}

func (s *sqliteStore) openReader() (*sqliteReader, error) {
	conn, err := (&sqlite.Driver{}).Open(s.readerDSN)
	if err != nil {
		return nil, err
	}
	r := &sqliteReader{conn: conn}
	if r.stmt, err = conn.Prepare(missingQuery); err == nil {
		r.version, err = conn.Prepare(`PRAGMA data_version`)
	}
	if err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

// release keeps r for the next lookup.
func (s *sqliteStore) release(r *sqliteReader) {
	s.mu.Lock()
	if !s.closed {
		s.idle = append(s.idle, r)
		r = nil
	}
	s.mu.Unlock()
	<-s.slots
	if r != nil {
		r.close()
	}
}

// discard closes r, a reader that failed, and frees its slot.
func (s *sqliteStore) discard(r *sqliteReader) {
	r.close()
	<-s.slots
}

func (r *sqliteReader) close() {
	for _, st := range []driver.Stmt{r.stmt, r.version} {
		if st != nil {
			st.Close()
		}
	}
	r.conn.Close()
}

// dataVersion is PRAGMA data_version on r's connection: it changes when
// any other connection, of this process or another, commits a change to
// the file (https://sqlite.org/pragma.html#pragma_data_version).
func (r *sqliteReader) dataVersion(ctx context.Context) (int64, error) {
	rows, err := r.version.(driver.StmtQueryContext).QueryContext(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	dest := make([]driver.Value, 1)
	if err := rows.Next(dest); err != nil {
		return 0, fmt.Errorf("PRAGMA data_version: %w", err)
	}
	v, ok := dest[0].(int64)
	if !ok {
		return 0, fmt.Errorf("PRAGMA data_version is %T, not an integer", dest[0])
	}
	return v, nil
}

// scopes is the scopes granted to (idp, user, service).
func (r *sqliteReader) scopes(ctx context.Context, idp, user, service string) (map[string]bool, error) {
	rows, err := r.stmt.(driver.StmtQueryContext).QueryContext(ctx, []driver.NamedValue{
		{Ordinal: 1, Value: idp}, {Ordinal: 2, Value: user}, {Ordinal: 3, Value: service}})
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	have := map[string]bool{}
	dest := make([]driver.Value, 1)
	for {
		switch err := rows.Next(dest); {
		case err == io.EOF:
			return have, nil
		case err != nil:
			return nil, err
		}
		switch v := dest[0].(type) {
		case string:
			have[v] = true
		case []byte:
			have[string(v)] = true
		default:
			return nil, fmt.Errorf("consents.scope is %T, not text", v)
		}
	}
}

// migrate brings the file to schemaVersion in one immediate transaction,
// so two processes opening a file at once migrate it once.
func migrate(db *sql.DB) error {
	tx, err := db.BeginTx(context.Background(), nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var version int
	if err := tx.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil {
		return err
	}
	switch {
	case version == schemaVersion:
		return nil
	case version > schemaVersion:
		return fmt.Errorf("schema version %d is newer than this idtx knows (%d): use a newer idtx", version, schemaVersion)
	case version == 2 || version == 3:
		if _, err := tx.Exec(keysSchema + lifetimeSchema); err != nil {
			return fmt.Errorf("migrate schema %d: %w", version, err)
		}
		if _, err := tx.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion)); err != nil {
			return err
		}
		return tx.Commit()
	case version != 0:
		return fmt.Errorf("unknown schema version %d", version)
	}
	cols, err := columns(tx, "consents")
	if err != nil {
		return err
	}
	switch {
	case len(cols) == 0: // a new file
	case slices.Equal(cols, []string{"user", "service", "scope", "granted_at"}):
		// Schema 1: keyed by user alone. Its rows must not be read as a
		// consent of any one IDP, so they move aside whole.
		if _, err := tx.Exec(`ALTER TABLE consents RENAME TO legacy_consents`); err != nil {
			return fmt.Errorf("migrate schema 1: %w", err)
		}
	default:
		return fmt.Errorf("table consents has unknown columns (%s) and no schema version: not an idtx consent store", strings.Join(cols, ", "))
	}
	if _, err := tx.Exec(schema); err != nil {
		return err
	}
	if _, err := tx.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion)); err != nil {
		return err
	}
	return tx.Commit()
}

// columns lists table's columns in order; none when it does not exist.
func columns(tx *sql.Tx, table string) ([]string, error) {
	rows, err := tx.Query(`SELECT name FROM pragma_table_info(?) ORDER BY cid`, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cols []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		cols = append(cols, c)
	}
	return cols, rows.Err()
}

func (s *sqliteStore) Grant(ctx context.Context, idp, user, service string, scopes []string) error {
	if err := consent.CheckKey(idp, user, service); err != nil {
		return err
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, sc := range scopes {
			if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO consents (idp, user, service, scope) VALUES (?, ?, ?, ?)`, idp, user, service, sc); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *sqliteStore) Revoke(ctx context.Context, idp, user, service string, scopes []string) (int, error) {
	if err := consent.CheckKey(idp, user, service); err != nil {
		return 0, err
	}
	removed := 0
	del := func(tx *sql.Tx, q string, args ...any) error {
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		removed += int(n)
		return err
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if len(scopes) == 0 {
			return del(tx, `DELETE FROM consents WHERE idp = ? AND user = ? AND service = ?`, idp, user, service)
		}
		for _, sc := range scopes {
			if err := del(tx, `DELETE FROM consents WHERE idp = ? AND user = ? AND service = ? AND scope = ?`, idp, user, service, sc); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return removed, nil
}

// where builds the WHERE clause of f's non-empty fields.
func where(f consent.Filter, withIDP bool) (string, []any) {
	var conds []string
	var args []any
	for _, c := range []struct{ col, v string }{{"idp", f.IDP}, {"user", f.User}, {"service", f.Service}} {
		if c.v == "" || (c.col == "idp" && !withIDP) {
			continue
		}
		conds, args = append(conds, c.col+" = ?"), append(args, c.v)
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

func (s *sqliteStore) List(ctx context.Context, f consent.Filter) ([]consent.Consent, error) {
	w, args := where(f, true)
	return s.list(ctx, `SELECT idp, user, service, scope FROM consents`+w+` ORDER BY idp, user, service, scope`, args, false)
}

// LegacyConsents lists the schema 1 consents that named no IDP.
func (s *sqliteStore) LegacyConsents(ctx context.Context, f consent.Filter) ([]consent.Consent, error) {
	w, args := where(f, false)
	return s.list(ctx, `SELECT '', user, service, scope FROM legacy_consents`+w+` ORDER BY user, service, scope`, args, true)
}

func (s *sqliteStore) list(ctx context.Context, q string, args []any, legacy bool) ([]consent.Consent, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []consent.Consent
	for rows.Next() {
		var idp, user, service, scope string
		if err := rows.Scan(&idp, &user, &service, &scope); err != nil {
			return nil, err
		}
		if n := len(out); n > 0 && out[n-1].IDP == idp && out[n-1].User == user && out[n-1].Service == service {
			out[n-1].Scopes = append(out[n-1].Scopes, scope)
			continue
		}
		out = append(out, consent.Consent{IDP: idp, User: user, Service: service, Scopes: []string{scope}, Legacy: legacy})
	}
	return out, rows.Err()
}

// AdoptLegacy re-keys schema 1 consents to users of idp.
func (s *sqliteStore) AdoptLegacy(ctx context.Context, idp string, f consent.Filter) (int, error) {
	if idp == "" {
		return 0, consent.ErrEmptyKey
	}
	w, args := where(f, false)
	moved := 0
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO consents (idp, user, service, scope, granted_at)
			SELECT ?, user, service, scope, granted_at FROM legacy_consents`+w, append([]any{idp}, args...)...); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM legacy_consents`+w, args...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		moved = int(n)
		return err
	})
	if err != nil {
		return 0, err
	}
	return moved, nil
}

// Missing answers from what the reader remembers while the database has
// not changed since it read it, which one PRAGMA data_version on the
// reader's connection tells: a grant or revocation committed by any
// process is seen by the next lookup that starts after it, as when every
// lookup read the table. This handle's own writes are counted as well, so
// that the rule does not rest on data_version alone.
func (s *sqliteStore) Missing(ctx context.Context, idp, user, service string, scopes []string) ([]string, error) {
	r, err := s.reader(ctx)
	if err != nil {
		return nil, err
	}
	// A point read of a local file: not worth the watcher goroutine the
	// driver starts per query for a cancellable ctx.
	have, err := r.lookup(context.WithoutCancel(ctx), s.writes.Load(), consentKey{idp, user, service})
	if err != nil {
		s.discard(r) // a connection that failed is not kept
		return nil, err
	}
	s.release(r)
	return missingFrom(have, scopes), nil
}

// lookup is the scopes granted to k: remembered, if neither data_version
// nor writes (read before it) changed since they were read; else read.
func (r *sqliteReader) lookup(ctx context.Context, writes uint64, k consentKey) (map[string]bool, error) {
	v, err := r.dataVersion(ctx)
	if err != nil {
		return nil, err
	}
	if r.remembered == nil || v != r.seen || writes != r.writes || len(r.remembered) >= maxRemembered {
		// Whatever changed is read again; a change committed between
		// data_version and the read below only makes the next lookup
		// read again too.
		r.remembered, r.seen, r.writes = make(map[consentKey]map[string]bool), v, writes
	}
	if have, ok := r.remembered[k]; ok {
		return have, nil
	}
	have, err := r.scopes(ctx, k.idp, k.user, k.service)
	if err != nil {
		r.remembered = nil
		return nil, err
	}
	r.remembered[k] = have
	return have, nil
}

// Ping reads from the file: a file removed or made unreadable under a
// running server fails here.
func (s *sqliteStore) Ping(ctx context.Context) error {
	var one int
	return s.db.QueryRowContext(ctx, `SELECT count(*) FROM signing_keys`).Scan(&one)
}

// Close closes the database and the lookup's readers.
func (s *sqliteStore) Close() error {
	s.mu.Lock()
	s.closed = true
	idle := s.idle
	s.idle = nil
	s.mu.Unlock()
	for _, r := range idle {
		r.close()
	}
	return s.db.Close()
}

// Exposed lists the store's files (the database, its -wal and -shm) that
// users other than the owner may read or write, with their modes: the
// file holds the signing keys and the consents.
func (s *sqliteStore) Exposed() map[string]fs.FileMode {
	out := map[string]fs.FileMode{}
	for _, p := range []string{s.path, s.path + "-wal", s.path + "-shm"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o077 != 0 {
			out[p] = fi.Mode().Perm()
		}
	}
	return out
}

// Keys is the key set in the file's signing_keys table.
func (s *sqliteStore) Keys() Keys { return &sqliteKeys{db: s.db} }

// Replay remembers in this process: replicas share a PostgreSQL store,
// not a SQLite file.
func (s *sqliteStore) Replay(now func() time.Time, limit int) ReplayCache {
	return NewMemoryReplayCache(now, limit)
}

// tx runs fn in a transaction that changes consents: once it ended,
// whatever the readers remember is read again.
func (s *sqliteStore) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer s.writes.Add(1)
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

var (
	_ Store  = (*sqliteStore)(nil)
	_ Legacy = (*sqliteStore)(nil)
	_ Files  = (*sqliteStore)(nil)
)
