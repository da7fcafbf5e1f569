package cmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/idtx/idtx/profile"
)

// TestResolveClient checks the precedence of every setting: flags, then
// environment, then profile, then the profile's stored secret.
func TestResolveClient(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	t.Setenv("IDTX_HOME", filepath.Join(dir, "home"))
	secretFile := filepath.Join(dir, "flag-secret")
	os.WriteFile(secretFile, []byte("flag-secret\n"), 0o600)
	if _, err := profile.Add(&profile.Profile{Name: "p", STS: "https://profile.example", ClientID: "pc", AuthMethod: "client_secret_post"}, "profile-secret", profile.StoreFile); err != nil {
		t.Fatal(err)
	}
	if _, err := profile.Add(&profile.Profile{Name: "pub", STS: "https://pub.example", ClientID: "pubc", AuthMethod: "none"}, "", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := profile.Add(&profile.Profile{Name: "pk", STS: "https://pk.example", ClientID: "pkc", AuthMethod: "private_key_jwt", KeyFile: filepath.Join(dir, "pk.pem")}, "", ""); err != nil {
		t.Fatal(err)
	}
	type want struct {
		sts, id, method, secret string
		demo                    bool
		err, note               string
	}
	for _, tc := range []struct {
		name string
		in   clientInput
		env  map[string]string
		want want
	}{
		{"nothing: demo client, default STS", clientInput{STS: DefaultSTS}, nil, want{sts: DefaultSTS, demo: true}},
		{"IDTX_STS beats the default", clientInput{STS: DefaultSTS}, map[string]string{"IDTX_STS": "https://env.example"}, want{sts: "https://env.example", demo: true}},
		{"--sts beats IDTX_STS", clientInput{STS: "https://flag.example", STSGiven: true}, map[string]string{"IDTX_STS": "https://env.example"}, want{sts: "https://flag.example", demo: true}},
		{"IDTX_STS beats the profile, not for its stored secret", clientInput{Profile: "p"}, map[string]string{"IDTX_STS": "https://env.example"}, want{err: "profile p's secret is kept for its STS https://profile.example: not sending it to https://env.example (from IDTX_STS); drop IDTX_STS, or give the client's secret explicitly with --client-secret-file or IDTX_CLIENT_SECRET"}},
		{"IDTX_STS at the profile's origin keeps its secret", clientInput{Profile: "p"}, map[string]string{"IDTX_STS": "https://PROFILE.example:443/token"}, want{sts: "https://PROFILE.example:443/token", id: "pc", method: "client_secret_post", secret: "profile-secret"}},
		{"IDTX_STS beats the profile with a secret given", clientInput{Profile: "p"}, map[string]string{"IDTX_STS": "https://env.example", "IDTX_CLIENT_SECRET": "env-secret"}, want{sts: "https://env.example", id: "pc", method: "client_secret_post", secret: "env-secret"}},
		{"a profile's key file is bound to its STS too", clientInput{Profile: "pk"}, map[string]string{"IDTX_STS": "https://env.example"}, want{err: "profile pk's key file is kept for its STS https://pk.example: not signing for https://env.example (from IDTX_STS)"}},
		{"--sts on another port is another STS", clientInput{Profile: "p", STS: "https://profile.example:8443", STSGiven: true}, nil, want{err: "profile p's secret is kept for its STS https://profile.example: not sending it to https://profile.example:8443 (from --sts)"}},
		{"profile gives all", clientInput{Profile: "p"}, nil, want{sts: "https://profile.example", id: "pc", method: "client_secret_post", secret: "profile-secret"}},
		{"env secret beats the profile's", clientInput{Profile: "p"}, map[string]string{"IDTX_CLIENT_SECRET": "env-secret"}, want{sts: "https://profile.example", id: "pc", method: "client_secret_post", secret: "env-secret"}},
		{"flag secret beats env", clientInput{Profile: "p", ClientSecretFile: secretFile}, map[string]string{"IDTX_CLIENT_SECRET": "env-secret"}, want{sts: "https://profile.example", id: "pc", method: "client_secret_post", secret: "flag-secret"}},
		{"flag method beats the profile's", clientInput{Profile: "p", AuthMethod: "client_secret_basic"}, nil, want{sts: "https://profile.example", id: "pc", method: "client_secret_basic", secret: "profile-secret"}},
		{"env id beats the profile's, whose secret is not sent", clientInput{Profile: "p"}, map[string]string{"IDTX_CLIENT_ID": "other"}, want{err: "client other (from IDTX_CLIENT_ID) has no secret"}},
		{"flag id beats env id", clientInput{ClientID: "flagc", ClientSecretFile: secretFile}, map[string]string{"IDTX_CLIENT_ID": "envc"}, want{sts: DefaultSTS, id: "flagc", method: "client_secret_basic", secret: "flag-secret"}},
		{"id without secret", clientInput{ClientID: "c"}, nil, want{err: "client c (from --client-id) has no secret: give --client-secret-file FILE, IDTX_CLIENT_SECRET, or --auth-method none for a public client"}},
		{"explicit none", clientInput{ClientID: "c", AuthMethod: "none"}, nil, want{sts: DefaultSTS, id: "c", method: "none"}},
		{"explicit none with a secret", clientInput{ClientID: "c", AuthMethod: "none"}, map[string]string{"IDTX_CLIENT_SECRET": "s"}, want{err: "--auth-method none, but a client secret was given by IDTX_CLIENT_SECRET: drop one of them"}},
		{"profile none with a secret", clientInput{Profile: "pub"}, map[string]string{"IDTX_CLIENT_SECRET": "s"}, want{sts: "https://pub.example", id: "pubc", method: "client_secret_basic", secret: "s", note: "profile pub says auth_method none, but a secret was given by IDTX_CLIENT_SECRET: using client_secret_basic"}},
		{"secret without id", clientInput{}, map[string]string{"IDTX_CLIENT_SECRET": "s"}, want{err: "IDTX_CLIENT_SECRET was given without a client id"}},
		{"missing profile", clientInput{Profile: "nope"}, nil, want{err: `no profile "nope"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			getenv := func(k string) string { return tc.env[k] }
			var warn bytes.Buffer
			r, err := resolveClient(tc.in, getenv, strings.NewReader(""), &warn)
			if tc.want.err != "" {
				var ee *exitError
				if err == nil || !strings.Contains(err.Error(), tc.want.err) || !errors.As(err, &ee) || ee.code != ExitUsage {
					t.Fatalf("err = %v, want usage error containing %q", err, tc.want.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := want{sts: r.STS, id: r.Auth.ClientID, method: r.Auth.Method, secret: r.Auth.Secret, demo: r.Demo, note: strings.TrimSpace(strings.TrimPrefix(warn.String(), "idtx: "))}
			if got != tc.want {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestFriendlyNetError(t *testing.T) {
	refused := fmt.Errorf("dial: %w", syscall.ECONNREFUSED)
	for _, tc := range []struct {
		err  error
		addr string
		want string
	}{
		{refused, DefaultSTS, "nothing listens on 127.0.0.1:8080, the default --sts: start the mock with `idtx serve --mock`, or name an STS with --sts or IDTX_STS"},
		{refused, "http://127.0.0.1:9", "nothing listens on 127.0.0.1:9 (connection refused)"},
		{fmt.Errorf("get: %w", context.DeadlineExceeded), "https://sts.example/token", "no answer from sts.example within 2s"},
		{errors.New("tls: failed to verify certificate: x509: certificate signed by unknown authority"), "https://sts.example", "give its CA certificate with --cacert FILE"},
	} {
		t.Setenv("IDTX_STS", "")
		got := friendlyNetError(tc.err, tc.addr, 2*time.Second).Error()
		if !strings.Contains(got, tc.want) {
			t.Errorf("%v: got %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestCleanToken(t *testing.T) {
	for in, want := range map[string]string{
		"  eyJa.b.c \n":                     "eyJa.b.c",
		"Bearer eyJa.b.c":                   "eyJa.b.c",
		"bearer   eyJa.b.c":                 "eyJa.b.c",
		"Authorization: Bearer eyJa.b.c":    "eyJa.b.c",
		`{"access_token":"eyJa.b.c","x":1}`: "eyJa.b.c",
	} {
		got, err := cleanToken(in)
		if err != nil || got != want {
			t.Errorf("cleanToken(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := cleanToken(`{"error":"invalid_request"}`); err == nil || !strings.Contains(err.Error(), "JSON without an access_token") {
		t.Errorf("JSON without access_token: %v", err)
	}
}
