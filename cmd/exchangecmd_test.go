package cmd

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/idtx/idtx/profile"
)

// TestExchangeFlagPrecedence runs `idtx exchange` through its runF hook,
// so nothing is sent: what the command line, IDTX_* variables and a
// profile say is settled flags first, then environment, then profile.
func TestExchangeFlagPrecedence(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	t.Setenv("IDTX_HOME", filepath.Join(dir, "home"))
	for _, k := range []string{"IDTX_STS", "IDTX_CLIENT_ID", "IDTX_CLIENT_SECRET"} {
		t.Setenv(k, "")
	}
	secretFile := filepath.Join(dir, "flag-secret")
	if err := os.WriteFile(secretFile, []byte("flag-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := profile.Add(&profile.Profile{Name: "p", STS: "https://profile.example", ClientID: "pc", AuthMethod: "client_secret_post"}, "profile-secret", profile.StoreFile); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name                    string
		args                    []string
		env                     map[string]string
		sts, id, method, secret string
	}{
		{"profile alone", []string{"--profile", "p"}, nil,
			"https://profile.example", "pc", "client_secret_post", "profile-secret"},
		{"env beats profile", []string{"--profile", "p"}, map[string]string{"IDTX_STS": "https://env.example", "IDTX_CLIENT_SECRET": "env-secret"},
			"https://env.example", "pc", "client_secret_post", "env-secret"},
		{"flags beat env", []string{"--profile", "p", "--sts", "https://flag.example", "--client-secret-file", secretFile, "--auth-method", "client_secret_basic"},
			map[string]string{"IDTX_STS": "https://env.example", "IDTX_CLIENT_SECRET": "env-secret"},
			"https://flag.example", "pc", "client_secret_basic", "flag-secret"},
		{"flag id beats env id", []string{"--client-id", "flagc", "--client-secret-file", secretFile}, map[string]string{"IDTX_CLIENT_ID": "envc", "IDTX_CLIENT_SECRET": "env-secret"},
			DefaultSTS, "flagc", "client_secret_basic", "flag-secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var stderr bytes.Buffer
			ran := false
			c := newExchangeCmd(testFactory(t, &IO{In: strings.NewReader(""), Out: io.Discard, Err: &stderr}), func(o *exchangeOptions) error {
				ran = true
				rc, err := o.resolve(os.Getenv)
				if err != nil {
					return err
				}
				if rc.STS != tc.sts || rc.Auth.ClientID != tc.id || rc.Auth.Method != tc.method || rc.Auth.Secret != tc.secret || rc.Demo {
					t.Errorf("got sts %s, client %s, method %s, secret %q, demo %v; want %s, %s, %s, %q",
						rc.STS, rc.Auth.ClientID, rc.Auth.Method, rc.Auth.Secret, rc.Demo, tc.sts, tc.id, tc.method, tc.secret)
				}
				return nil
			})
			c.SetArgs(append([]string{"--subject-token", "t"}, tc.args...))
			c.SilenceErrors, c.SilenceUsage = true, true
			if err := c.Execute(); err != nil {
				t.Fatalf("exchange %v: %v (stderr %s)", tc.args, err, stderr.String())
			}
			if !ran {
				t.Fatal("runF was not called")
			}
		})
	}
}
