package idtxtest_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/idtx/idtx/idtxtest"
)

// exampleT stands for the *testing.T of the test an example's code would
// be in: examples have none.
type exampleT struct {
	testing.TB
	cleanups []func()
}

func newExampleT() *exampleT                  { return &exampleT{} }
func (t *exampleT) Helper()                   {}
func (t *exampleT) Cleanup(f func())          { t.cleanups = append(t.cleanups, f) }
func (t *exampleT) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }
func (t *exampleT) Fatal(a ...any)            { panic(fmt.Sprint(a...)) }
func (t *exampleT) finish() {
	for _, f := range slices.Backward(t.cleanups) {
		f()
	}
}

// The service under test: it exchanges its caller's token for one to
// call billing-api with (RFC 8693), as its client.
func billingToken(stsURL, userToken string) (string, error) {
	form := url.Values{
		"grant_type":         {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token":      {userToken},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:jwt"},
		"audience":           {"billing-api"},
		"scope":              {"billing:read"},
	}
	req, err := http.NewRequest(http.MethodPost, stsURL+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("demo-client", "demo-secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", &stsError{code: body.Error, status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	}
	return body.AccessToken, nil
}

type stsError struct {
	code       string
	status     int
	retryAfter string
}

func (e *stsError) Error() string { return fmt.Sprintf("sts: %d %s", e.status, e.code) }

// Testing a Go service that exchanges tokens: it gets a token, and asked
// the STS for what it should have.
func Example() {
	t := newExampleT() // in a test: the test's t
	defer t.finish()

	sts := idtxtest.New(t)
	sts.Grant(t, idtxtest.IDP, "bob", "billing-api", "billing:read")

	_, err := billingToken(sts.URL, sts.SubjectToken(t, "bob"))
	fmt.Println("error:", err)

	x := sts.LastExchange(t)
	fmt.Println("client:", x.ClientID, "audience:", x.Audience, "scope:", x.Scope)
	fmt.Println("outcome:", x.Outcome, "sub:", x.Claims["sub"], "aud:", x.Claims["aud"])
	// Output:
	// error: <nil>
	// client: demo-client audience: [billing-api] scope: [billing:read]
	// outcome: ok sub: bob aud: [billing-api]
}

// A subject token broken on purpose: the service must handle the STS's
// refusal.
func ExampleSTS_SubjectToken() {
	t := newExampleT()
	defer t.finish()
	sts := idtxtest.New(t)

	_, err := billingToken(sts.URL, sts.SubjectToken(t, "alice", idtxtest.Broken("expired")))
	fmt.Println("error:", err)
	why, _, _ := strings.Cut(sts.LastExchange(t).ErrorDescription, " at ")
	fmt.Println("why:", why)
	// Output:
	// error: sts: 400 invalid_request
	// why: subject_token: invalid token: expired
}

// Testing a client's retry on a fault: the STS answers 503 with
// Retry-After once, then as usual.
func ExampleSTS_Fault() {
	t := newExampleT()
	defer t.finish()
	sts := idtxtest.New(t)
	sts.Fault(t, "unavailable=1s,times=1")

	user := sts.SubjectToken(t, "alice")
	var tok string
	for attempt := 1; attempt <= 3; attempt++ {
		var err error
		if tok, err = billingToken(sts.URL, user); err == nil {
			break
		}
		wait, _ := strconv.Atoi(err.(*stsError).retryAfter)
		fmt.Printf("attempt %d: %v, retry after %ds\n", attempt, err, wait)
		// The client under test would wait here (on its own clock).
	}
	fmt.Println("token:", tok != "")
	fmt.Println("faults seen:", sts.Exchanges()[0].Faults)
	// Output:
	// attempt 1: sts: 503 temporarily_unavailable, retry after 1s
	// token: true
	// faults seen: [unavailable=1s,times=1]
}

// Testing a resource server that verifies the STS's tokens: their
// signature with the STS's JWKS, iss, aud and, for delegation, act.
func ExampleSTS_AccessToken() {
	t := newExampleT()
	defer t.finish()
	sts := idtxtest.New(t)

	// The resource server reads the STS's keys as it would in production.
	resp, err := http.Get(sts.JWKSURL())
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	keys, err := keyfunc.NewJWKSetJSON(jwks)
	if err != nil {
		t.Fatal(err)
	}
	verify := func(token string) (jwt.MapClaims, error) {
		claims := jwt.MapClaims{}
		_, err := jwt.ParseWithClaims(token, claims, keys.Keyfunc,
			jwt.WithIssuer(sts.URL), jwt.WithAudience("orders-api"), jwt.WithValidMethods([]string{"ES256"}))
		return claims, err
	}

	claims, err := verify(sts.AccessToken(t, "alice", "orders-api", []string{"orders:read"}))
	fmt.Println("verified:", err == nil, "sub:", claims["sub"], "scope:", claims["scope"])

	// Delegation: a gateway acts for alice, who allowed it (may_act).
	form := url.Values{
		"grant_type":         {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token":      {sts.SubjectToken(t, "alice", idtxtest.MayAct("gateway"))},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:jwt"},
		"actor_token":        {sts.SubjectToken(t, "gateway")},
		"actor_token_type":   {"urn:ietf:params:oauth:token-type:jwt"},
		"audience":           {"orders-api"},
	}
	req, _ := http.NewRequest(http.MethodPost, sts.TokenURL(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(idtxtest.Client, idtxtest.Secret)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	claims, err = verify(body.AccessToken)
	fmt.Println("verified:", err == nil, "sub:", claims["sub"], "act:", claims["act"].(map[string]any)["sub"])

	_, err = verify(sts.SubjectToken(t, "alice")) // the IDP's token is not the STS's
	fmt.Println("a mock IDP token refused:", err != nil)
	// Output:
	// verified: true sub: alice scope: orders:read
	// verified: true sub: alice act: gateway
	// a mock IDP token refused: true
}
