package cmd

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/idtx/idtx/oauth"
	"github.com/idtx/idtx/stsclient"
)

// TestPrintCurlSendsTheSameRequest runs the command --print-curl prints
// through bash against a recording server, and holds what curl sent to
// what idtx itself sends: the same form values, byte for byte, for values
// with a newline, a tab, quotes, a backslash, non-ASCII, a bidi override
// and an invalid UTF-8 byte.
func TestPrintCurlSendsTheSameRequest(t *testing.T) {
	for _, tool := range []string{"bash", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s", tool)
		}
	}
	type sent struct {
		form url.Values
		auth string
	}
	var mu sync.Mutex
	var got []sent
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, err := url.ParseQuery(string(body))
		if err != nil {
			t.Errorf("body %q: %v", body, err)
		}
		mu.Lock()
		got = append(got, sent{form, r.Header.Get("Authorization")})
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"error":"invalid_request"}`))
	}))
	defer srv.Close()

	params := stsclient.ExchangeParams{
		SubjectToken: "subject.tok.en", SubjectTokenType: oauth.TokenTypeJWT,
		ActorToken: "actor.tok.en", ActorTokenType: oauth.TokenTypeJWT,
		Scope:     "read\nwrite\tadmin it's \"q\" back\\slash $HOME `id`",
		Audiences: []string{"ünïcödé 日本", "bidi \u202e txt", "bad \xff byte"},
		Resources: []string{"https://api.example/a b?x=1&y=2#"},
		Extra:     url.Values{"a@b": {"file?"}, "k y": {"v=w&z"}, "nl": {"\n"}, "empty": {""}},
	}
	for _, auth := range []stsclient.ClientAuth{
		{Method: oauth.AuthClientSecretBasic, ClientID: "cli ent:1", Secret: "s3cret"},
		{Method: oauth.AuthClientSecretPost, ClientID: "cli\nent", Secret: "s3cret"},
		{Method: oauth.AuthNone, ClientID: "pub'lic"},
	} {
		t.Run(auth.Method, func(t *testing.T) {
			mu.Lock()
			got = nil
			mu.Unlock()
			sts := &stsclient.STS{TokenEndpoint: srv.URL + "/token", HTTP: srv.Client(), Auth: auth}
			var script bytes.Buffer
			if err := printCurl(&script, sts, params); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("bash", "-c", script.String())
			cmd.Env = append(os.Environ(), "SUBJECT_TOKEN=subject.tok.en", "ACTOR_TOKEN=actor.tok.en", "IDTX_CLIENT_SECRET=s3cret")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("bash: %v: %s\n%s", err, out, script.String())
			}
			if _, _, err := sts.Exchange(context.Background(), params); err == nil {
				t.Fatal("the recording server accepted")
			}
			mu.Lock()
			defer mu.Unlock()
			if len(got) != 2 {
				t.Fatalf("%d requests, want 2", len(got))
			}
			curl, idtx := got[0], got[1]
			if !reflect.DeepEqual(curl.form, idtx.form) {
				t.Errorf("curl sent  %q\nidtx sent %q\nscript:\n%s", curl.form, idtx.form, script.String())
			}
			if curl.auth != idtx.auth {
				t.Errorf("curl Authorization %q, idtx %q", curl.auth, idtx.auth)
			}
			if strings.ContainsAny(script.String(), "\t\r\u202e") || strings.Count(script.String(), "\n") != strings.Count(script.String(), "\\\n")+2 {
				t.Errorf("the printed command has raw control characters:\n%q", script.String())
			}
		})
	}
}
