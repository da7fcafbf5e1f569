package profile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFileStore(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	t.Setenv("IDTX_HOME", filepath.Join(dir, "home"))
	store, err := Add(&Profile{Name: "ci", STS: "https://sts.example", ClientID: "c", AuthMethod: "client_secret_basic"}, "s3cret", StoreFile)
	if err != nil || store != StoreFile {
		t.Fatalf("Add = %q, %v", store, err)
	}
	path, _ := SecretsPath()
	if path != filepath.Join(dir, "home", "secrets.yaml") {
		t.Fatalf("SecretsPath = %s", path)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("secrets file: %v, mode %v", err, info.Mode())
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "config", "idtx", "profiles.yaml")); strings.Contains(string(data), "s3cret") {
		t.Fatal("the secret is in profiles.yaml")
	}
	p, err := Get("ci")
	if err != nil {
		t.Fatal(err)
	}
	if s, err := p.Secret(); err != nil || s != "s3cret" {
		t.Fatalf("Secret = %q, %v", s, err)
	}
	if !strings.Contains(p.SecretLocation(), "mode 0600") {
		t.Fatalf("SecretLocation = %q", p.SecretLocation())
	}

	// A file others may read is refused, with the fix.
	os.Chmod(path, 0o644)
	if _, err := p.Secret(); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("Secret of a 0644 file: %v", err)
	}
	os.Chmod(path, 0o600)

	if err := Remove("ci"); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(path); strings.Contains(string(data), "s3cret") {
		t.Fatal("Remove left the secret behind")
	}
	if err := Remove("ci"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Remove of a missing profile: %v", err)
	}
	if _, err := Add(&Profile{Name: "x", STS: "s"}, "s", "vault"); err == nil {
		t.Fatal("an unknown secret store was accepted")
	}
}
