package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/mockidp"
	"github.com/idtx/idtx/oauth"
	"github.com/idtx/idtx/store"
	"github.com/idtx/idtx/stsclient"
	"github.com/idtx/idtx/tui"
)

// Same engine, no drift: each request of the error table (docs/flowchart.md) goes
// through the HTTP handler of `idtx serve --mock`, through `idtx explain
// -o json` and through the walk model, and all three agree on the outcome,
// the OAuth error and the step that failed.
func TestSameEngineNoDrift(t *testing.T) {
	home := t.TempDir()
	t.Setenv("IDTX_HOME", home)
	t.Setenv("IDTX_STORE", "")
	t.Setenv("IDTX_CLIENT_ID", "")
	t.Setenv("IDTX_CLIENT_SECRET", "")
	base, stop, err := startServeTo(io.Discard, home, "--mock", "--store", "memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	token := func(sub string) string {
		tok, err := mockidp.JWT(mockidp.TokenOptions{Sub: sub})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	alice, bob := token("alice"), token("bob")
	a, b := strings.Split(alice, "."), strings.Split(bob, ".")
	forged := a[0] + "." + a[1] + "." + b[2]
	demo := stsclient.ClientAuth{Method: oauth.AuthClientSecretBasic, ClientID: mockidp.DemoClient, Secret: mockidp.DemoSecret}
	restricted := stsclient.ClientAuth{Method: oauth.AuthClientSecretBasic, ClientID: "restricted-client", Secret: "restricted-secret"}
	wrong := stsclient.ClientAuth{Method: oauth.AuthClientSecretBasic, ClientID: mockidp.DemoClient, Secret: "wrong"}
	p := func(sub, aud, scope string, extra ...string) stsclient.ExchangeParams {
		x := url.Values{}
		for i := 0; i+1 < len(extra); i += 2 {
			x.Set(extra[i], extra[i+1])
		}
		return stsclient.ExchangeParams{SubjectToken: sub, SubjectTokenType: oauth.TokenTypeJWT, Audiences: []string{aud}, Scope: scope, Extra: x}
	}
	delegation := p(alice, "orders-api", "")
	delegation.ActorToken, delegation.ActorTokenType = bob, oauth.TokenTypeJWT

	for _, tc := range []struct {
		name       string
		params     stsclient.ExchangeParams
		auth       stsclient.ClientAuth
		code, step string
	}{
		{"accepted", p(alice, "orders-api", ""), demo, "", ""},
		{"invalid_request", p(alice, "orders-api", "", "subject_token_type", "urn:bogus"), demo, "invalid_request", "request"},
		{"invalid_request bad signature", p(forged, "orders-api", ""), demo, "invalid_request", "subject"},
		{"unsupported_grant_type", p(alice, "orders-api", "", "grant_type", "password"), demo, "unsupported_grant_type", "request"},
		{"invalid_client", p(alice, "orders-api", ""), wrong, "invalid_client", "client"},
		{"unauthorized_client", delegation, restricted, "unauthorized_client", "client"},
		{"invalid_target", p(alice, "nope", ""), demo, "invalid_target", "target"},
		{"invalid_scope", p(alice, "orders-api", "nope"), demo, "invalid_scope", "scope"},
		{"consent_required", p(bob, "billing-api", "billing:read"), demo, "consent_required", "consent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check := func(path, code, step string) {
				t.Helper()
				if code != tc.code || step != tc.step {
					t.Errorf("%s: %q at step %q, want %q at %q", path, code, step, tc.code, tc.step)
				}
			}
			// 1. The HTTP handler, and the step from the trace it kept.
			_, _, err := (&stsclient.STS{TokenEndpoint: base + "/token", HTTP: http.DefaultClient, Auth: tc.auth}).Exchange(t.Context(), tc.params)
			var oerr *oauth.Error
			switch {
			case err == nil:
				check("http", "", "")
			case errors.As(err, &oerr):
				rec, ferr := stsclient.FetchTrace(t.Context(), http.DefaultClient, base, oerr.TraceID, stsclient.ClientAuth{})
				if ferr != nil {
					t.Fatalf("trace %q: %v", oerr.TraceID, ferr)
				}
				if rec.Error == nil || rec.Error.Code != oerr.Code {
					t.Fatalf("trace %+v for %v", rec.Error, oerr)
				}
				check("http", oerr.Code, rec.Error.Step)
			default:
				t.Fatal(err)
			}

			// 2. idtx explain -o json.
			args := []string{"explain", "-o", "json", "--subject-token", tc.params.SubjectToken, "--subject-token-type", "jwt",
				"--client-id", tc.auth.ClientID, "--client-secret-file", secretFile(t, tc.auth.Secret)}
			for _, a := range tc.params.Audiences {
				args = append(args, "--audience", a)
			}
			if tc.params.Scope != "" {
				args = append(args, "--scope", tc.params.Scope)
			}
			if tc.params.ActorToken != "" {
				args = append(args, "--actor-token", tc.params.ActorToken)
			}
			for k, v := range tc.params.Extra {
				args = append(args, "--param", k+"="+v[0])
			}
			var out, errOut bytes.Buffer
			code := Run(context.Background(), args, &IO{In: strings.NewReader(""), Out: &out, Err: &errOut})
			var rec stsclient.Record
			if err := json.Unmarshal(out.Bytes(), &rec); err != nil {
				t.Fatalf("explain exit %d: %v\n%s\n%s", code, err, out.String(), errOut.String())
			}
			wantExit := ExitOK
			if tc.code != "" {
				wantExit = ExitRejected
			}
			if code != wantExit {
				t.Errorf("explain exit %d, want %d", code, wantExit)
			}
			if rec.Error == nil {
				check("explain", "", "")
			} else {
				check("explain", rec.Error.Code, rec.Error.Step)
			}

			// 3. The walk model, over the engine walk builds.
			local, err := openLocal(t.Context(), config.LoadFile, store.Open, "", "", "", io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			defer local.store.Close()
			m := tui.New(tui.Options{Engine: local.engine, Consents: local.store, Params: tc.params, Auth: tc.auth}).Finish()
			if f := m.Failed(); f == nil {
				check("walk", "", "")
			} else {
				check("walk", f.Code, f.Step)
			}
		})
	}
}

func secretFile(t *testing.T, secret string) string {
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
