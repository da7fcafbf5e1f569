package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/idtx/idtx/consent"
)

// A second handle on the same file, as `idtx consent grant` is beside a
// running server, sees a grant at its next read.
func TestSQLiteSharedBetweenProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "idtx.db")
	server, err := openSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	cli, err := Open("sqlite:" + path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if m, _ := server.Missing(ctx, "mock", "bob", "billing-api", []string{"billing:read"}); len(m) != 1 {
		t.Fatalf("missing = %v before grant", m)
	}
	if err := cli.Grant(ctx, "mock", "bob", "billing-api", []string{"billing:read"}); err != nil {
		t.Fatal(err)
	}
	if m, _ := server.Missing(ctx, "mock", "bob", "billing-api", []string{"billing:read"}); len(m) != 0 {
		t.Fatalf("missing = %v after grant by another handle", m)
	}
	// Missing reads through readers of its own, kept between calls, that
	// remember what they read while PRAGMA data_version stays put: they
	// see a revocation by the other handle at the next call too.
	if m, _ := server.Missing(ctx, "mock", "bob", "billing-api", []string{"billing:read"}); len(m) != 0 {
		t.Fatalf("missing = %v, remembered", m)
	}
	if !remembers(server, consentKey{"mock", "bob", "billing-api"}) {
		t.Fatal("no reader remembers bob's consent: the lookup read the table each time")
	}
	if n, err := cli.Revoke(ctx, "mock", "bob", "billing-api", nil); err != nil || n != 1 {
		t.Fatalf("revoke: %d %v", n, err)
	}
	cli.Close()
	if m, _ := server.Missing(ctx, "mock", "bob", "billing-api", []string{"billing:read"}); len(m) != 1 {
		t.Fatalf("missing = %v after revoke by another handle", m)
	}
}

// remembers says whether an idle reader of s remembers k's scopes.
func remembers(s *sqliteStore, k consentKey) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.idle {
		if _, ok := r.remembered[k]; ok {
			return true
		}
	}
	return false
}

// A revocation through the handle that looks up, in a process alone on
// the file, decides its next lookup; so does one that a reader learns of
// from this handle's count of writes alone, with data_version unchanged.
func TestSQLiteRememberedConsentsForgotten(t *testing.T) {
	s, err := openSQLite(filepath.Join(t.TempDir(), "idtx.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	alice := consentKey{"mock", "alice", "billing-api"}
	if err := s.Grant(ctx, "mock", "alice", "billing-api", []string{"billing:read", "billing:write"}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if m, err := s.Missing(ctx, "mock", "alice", "billing-api", []string{"billing:read"}); err != nil || len(m) != 0 {
			t.Fatalf("missing %v, %v after grant", m, err)
		}
	}
	if !remembers(s, alice) {
		t.Fatal("alice's consent is not remembered")
	}
	if _, err := s.Revoke(ctx, "mock", "alice", "billing-api", []string{"billing:read"}); err != nil {
		t.Fatal(err)
	}
	if m, err := s.Missing(ctx, "mock", "alice", "billing-api", []string{"billing:read", "billing:write"}); err != nil || !slices.Equal(m, []string{"billing:read"}) {
		t.Fatalf("missing %v, %v after revoke through the same handle, want [billing:read]", m, err)
	}

	// The count of writes alone: a reader whose data_version has not
	// moved, but which remembers a consent from before this handle's
	// last write, reads the table again.
	r, err := s.reader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.release(r)
	v, err := r.dataVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stale := map[string]bool{"billing:read": true}
	r.remembered, r.seen, r.writes = map[consentKey]map[string]bool{alice: stale}, v, s.writes.Load()
	if have, err := r.lookup(ctx, s.writes.Load(), alice); err != nil || !have["billing:read"] {
		t.Fatalf("nothing changed: lookup %v, %v, want the remembered scopes", have, err)
	}
	if have, err := r.lookup(ctx, s.writes.Load()+1, alice); err != nil || have["billing:read"] || !have["billing:write"] {
		t.Fatalf("after a write: lookup %v, %v, want the table's billing:write alone", have, err)
	}
}

// Lookups run side by side on the store's readers while another handle
// grants and revokes; a closed store refuses lookups.
func TestSQLiteConcurrentLookups(t *testing.T) {
	path := filepath.Join(t.TempDir(), "idtx.db")
	server, err := openSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := openSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx := context.Background()
	if err := cli.Grant(ctx, "mock", "alice", "billing-api", []string{"billing:read"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 16 {
		wg.Go(func() {
			for range 50 {
				m, err := server.Missing(ctx, "mock", "alice", "billing-api", []string{"billing:read"})
				if err != nil || len(m) != 0 {
					errs <- fmt.Errorf("alice: missing %v, %v", m, err)
					return
				}
				if _, err := server.Missing(ctx, "mock", "carol", "billing-api", []string{"billing:read"}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for range 20 {
		if err := cli.Grant(ctx, "mock", "carol", "billing-api", []string{"billing:read"}); err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Revoke(ctx, "mock", "carol", "billing-api", nil); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	server.Close()
	if _, err := server.Missing(ctx, "mock", "alice", "billing-api", []string{"billing:read"}); err == nil || err.Error() != "sqlite store: closed" {
		t.Fatalf("Missing after Close: %v, want sqlite store: closed", err)
	}
}

// schema1 is the consent table of idtx before consents named their IDP,
// exactly as that version created it.
const schema1 = `
CREATE TABLE IF NOT EXISTS consents (
	user    TEXT NOT NULL,
	service TEXT NOT NULL,
	scope   TEXT NOT NULL,
	granted_at INTEGER NOT NULL DEFAULT (unixepoch()),
	PRIMARY KEY (user, service, scope)
) WITHOUT ROWID;
INSERT INTO consents (user, service, scope, granted_at) VALUES
	('alice', 'billing-api', 'billing:read', 1700000000),
	('alice', 'billing-api', 'billing:write', 1700000000),
	('bob', 'orders-api', 'orders:read', 1700000000);`

func rawDB(t *testing.T, path, script string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(script); err != nil {
		t.Fatal(err)
	}
}

// A store written by the earlier schema is migrated at open: its
// consents, which never said which IDP's user gave them, are kept as
// legacy consents that no IDP's user is ever granted by, until re-keyed.
func TestSQLiteMigratesSchema1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "idtx.db")
	rawDB(t, path, schema1)
	ctx := context.Background()

	s, err := openSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, idp := range []string{"mock", "mock-saml", "idtx", ""} {
		if m, err := s.Missing(ctx, idp, "alice", "billing-api", []string{"billing:read"}); err != nil || len(m) != 1 {
			t.Errorf("Missing(%q, alice) = %v, %v: a legacy consent was honoured", idp, m, err)
		}
	}
	if list, err := s.List(ctx, consent.Filter{}); err != nil || len(list) != 0 {
		t.Fatalf("List = %+v, %v: legacy consents listed as keyed ones", list, err)
	}
	legacy, err := s.LegacyConsents(ctx, consent.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(legacy) != 2 || !legacy[0].Legacy || legacy[0].IDP != "" || legacy[0].User != "alice" ||
		strings.Join(legacy[0].Scopes, " ") != "billing:read billing:write" || legacy[1].User != "bob" {
		t.Fatalf("LegacyConsents = %+v", legacy)
	}
	if l, _ := s.LegacyConsents(ctx, consent.Filter{Service: "orders-api"}); len(l) != 1 || l[0].User != "bob" {
		t.Fatalf("LegacyConsents(orders-api) = %+v", l)
	}
	s.Close()

	// Opening again changes nothing; the version is recorded.
	s, err = openSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if l, _ := s.LegacyConsents(ctx, consent.Filter{}); len(l) != 2 {
		t.Fatalf("after reopening, LegacyConsents = %+v", l)
	}

	// Re-keying, by user, to the IDP the operator says they came from.
	if _, err := s.AdoptLegacy(ctx, "", consent.Filter{}); !errors.Is(err, consent.ErrEmptyKey) {
		t.Fatalf("AdoptLegacy without an idp = %v", err)
	}
	n, err := s.AdoptLegacy(ctx, "mock", consent.Filter{User: "alice"})
	if err != nil || n != 2 {
		t.Fatalf("AdoptLegacy(mock, alice) = %d, %v; want 2", n, err)
	}
	if m, _ := s.Missing(ctx, "mock", "alice", "billing-api", []string{"billing:read", "billing:write"}); len(m) != 0 {
		t.Errorf("mock's alice still misses %v after re-keying", m)
	}
	if m, _ := s.Missing(ctx, "mock-saml", "alice", "billing-api", []string{"billing:read"}); len(m) != 1 {
		t.Errorf("mock-saml's alice rides on the re-keyed consent")
	}
	if l, _ := s.LegacyConsents(ctx, consent.Filter{}); len(l) != 1 || l[0].User != "bob" {
		t.Fatalf("LegacyConsents after re-keying alice = %+v", l)
	}
	if n, _ := s.AdoptLegacy(ctx, "mock", consent.Filter{User: "alice"}); n != 0 {
		t.Fatalf("second AdoptLegacy moved %d", n)
	}
}

func TestSQLiteRefusesUnknownSchemas(t *testing.T) {
	for name, c := range map[string]struct{ script, err string }{
		"newer version":   {`PRAGMA user_version = 99`, "schema version 99 is newer than this idtx knows (4)"},
		"unknown version": {`PRAGMA user_version = 1`, "unknown schema version 1"},
		"foreign table":   {`CREATE TABLE consents (who TEXT, what TEXT)`, "table consents has unknown columns (who, what)"},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "idtx.db")
			rawDB(t, path, c.script)
			s, err := openSQLite(path)
			if err == nil {
				s.Close()
				t.Fatal("opened")
			}
			if !strings.Contains(err.Error(), c.err) {
				t.Fatalf("err = %v, want %q", err, c.err)
			}
		})
	}
}

func TestOpenRefusesUnknownKinds(t *testing.T) {
	for _, url := range []string{"postgres://x", "redis:"} {
		if _, err := Open(url); err == nil {
			t.Errorf("Open(%q) succeeded", url)
		}
	}
}

// The SQLite store holds the signing keys: the file and its -wal and -shm
// are created readable by their owner alone, whatever the umask; an older
// file readable by others is reported by Exposed.
func TestSQLiteFileModes(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	path := filepath.Join(t.TempDir(), "idtx.db")
	s, err := openSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Grant(context.Background(), "corp", "alice", "billing-api", []string{"x"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %04o, want 0600", filepath.Base(p), fi.Mode().Perm())
		}
	}
	if e := s.Exposed(); len(e) != 0 {
		t.Errorf("Exposed() = %v for a 0600 store", e)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if e := s.Exposed(); len(e) != 1 || e[path] != 0o644 {
		t.Errorf("Exposed() = %v, want %s at 0644", e, path)
	}
}

// A store URL is shown without its password, wherever it sits.
func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://idtx:S3cretPw@db.internal:5432/idtx?sslmode=require": "postgres://idtx:xxxxx@db.internal:5432/idtx?sslmode=require",
		"postgresql://idtx:S3cretPw@db/idtx":                             "postgresql://idtx:xxxxx@db/idtx",
		"postgres://idtx@db/idtx?password=S3cretPw&sslmode=disable":      "postgres://idtx@db/idtx?password=xxxxx&sslmode=disable",
		"postgres://idtx@db/idtx":                                        "postgres://idtx@db/idtx",
		"postgres://idtx:S3cret%zz@db/idtx":                              "postgres://(unparsable URL, not shown)",
		"sqlite:/var/lib/idtx/idtx.db":                                   "sqlite:/var/lib/idtx/idtx.db",
		"memory:":                                                        "memory:",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// URL alone decides which store a command opens: --store, then
// IDTX_STORE, then the config's store key, then SQLite in IDTX_HOME
// (docs/config.md: "--store and IDTX_STORE override it").
func TestURLPrecedence(t *testing.T) {
	home := t.TempDir()
	t.Setenv("IDTX_HOME", home)
	for _, c := range []struct {
		name, flag, env, config, want string
	}{
		{"flag over all", "sqlite:/flag.db", "sqlite:/env.db", "sqlite:/config.db", "sqlite:/flag.db"},
		{"IDTX_STORE over the config", "", "sqlite:/env.db", "sqlite:/config.db", "sqlite:/env.db"},
		{"the config over the default", "", "", "postgres://idtx@db/idtx", "postgres://idtx@db/idtx"},
		{"the default", "", "", "", "sqlite:" + filepath.Join(home, "idtx.db")},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv(EnvStore, c.env)
			got, err := URL(c.flag, c.config)
			if err != nil || got != c.want {
				t.Fatalf("URL(%q, %q) with IDTX_STORE=%q = %q, %v; want %q", c.flag, c.config, c.env, got, err, c.want)
			}
		})
	}
}

// SQLitePath reads Open's SQLite forms and nothing else.
func TestSQLitePath(t *testing.T) {
	for url, want := range map[string]string{"sqlite:/a/idtx.db": "/a/idtx.db", "idtx.db": "idtx.db", "sqlite:": ""} {
		if got, ok := SQLitePath(url); !ok || got != want {
			t.Errorf("SQLitePath(%q) = %q, %v; want %q", url, got, ok, want)
		}
	}
	for _, url := range []string{MemoryURL, "postgres://idtx@db/idtx", "redis:", "http://x"} {
		if got, ok := SQLitePath(url); ok {
			t.Errorf("SQLitePath(%q) = %q: not a SQLite store", url, got)
		}
	}
}

// BenchmarkSQLiteMissing is the consent lookup every exchange that needs
// a consent makes, on 8 goroutines a core as a busy server runs it:
//
//	go test -run '^$' -bench SQLiteMissing ./store
func BenchmarkSQLiteMissing(b *testing.B) {
	s, err := openSQLite(filepath.Join(b.TempDir(), "idtx.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.Grant(ctx, "mock", "alice", "billing-api", []string{"billing:read"}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if m, err := s.Missing(ctx, "mock", "alice", "billing-api", []string{"billing:read"}); err != nil || len(m) != 0 {
				b.Errorf("missing %v, %v", m, err)
				return
			}
		}
	})
}
