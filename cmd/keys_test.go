package cmd

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func jwksKids(t *testing.T, base string) []string {
	t.Helper()
	resp, err := http.Get(base + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

// `idtx keys rotate` adds a key to the store that servers publish at once
// and sign with from --at; `keys list` shows both, sealed under the KEK.
func TestKeysRotate(t *testing.T) {
	r := newReplicaSetup(t)
	store := "sqlite:" + filepath.Join(t.TempDir(), "idtx.db")
	base := startReplica(t, "--config", r.config, "--store", store)
	first := jwksKid(t, base)

	at := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	kid, errOut, code := run(t, "keys", "rotate", "--config", r.config, "--store", store, "--at", at.Format(time.RFC3339), "--alg", "EdDSA")
	if code != 0 || kid == "" || kid == first {
		t.Fatalf("keys rotate: exit %d, kid %q\n%s", code, kid, errOut)
	}
	if !strings.Contains(errOut, "added key "+kid+" (EdDSA): published from now, signs from "+at.Format(time.RFC3339)) {
		t.Errorf("keys rotate stderr:\n%s", errOut)
	}
	out, errOut, code := run(t, "keys", "list", "--store", store, "-o", "json")
	var rows []keyRow
	if code != 0 || json.Unmarshal([]byte(out), &rows) != nil || len(rows) != 2 {
		t.Fatalf("keys list: exit %d %s %s", code, out, errOut)
	}
	if rows[0].KID != first || rows[0].State != "signing" || !rows[0].Sealed || rows[0].RetireAfter == nil ||
		!rows[0].RetireAfter.Equal(at.Add(5*time.Minute)) || rows[1].KID != kid || rows[1].State != "next" {
		t.Errorf("keys list: %+v", rows)
	}

	// A server started now publishes both and still signs with the first.
	again := startReplica(t, "--config", r.config, "--store", store)
	if kids := jwksKids(t, again); len(kids) != 2 || kids[0] != first || kids[1] != kid {
		t.Fatalf("/jwks after the rotation: %v, want [%s %s]", kids, first, kid)
	}
	status, body := postToken(t, again, exchangeForm(mockSubject(t, "alice")), "demo-client", "demo-secret")
	if status != 400 || body["error"] != "consent_required" {
		t.Fatalf("exchange: %d %v", status, body)
	}
}

// Bad input to keys rotate is a usage error naming the flag; a store's
// sealed keys do not open without their KEK.
func TestKeysRotateRefusals(t *testing.T) {
	r := newReplicaSetup(t)
	store := "sqlite:" + filepath.Join(t.TempDir(), "idtx.db")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--at", "tomorrow"}, ExitUsage, `--at "tomorrow" is not a time: write RFC 3339 such as `},
		{[]string{"--at", "1m"}, ExitUsage, `--at "1m" is not a time: write RFC 3339 such as `},
		{[]string{"--alg", "HS256"}, ExitUsage, `--alg must be ES256, RS256 or EdDSA, not "HS256"`},
		{[]string{"--store", "memory:"}, ExitUsage, "--store memory: lives only inside one server"},
		{[]string{"--kek-file", filepath.Join(t.TempDir(), "none")}, ExitUsage, "signing.kek_file: open"},
	} {
		args := append([]string{"keys", "rotate", "--store", store}, c.args...)
		if _, errOut, code := run(t, args...); code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d %q, want %d %q", c.args, code, errOut, c.code, c.want)
		}
	}
	// Sealed under the config's KEK, then read with another: refused by name.
	if _, errOut, code := run(t, "keys", "rotate", "--config", r.config, "--store", store); code != 0 {
		t.Fatalf("rotate: exit %d %s", code, errOut)
	}
	other := filepath.Join(t.TempDir(), "kek")
	os.WriteFile(other, []byte("ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=\n"), 0o600)
	cfg, _ := os.ReadFile(r.config)
	os.WriteFile(r.config, []byte(strings.Replace(string(cfg), "kek_file: kek", "kek_file: "+other, 1)), 0o600)
	stderr := &syncBuffer{}
	if _, _, err := startServeTo(stderr, t.TempDir(), "--config", r.config, "--store", store); err == nil || !strings.Contains(err.Error(), "does not open with this key-encryption key") {
		t.Fatalf("serve with another KEK: %v", err)
	}
}
