package consent_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/idtx/idtx/consent"
	"github.com/idtx/idtx/consent/consenttest"
)

func TestMemory(t *testing.T) {
	consenttest.Run(t, func(t *testing.T) consent.Store { return consent.NewMemory() })
}

func TestSQLite(t *testing.T) {
	consenttest.Run(t, func(t *testing.T) consent.Store {
		s, err := consent.OpenSQLite(filepath.Join(t.TempDir(), "idtx.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// A second handle on the same file, as `idtx consent grant` is beside a
// running server, sees a grant at its next read.
func TestSQLiteSharedBetweenProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "idtx.db")
	server, err := consent.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	cli, err := consent.Open("sqlite:" + path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if m, _ := server.Missing(ctx, "bob", "billing-api", []string{"billing:read"}); len(m) != 1 {
		t.Fatalf("missing = %v before grant", m)
	}
	if err := cli.Grant(ctx, "bob", "billing-api", []string{"billing:read"}); err != nil {
		t.Fatal(err)
	}
	cli.Close()
	if m, _ := server.Missing(ctx, "bob", "billing-api", []string{"billing:read"}); len(m) != 0 {
		t.Fatalf("missing = %v after grant by another handle", m)
	}
}

func TestOpenRefusesUnknownKinds(t *testing.T) {
	for _, url := range []string{"postgres://x", "redis:"} {
		if _, err := consent.Open(url); err == nil {
			t.Errorf("Open(%q) succeeded", url)
		}
	}
}
