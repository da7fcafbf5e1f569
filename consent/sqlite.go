package consent

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	_ "modernc.org/sqlite" // pure-Go SQLite: the binary stays cgo-free
)

// SQLite is a Store in a SQLite database (WAL mode), the default. Several
// processes may share it: `idtx consent grant` writes while a server reads,
// and the server sees the change at its next request.
type SQLite struct {
	db      *sql.DB
	missing *sql.Stmt
}

const schema = `
CREATE TABLE IF NOT EXISTS consents (
	user    TEXT NOT NULL,
	service TEXT NOT NULL,
	scope   TEXT NOT NULL,
	granted_at INTEGER NOT NULL DEFAULT (unixepoch()),
	PRIMARY KEY (user, service, scope)
) WITHOUT ROWID;`

// maxConns bounds SQLite connections; WAL readers run side by side, and
// writers queue on the busy timeout.
var maxConns = max(4, 2*runtime.GOMAXPROCS(0))

// OpenSQLite opens (creating if needed) the database at path.
func OpenSQLite(path string) (*SQLite, error) {
	if path == "" {
		return nil, fmt.Errorf("sqlite store: empty path")
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("sqlite store: %w", err)
		}
	}
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite store %s: %w", path, err)
	}
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite store %s: %w", path, err)
	}
	// Keep every connection: the default of two idle connections makes a
	// busy server open (and re-prepare on) a new one per request.
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	s := &SQLite{db: db}
	if s.missing, err = db.Prepare(`SELECT scope FROM consents WHERE user = ? AND service = ?`); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite store %s: %w", path, err)
	}
	return s, nil
}

func (s *SQLite) Grant(ctx context.Context, user, service string, scopes []string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, sc := range scopes {
			if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO consents (user, service, scope) VALUES (?, ?, ?)`, user, service, sc); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *SQLite) Revoke(ctx context.Context, user, service string, scopes []string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if len(scopes) == 0 {
			_, err := tx.ExecContext(ctx, `DELETE FROM consents WHERE user = ? AND service = ?`, user, service)
			return err
		}
		for _, sc := range scopes {
			if _, err := tx.ExecContext(ctx, `DELETE FROM consents WHERE user = ? AND service = ? AND scope = ?`, user, service, sc); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *SQLite) List(ctx context.Context, f Filter) ([]Consent, error) {
	var where []string
	var args []any
	if f.User != "" {
		where, args = append(where, "user = ?"), append(args, f.User)
	}
	if f.Service != "" {
		where, args = append(where, "service = ?"), append(args, f.Service)
	}
	q := `SELECT user, service, scope FROM consents`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY user, service, scope`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Consent
	for rows.Next() {
		var user, service, scope string
		if err := rows.Scan(&user, &service, &scope); err != nil {
			return nil, err
		}
		if n := len(out); n > 0 && out[n-1].User == user && out[n-1].Service == service {
			out[n-1].Scopes = append(out[n-1].Scopes, scope)
			continue
		}
		out = append(out, Consent{User: user, Service: service, Scopes: []string{scope}})
	}
	return out, rows.Err()
}

func (s *SQLite) Missing(ctx context.Context, user, service string, scopes []string) ([]string, error) {
	// A point read of a local file: not worth the watcher goroutine that
	// database/sql and the driver start per query for a cancellable ctx.
	rows, err := s.missing.QueryContext(context.WithoutCancel(ctx), user, service)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	have := make(map[string]bool, len(scopes))
	for rows.Next() {
		var sc string
		if err := rows.Scan(&sc); err != nil {
			return nil, err
		}
		have[sc] = true
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return missingFrom(have, scopes), nil
}

func (s *SQLite) Close() error { return s.db.Close() }

func (s *SQLite) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}
