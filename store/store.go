// Package store owns idtx's database: the connection, the schema and its
// migrations, for each backend (memory, SQLite, PostgreSQL). It is a
// distinct concept from what it keeps: consents (package consent), the
// private_key_jwt jti replay cache (package exchange) and the signing
// keys (package keyset) all live in one file or database, because
// replicas must agree on all three and an operator backs up one thing.
// Each kind of data is one small interface here, and every backend is
// held to one conformance suite per kind (package store/conformance), so
// that a new backend is one file in this package and nothing else
// changes.
package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/idtx/idtx/consent"
)

// Store is one opened database.
type Store interface {
	Consents
	Pinger
	// Keys is the signing key set kept in the same database.
	Keys() Keys
	// Replay is the client assertion replay cache on the clock now (nil
	// for time.Now), holding at most limit unexpired jti values per
	// client (DefaultReplayLimit if 0). A shared database gives one that
	// every replica sees; the others remember in this process.
	Replay(now func() time.Time, limit int) ReplayCache
	Close() error
}

// Consents holds consents. Grant and Revoke are idempotent.
type Consents interface {
	// Grant records idp's user's consent to scopes, keeping any already
	// granted. An empty idp, user or service is consent.ErrEmptyKey.
	Grant(ctx context.Context, idp, user, service string, scopes []string) error
	// Revoke removes consent to scopes, or to every scope when none is
	// named, and returns how many scope grants it removed.
	Revoke(ctx context.Context, idp, user, service string, scopes []string) (removed int, err error)
	// List returns consents sorted by idp, then user, then service, with
	// scopes sorted.
	List(ctx context.Context, f consent.Filter) ([]consent.Consent, error)
	// Missing returns the scopes, in the order asked, that idp's user has
	// not consented to give service. It runs on every exchange that needs
	// a consent: one read.
	Missing(ctx context.Context, idp, user, service string, scopes []string) ([]string, error)
}

// Pinger says whether the database answers now.
type Pinger interface {
	// Ping makes one round trip to the database (none for memory:), so
	// that readiness says whether the store answers now.
	Ping(ctx context.Context) error
}

// Legacy is a store that may hold consents from before consents named
// their IDP (a SQLite file of an earlier idtx). Those are never honoured:
// a consent given by "alice" of an unknown IDP must not let "alice" of
// any IDP through. They stay listed until re-keyed to the IDP they were
// given for with AdoptLegacy (`idtx consent migrate --idp NAME`).
type Legacy interface {
	// LegacyConsents lists the consents without an IDP, Legacy set,
	// filtered by f's User and Service, sorted by user then service.
	LegacyConsents(ctx context.Context, f consent.Filter) ([]consent.Consent, error)
	// AdoptLegacy grants the legacy consents matching f's User and
	// Service to users of idp, removes them from the legacy set, and
	// returns how many scope grants it moved.
	AdoptLegacy(ctx context.Context, idp string, f consent.Filter) (int, error)
}

// Files is a store kept in local files.
type Files interface {
	// Exposed lists the store's files that users other than the owner
	// may read or write, with their modes: they hold the signing keys
	// and the consents.
	Exposed() map[string]fs.FileMode
}

// ErrUnavailable wraps a store error that says the database cannot be
// reached (connection refused or cut, server shutting down): the request
// may succeed when retried, so the STS answers temporarily_unavailable.
var ErrUnavailable = errors.New("store is unavailable")

// MemoryURL is the URL of a store in this process's memory.
const MemoryURL = "memory:"

// Open opens the store a URL names: "memory:", "sqlite:PATH" (a bare
// path is taken as SQLite too) or "postgres://..." (shared by replicas).
func Open(url string) (Store, error) {
	switch {
	case url == MemoryURL:
		return NewMemory(), nil
	case IsPostgres(url):
		return openPostgres(url)
	}
	path, ok := SQLitePath(url)
	if !ok {
		scheme, _, _ := strings.Cut(url, ":")
		return nil, fmt.Errorf("store %q: unknown kind (memory:, sqlite:PATH, postgres://...)", clip(scheme))
	}
	return openSQLite(path)
}

// SQLitePath is the file a SQLite store URL names (Open's forms:
// "sqlite:PATH" or a bare path), and whether url names one.
func SQLitePath(url string) (string, bool) {
	if p, ok := strings.CutPrefix(url, "sqlite:"); ok {
		return p, true
	}
	if url == MemoryURL || strings.Contains(url, "://") || strings.HasSuffix(url, ":") {
		return "", false
	}
	return url, true
}

// IsPostgres reports whether url names a PostgreSQL store.
func IsPostgres(url string) bool {
	return strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://")
}

// EnvStore names the store when --store does not, over the config's store
// key (docs/config.md).
const EnvStore = "IDTX_STORE"

// URL is the store a command opens, decided here alone: the --store
// flag; else IDTX_STORE; else the config's store key; else SQLite in
// IDTX_HOME (docs/config.md, docs/cli.md).
func URL(flag, config string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if s := os.Getenv(EnvStore); s != "" {
		return s, nil
	}
	if config != "" {
		return config, nil
	}
	h, err := Home()
	if err != nil {
		return "", err
	}
	return "sqlite:" + filepath.Join(h, "idtx.db"), nil
}

// Home is IDTX_HOME, or $XDG_DATA_HOME/idtx, or ~/.local/share/idtx.
func Home() (string, error) {
	if h := os.Getenv("IDTX_HOME"); h != "" {
		return h, nil
	}
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "idtx"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no IDTX_HOME and no home folder: %w", err)
	}
	return filepath.Join(home, ".local", "share", "idtx"), nil
}

// Redact is a store URL fit to print or log: the password of a
// postgres:// URL, in its user info or as a password= parameter, is
// replaced by "xxxxx". Every place that shows a store URL uses it.
func Redact(storeURL string) string {
	if !IsPostgres(storeURL) {
		return storeURL
	}
	u, err := url.Parse(storeURL)
	if err != nil {
		// Unparsable: keep the scheme alone rather than risk a secret.
		scheme, _, _ := strings.Cut(storeURL, "://")
		return scheme + "://(unparsable URL, not shown)"
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// clip shortens text quoted in an error to 64 bytes.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

func missingFrom(have map[string]bool, scopes []string) []string {
	var missing []string
	for _, s := range scopes {
		if !have[s] {
			missing = append(missing, s)
		}
	}
	return missing
}
