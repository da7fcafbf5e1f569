// Package consent stores which scopes each user has consented to give each
// service. The token exchange never asks for consent (CONTRACT §4 step 7):
// it only looks here, so this store is a distinct concept with its own
// backends (memory, SQLite), all held to one conformance suite.
package consent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Consent is one user's consent to one service's scopes.
type Consent struct {
	User    string   `json:"user" yaml:"user"`
	Service string   `json:"service" yaml:"service"`
	Scopes  []string `json:"scopes" yaml:"scopes"`
}

// Filter narrows List; an empty field matches everything.
type Filter struct {
	User    string
	Service string
}

// Store holds consents. Grant and Revoke are idempotent.
type Store interface {
	// Grant records consent to scopes, keeping any already granted.
	Grant(ctx context.Context, user, service string, scopes []string) error
	// Revoke removes consent to scopes, or to every scope when none is named.
	Revoke(ctx context.Context, user, service string, scopes []string) error
	// List returns consents sorted by user then service, scopes sorted.
	List(ctx context.Context, f Filter) ([]Consent, error)
	// Missing returns the scopes, in the order asked, that user has not
	// consented to give service.
	Missing(ctx context.Context, user, service string, scopes []string) ([]string, error)
	Close() error
}

// Open opens the store a URL names: "memory:" or "sqlite:PATH" (a bare
// path is taken as SQLite too).
func Open(url string) (Store, error) {
	switch {
	case url == "memory:":
		return NewMemory(), nil
	case strings.HasPrefix(url, "sqlite:"):
		return OpenSQLite(strings.TrimPrefix(url, "sqlite:"))
	case strings.Contains(url, "://"), strings.HasSuffix(url, ":"):
		return nil, fmt.Errorf("store %q: unknown kind (memory:, sqlite:PATH)", url)
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

func missingFrom(have map[string]bool, scopes []string) []string {
	var missing []string
	for _, s := range scopes {
		if !have[s] {
			missing = append(missing, s)
		}
	}
	return missing
}
