// Package consent stores which scopes each user of each IDP has consented
// to give each service. The token exchange never asks for consent
// (docs/flowchart.md step 7): it only looks here, so this store is a distinct
// concept with its own backends (memory, SQLite, PostgreSQL), all held to one
// conformance suite.
//
// A consent is keyed by (idp, user, service, scope): the same subject
// string from two IDPs names two people, and a user of one IDP never
// rides on a consent given by a user of another.
package consent

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// Consent is one IDP user's consent to one service's scopes.
type Consent struct {
	IDP     string   `json:"idp" yaml:"idp"`
	User    string   `json:"user" yaml:"user"`
	Service string   `json:"service" yaml:"service"`
	Scopes  []string `json:"scopes" yaml:"scopes"`
	// Legacy marks a consent stored before consents named their IDP; it
	// is listed but never honoured (see LegacyStore). Never read from a
	// seed file.
	Legacy bool `json:"legacy,omitempty" yaml:"-"`
}

// Filter narrows List; an empty field matches everything.
type Filter struct {
	IDP     string
	User    string
	Service string
}

// ErrEmptyKey is a Grant or Revoke without an IDP, user or service: a
// consent must name whose it is.
var ErrEmptyKey = errors.New("consent needs an idp, a user and a service")

// Store holds consents. Grant and Revoke are idempotent.
type Store interface {
	// Grant records idp's user's consent to scopes, keeping any already
	// granted. An empty idp, user or service is ErrEmptyKey.
	Grant(ctx context.Context, idp, user, service string, scopes []string) error
	// Revoke removes consent to scopes, or to every scope when none is
	// named, and returns how many scope grants it removed.
	Revoke(ctx context.Context, idp, user, service string, scopes []string) (removed int, err error)
	// List returns consents sorted by idp, then user, then service, with
	// scopes sorted.
	List(ctx context.Context, f Filter) ([]Consent, error)
	// Missing returns the scopes, in the order asked, that idp's user has
	// not consented to give service.
	Missing(ctx context.Context, idp, user, service string, scopes []string) ([]string, error)
	// Ping makes one round trip to the database (none for memory:), so
	// that readiness says whether the store answers now.
	Ping(ctx context.Context) error
	Close() error
}

// LegacyStore is a Store that may hold consents from before consents named
// their IDP (a SQLite file of an earlier idtx). Those are never honoured:
// a consent given by "alice" of an unknown IDP must not let "alice" of
// any IDP through. They stay listed until re-keyed to the IDP they were
// given for with AdoptLegacy (`idtx consent migrate --idp NAME`).
type LegacyStore interface {
	Store
	// LegacyConsents lists the consents without an IDP, Legacy set,
	// filtered by f's User and Service, sorted by user then service.
	LegacyConsents(ctx context.Context, f Filter) ([]Consent, error)
	// AdoptLegacy grants the legacy consents matching f's User and
	// Service to users of idp, removes them from the legacy set, and
	// returns how many scope grants it moved.
	AdoptLegacy(ctx context.Context, idp string, f Filter) (int, error)
}

// Open opens the store a URL names: "memory:", "sqlite:PATH" (a bare
// path is taken as SQLite too) or "postgres://..." (shared by replicas).
func Open(url string) (Store, error) {
	switch {
	case url == "memory:":
		return NewMemory(), nil
	case strings.HasPrefix(url, "sqlite:"):
		return OpenSQLite(strings.TrimPrefix(url, "sqlite:"))
	case IsPostgres(url):
		return OpenPostgres(url)
	case strings.Contains(url, "://"), strings.HasSuffix(url, ":"):
		scheme, _, _ := strings.Cut(url, ":")
		return nil, fmt.Errorf("store %q: unknown kind (memory:, sqlite:PATH, postgres://...)", clip(scheme))
	default:
		return OpenSQLite(url)
	}
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

// DefaultURL is the store used when neither --store nor IDTX_STORE names
// one: SQLite in IDTX_HOME.
func DefaultURL() (string, error) {
	if s := os.Getenv("IDTX_STORE"); s != "" {
		return s, nil
	}
	h, err := Home()
	if err != nil {
		return "", err
	}
	return "sqlite:" + filepath.Join(h, "idtx.db"), nil
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

// checkKey refuses a consent that does not say whose it is.
func checkKey(idp, user, service string) error {
	if idp == "" || user == "" || service == "" {
		return ErrEmptyKey
	}
	return nil
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
