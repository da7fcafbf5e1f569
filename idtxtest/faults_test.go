package idtxtest_test

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/idtx/idtx/idtxtest"
)

// TestFaultUnavailable: 503 temporarily_unavailable with Retry-After for
// the next N requests, then the exchange as usual; each shows the fault
// in its trace.
func TestFaultUnavailable(t *testing.T) {
	t.Parallel()
	sts := idtxtest.New(t)
	sts.Fault(t, "unavailable=3s,times=2")
	if got := sts.Faults(); !reflect.DeepEqual(got, []string{"unavailable=3s,times=2"}) {
		t.Fatalf("Faults() = %q", got)
	}
	tok := sts.SubjectToken(t, "alice")
	for i := range 2 {
		a := exchange(t, sts, tok, typeJWT, "orders-api")
		if a.Status != 503 || a.RetryAfter != "3" || a.str("error") != "temporarily_unavailable" ||
			a.str("error_description") != "the mock STS is unavailable (fault unavailable=3s,times=2)" {
			t.Fatalf("request %d: %d Retry-After %q %v", i, a.Status, a.RetryAfter, a.Body)
		}
		x := sts.LastExchange(t)
		if x.Outcome != "refused" || x.Error != "temporarily_unavailable" || !reflect.DeepEqual(x.Faults, []string{"unavailable=3s,times=2"}) || x.ClientID != idtxtest.Client {
			t.Fatalf("request %d: exchange %+v", i, x)
		}
	}
	if a := exchange(t, sts, tok, typeJWT, "orders-api"); a.Status != 200 {
		t.Fatalf("after times=2: %d %v", a.Status, a.Body)
	}
	if x := sts.LastExchange(t); x.Faults != nil || x.Outcome != "ok" {
		t.Fatalf("after times=2: exchange %+v", x)
	}
	if got := sts.Faults(); len(got) != 0 {
		t.Fatalf("Faults() after times=2 = %q", got)
	}
}

// TestFaultError answers the OAuth error given, with its status, until
// cleared.
func TestFaultError(t *testing.T) {
	t.Parallel()
	sts := idtxtest.New(t, idtxtest.WithFaults("error=invalid_grant"))
	tok := sts.SubjectToken(t, "alice")
	for range 2 {
		a := exchange(t, sts, tok, typeJWT, "orders-api")
		if a.Status != 400 || a.str("error") != "invalid_grant" || a.str("error_description") != "the mock STS answers invalid_grant (fault error=invalid_grant)" {
			t.Fatalf("%d %v", a.Status, a.Body)
		}
	}
	sts.ClearFaults()
	if a := exchange(t, sts, tok, typeJWT, "orders-api"); a.Status != 200 {
		t.Fatalf("after ClearFaults: %d %v", a.Status, a.Body)
	}
	sts.Fault(t, "error=invalid_client,times=1")
	if a := exchange(t, sts, tok, typeJWT, "orders-api"); a.Status != 401 || a.str("error") != "invalid_client" {
		t.Fatalf("invalid_client: %d %v", a.Status, a.Body)
	}
}

// TestFaultDrop closes the connection with no answer; the trace says so.
func TestFaultDrop(t *testing.T) {
	t.Parallel()
	sts := idtxtest.New(t)
	sts.Fault(t, "drop,times=1")
	form := url.Values{"grant_type": {grantExchange}, "subject_token": {sts.SubjectToken(t, "alice")}, "subject_token_type": {typeJWT}, "audience": {"orders-api"}}
	req, _ := http.NewRequest(http.MethodPost, sts.TokenURL(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(idtxtest.Client, idtxtest.Secret)
	resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got an answer %d, want the connection dropped", resp.StatusCode)
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("error %v, want EOF", err)
	}
	if x := sts.LastExchange(t); x.Outcome != "dropped" || !reflect.DeepEqual(x.Faults, []string{"drop,times=1"}) {
		t.Fatalf("exchange %+v", x)
	}
	if a := exchange(t, sts, sts.SubjectToken(t, "alice"), typeJWT, "orders-api"); a.Status != 200 {
		t.Fatalf("after the drop: %d %v", a.Status, a.Body)
	}
}

// TestFaultSlow answers no sooner than the delay, then as usual.
func TestFaultSlow(t *testing.T) {
	t.Parallel()
	sts := idtxtest.New(t)
	sts.Fault(t, "slow=150ms,times=1")
	start := time.Now()
	a := exchange(t, sts, sts.SubjectToken(t, "alice"), typeJWT, "orders-api")
	if took := time.Since(start); a.Status != 200 || took < 150*time.Millisecond {
		t.Fatalf("%d after %s, want 200 after 150ms or more", a.Status, took)
	}
	if x := sts.LastExchange(t); x.Outcome != "ok" || !reflect.DeepEqual(x.Faults, []string{"slow=150ms,times=1"}) {
		t.Fatalf("exchange %+v", x)
	}
}

// TestFaultJWKSDown: down from the start, the STS has no key of the mock
// IDP and answers 503; down later, it keeps the keys it read, as with a
// real IDP, and a token signed with a key it never read gets 503.
func TestFaultJWKSDown(t *testing.T) {
	t.Parallel()
	sts := idtxtest.New(t, idtxtest.WithFaults("jwks-down"))
	resp, err := http.Get(sts.URL + "/mock/jwks")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("GET /mock/jwks: %d, want 503", resp.StatusCode)
	}
	a := exchange(t, sts, sts.SubjectToken(t, "alice"), typeJWT, "orders-api")
	if a.Status != 503 || a.str("error") != "temporarily_unavailable" {
		t.Fatalf("down from the start: %d %v", a.Status, a.Body)
	}
	if x := sts.LastExchange(t); x.Trace.Error.Category != "idp_unavailable" || !reflect.DeepEqual(x.Faults, []string{"jwks-down: GET /mock/jwks answers 503"}) {
		t.Fatalf("exchange %+v %+v", x, x.Trace.Error)
	}
	sts.ClearFaults()
	if a := exchange(t, sts, sts.SubjectToken(t, "alice"), typeJWT, "orders-api"); a.Status != 200 {
		t.Fatalf("up again: %d %v", a.Status, a.Body)
	}
	// Down with a key read: a rotation's new key is never read.
	sts.Fault(t, "jwks-down", "rotate-key")
	if a := exchange(t, sts, sts.SubjectToken(t, "alice"), typeJWT, "orders-api"); a.Status != 503 ||
		!strings.Contains(a.str("error_description"), "key set unreachable and kid not cached") {
		t.Fatalf("new key while down: %d %v", a.Status, a.Body)
	}
}

// TestFaultRotateKey: the mock IDP signs with a new key; tokens of the
// old key pass while both are published. When the fault ends, used up
// or cleared, the mock IDP is back to its fixture key: tokens signed with
// it (as `idtx mock token` mints them) pass again, the rotated key's are
// refused.
func TestFaultRotateKey(t *testing.T) {
	t.Parallel()
	sts := idtxtest.New(t)
	old := sts.SubjectToken(t, "alice")
	if a := exchange(t, sts, old, typeJWT, "orders-api"); a.Status != 200 {
		t.Fatalf("before: %d %v", a.Status, a.Body)
	}
	fixture := jwksKids(t, sts.URL+"/mock/jwks")
	sts.Fault(t, "rotate-key,times=3")
	rotated := sts.SubjectToken(t, "alice")
	for _, tok := range []string{old, rotated} {
		if a := exchange(t, sts, tok, typeJWT, "orders-api"); a.Status != 200 {
			t.Fatalf("overlap: %d %v", a.Status, a.Body)
		}
		if x := sts.LastExchange(t); len(x.Faults) != 1 || !strings.HasPrefix(x.Faults[0], "rotate-key,times=3: the mock IDP signs with kid "+kidOf(t, rotated)+", published with kid "+kidOf(t, old)+" until the fault ends") {
			t.Fatalf("overlap: faults %q", x.Faults)
		}
	}
	keys := jwksKids(t, sts.URL+"/mock/jwks")
	if len(keys) != 2 {
		t.Fatalf("overlap publishes %d keys, want 2", len(keys))
	}
	exchange(t, sts, rotated, typeJWT, "orders-api") // the third request ends the fault
	backToFixture := func(when string) {
		t.Helper()
		if keys := jwksKids(t, sts.URL+"/mock/jwks"); !reflect.DeepEqual(keys, fixture) {
			t.Fatalf("%s: kids %q, want the fixture key's %q", when, keys, fixture)
		}
		if tok := sts.SubjectToken(t, "alice"); kidOf(t, tok) != fixture[0] {
			t.Fatalf("%s: SubjectToken signed with kid %s, want the fixture's %s", when, kidOf(t, tok), fixture[0])
		}
		if a := exchange(t, sts, old, typeJWT, "orders-api"); a.Status != 200 {
			t.Fatalf("%s: the fixture key's token: %d %v", when, a.Status, a.Body)
		}
		a := exchange(t, sts, rotated, typeJWT, "orders-api")
		if want := `subject_token: invalid token: no usable key: kid "` + kidOf(t, rotated) + `" is not in the IDP's key set`; a.Status != 400 || a.str("error_description") != want {
			t.Fatalf("%s: the rotated key's token: %d %v\nwant 400 %s", when, a.Status, a.Body, want)
		}
	}
	backToFixture("used up")
	sts.Fault(t, "rotate-key")
	rotated = sts.SubjectToken(t, "alice")
	sts.ClearFaults()
	backToFixture("cleared")
}

// TestFaultsEndpoint sets, lists and clears faults over HTTP, as a test
// in another language does; refuses a spec that does not parse or is out
// of bounds, faults past MaxFaults, another method (405), and a request
// a web page of another site sent (403).
func TestFaultsEndpoint(t *testing.T) {
	t.Parallel()
	sts := idtxtest.New(t)
	host := strings.TrimPrefix(sts.URL, "http://")
	sixteen := "fault=drop" + strings.Repeat("&fault=drop", 15)
	csrf := func(method, why string) string {
		return `{"error":"access_denied","error_description":"` + method + ` /mock/faults from a web page of another site is refused (` + why + `): set faults with curl, --fault or idtxtest"}`
	}
	for _, c := range []struct {
		method, body string
		status       int
		want         string
		header       http.Header
	}{
		{"POST", "fault=unavailable%3D2s%2Ctimes%3D1&fault=slow%3D1s", 200, `{"faults":["unavailable=2s,times=1","slow=1s"]}`, nil},
		{"GET", "", 200, `{"faults":["unavailable=2s,times=1","slow=1s"]}`, nil},
		{"POST", "fault=flaky", 400, `{"error":"invalid_request","error_description":"fault \"flaky\": \"flaky\" is not a fault (faults: unavailable, slow, error, drop, jwks-down, rotate-key)"}`, nil},
		{"POST", "fault=slow", 400, `{"error":"invalid_request","error_description":"fault \"slow\": slow needs a positive duration of at most 1m, such as slow=2s"}`, nil},
		{"POST", "fault=drop%2Ctimes%3D0", 400, `{"error":"invalid_request","error_description":"fault \"drop,times=0\": after the comma only times=N (N \u003e= 1) may follow"}`, nil},
		{"POST", "", 400, `{"error":"invalid_request","error_description":"send one or more form fields fault=SPEC"}`, nil},
		{"POST", "fault=slow%3D1000000h", 400, `{"error":"invalid_request","error_description":"fault \"slow=1000000h\": slow needs a positive duration of at most 1m, such as slow=2s"}`, nil},
		{"POST", "fault=unavailable%3D1.5s", 400, `{"error":"invalid_request","error_description":"fault \"unavailable=1.5s\": Retry-After \"1.5s\" is not whole seconds from 1s to 1h"}`, nil},
		{"POST", "fault=error%3Dteapot", 400, `{"error":"invalid_request","error_description":"fault \"error=teapot\": error needs an OAuth error code the token endpoint answers (invalid_request, invalid_client, invalid_grant, unauthorized_client, unsupported_grant_type, invalid_scope, invalid_target, consent_required, temporarily_unavailable, server_error, slow_down)"}`, nil},
		{"POST", sixteen + "&fault=drop", 400, `{"error":"invalid_request","error_description":"too many faults: 17 given, at most 16 at once"}`, nil},
		{"POST", sixteen[:len(sixteen)-len("&fault=drop")], 400, `{"error":"invalid_request","error_description":"too many faults: 2 set, 15 more asked, at most 16 at once"}`, nil},
		{"PUT", "fault=drop", 405, `{"error":"invalid_request","error_description":"PUT /mock/faults: method not allowed (allowed: GET, HEAD, POST, DELETE)"}`, nil},
		{"POST", "fault=drop", 403, csrf("POST", `Origin \"https://evil.example\" is not \"`+host+`\"`), http.Header{"Origin": {"https://evil.example"}}},
		{"POST", "fault=drop", 403, csrf("POST", `Origin \"null\" is not \"`+host+`\"`), http.Header{"Origin": {"null"}}},
		{"POST", "fault=drop", 403, csrf("POST", "Sec-Fetch-Site: cross-site"), http.Header{"Sec-Fetch-Site": {"cross-site"}}},
		{"DELETE", "", 403, csrf("DELETE", `Origin \"http://localhost:1\" is not \"`+host+`\"`), http.Header{"Origin": {"http://localhost:1"}}},
		{"GET", "", 200, `{"faults":["unavailable=2s,times=1","slow=1s"]}`, http.Header{"Origin": {"https://evil.example"}}},
		{"DELETE", "", 200, `{"faults":[]}`, http.Header{"Origin": {sts.URL}, "Sec-Fetch-Site": {"same-origin"}}},
	} {
		req, _ := http.NewRequest(c.method, sts.URL+"/mock/faults", strings.NewReader(c.body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range c.header {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if c.status == 405 && resp.Header.Get("Allow") != "GET, HEAD, POST, DELETE" {
			t.Errorf("%s: Allow %q", c.method, resp.Header.Get("Allow"))
		}
		if resp.StatusCode != c.status || strings.TrimSpace(string(body)) != c.want {
			t.Errorf("%s %s: %d %s\nwant %d %s", c.method, c.body, resp.StatusCode, body, c.status, c.want)
		}
	}
}

// TestFaultMisuse: a spec that does not parse fails the test.
func TestFaultMisuse(t *testing.T) {
	t.Parallel()
	sts := idtxtest.New(t)
	if got, want := fatal(t, func(tb testing.TB) { sts.Fault(tb, "error=Bad Code") }),
		`idtxtest: Fault: fault "error=Bad Code": error needs an OAuth error code the token endpoint answers (invalid_request, invalid_client, invalid_grant, unauthorized_client, unsupported_grant_type, invalid_scope, invalid_target, consent_required, temporarily_unavailable, server_error, slow_down)`; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got, want := fatal(t, func(tb testing.TB) { idtxtest.New(tb, idtxtest.WithFaults("drop=1")) }),
		`idtxtest.New: WithFaults: fault "drop=1": drop takes no value`; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// TestFaultsSameForm: sts.Faults, GET /mock/faults and Exchange.Faults
// show a fault in one form, its default value written out; with
// unavailable, error and slow set together, the trace names only the two
// that took effect, and error's times is left for the next request.
func TestFaultsSameForm(t *testing.T) {
	t.Parallel()
	sts := idtxtest.New(t)
	sts.Fault(t, "unavailable,times=1", "error=invalid_grant,times=1", "slow=1ms,times=1")
	want := []string{"unavailable=1s,times=1", "error=invalid_grant,times=1", "slow=1ms,times=1"}
	if got := sts.Faults(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Faults() = %q, want %q", got, want)
	}
	resp, err := http.Get(sts.URL + "/mock/faults")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got := strings.TrimSpace(string(body)); got != `{"faults":["unavailable=1s,times=1","error=invalid_grant,times=1","slow=1ms,times=1"]}` {
		t.Fatalf("GET /mock/faults: %s", got)
	}
	tok := sts.SubjectToken(t, "alice")
	if a := exchange(t, sts, tok, typeJWT, "orders-api"); a.Status != 503 {
		t.Fatalf("first: %d %v", a.Status, a.Body)
	}
	if x := sts.LastExchange(t); !reflect.DeepEqual(x.Faults, []string{"unavailable=1s,times=1", "slow=1ms,times=1"}) {
		t.Fatalf("first: trace faults %q", x.Faults)
	}
	if got := sts.Faults(); !reflect.DeepEqual(got, []string{"error=invalid_grant,times=1"}) {
		t.Fatalf("after the first: Faults() = %q", got)
	}
	if a := exchange(t, sts, tok, typeJWT, "orders-api"); a.Status != 400 || a.str("error") != "invalid_grant" {
		t.Fatalf("second: %d %v", a.Status, a.Body)
	}
	if x := sts.LastExchange(t); !reflect.DeepEqual(x.Faults, []string{"error=invalid_grant,times=1"}) {
		t.Fatalf("second: trace faults %q", x.Faults)
	}
}
