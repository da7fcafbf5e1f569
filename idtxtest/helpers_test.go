package idtxtest_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"

	"github.com/idtx/idtx/idtxtest"
)

const (
	typeJWT         = "urn:ietf:params:oauth:token-type:jwt"
	typeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
	typeSAML2       = "urn:ietf:params:oauth:token-type:saml2"
	typeSAML1       = "urn:ietf:params:oauth:token-type:saml1"
	grantExchange   = "urn:ietf:params:oauth:grant-type:token-exchange"
)

// answer is a token endpoint's answer.
type answer struct {
	Status     int
	RetryAfter string
	Body       map[string]any
}

func (a answer) str(k string) string { s, _ := a.Body[k].(string); return s }

// exchange posts a token exchange of subject (of tokenType) as the demo
// client for audience, over HTTP.
func exchange(t *testing.T, sts *idtxtest.STS, subject, tokenType, audience string, extra ...string) answer {
	t.Helper()
	form := url.Values{
		"grant_type": {grantExchange}, "subject_token": {subject},
		"subject_token_type": {tokenType}, "audience": {audience},
	}
	for i := 0; i+1 < len(extra); i += 2 {
		form.Add(extra[i], extra[i+1])
	}
	req, err := http.NewRequest(http.MethodPost, sts.TokenURL(), strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(idtxtest.Client, idtxtest.Secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /token: %v", err)
	}
	defer resp.Body.Close()
	a := answer{Status: resp.StatusCode, RetryAfter: resp.Header.Get("Retry-After")}
	if err := json.NewDecoder(resp.Body).Decode(&a.Body); err != nil {
		t.Fatalf("POST /token: %d, body not JSON: %v", resp.StatusCode, err)
	}
	return a
}

// fatalTB records the first Fatalf and ends the goroutine, as a test's
// own would.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (f *fatalTB) Cleanup(fn func()) { f.TB.Cleanup(fn) }

// fatal runs fn with a TB that records how fn failed the test ("" if it
// did not).
func fatal(t *testing.T, fn func(testing.TB)) string {
	t.Helper()
	tb := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(tb)
	}()
	<-done
	return tb.msg
}

func jwksKids(t *testing.T, url string) []string {
	t.Helper()
	resp, err := http.Get(url)
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

// kidOf is the kid in a JWT's header.
func kidOf(t *testing.T, jwt string) string {
	t.Helper()
	head, _, _ := strings.Cut(jwt, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}
