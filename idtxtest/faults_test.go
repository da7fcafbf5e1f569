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
// old key pass while both are published, and are refused once the
// rotation's overlap ends.
func TestFaultRotateKey(t *testing.T) {
	t.Parallel()
	sts := idtxtest.New(t)
	old := sts.SubjectToken(t, "alice")
	if a := exchange(t, sts, old, typeJWT, "orders-api"); a.Status != 200 {
		t.Fatalf("before: %d %v", a.Status, a.Body)
	}
	sts.Fault(t, "rotate-key,times=3")
	rotated := sts.SubjectToken(t, "alice")
	for _, tok := range []string{old, rotated} {
		if a := exchange(t, sts, tok, typeJWT, "orders-api"); a.Status != 200 {
			t.Fatalf("overlap: %d %v", a.Status, a.Body)
		}
		if x := sts.LastExchange(t); len(x.Faults) != 1 || !strings.HasPrefix(x.Faults[0], "rotate-key,times=3: the mock IDP signs with kid ") {
			t.Fatalf("overlap: faults %q", x.Faults)
		}
	}
	keys := jwksKids(t, sts.URL+"/mock/jwks")
	if len(keys) != 2 {
		t.Fatalf("overlap publishes %d keys, want 2", len(keys))
	}
	exchange(t, sts, rotated, typeJWT, "orders-api") // the third request ends the overlap
	if keys := jwksKids(t, sts.URL+"/mock/jwks"); len(keys) != 1 || keys[0] != kidOf(t, rotated) {
		t.Fatalf("after the overlap: kids %q, want only the new key's %s", keys, kidOf(t, rotated))
	}
	a := exchange(t, sts, old, typeJWT, "orders-api")
	if a.Status != 400 || !strings.HasPrefix(a.str("error_description"), "subject_token: invalid token: no usable key: kid ") ||
		!strings.HasSuffix(a.str("error_description"), `is not in the IDP's key set`) {
		t.Fatalf("old key after the overlap: %d %v", a.Status, a.Body)
	}
	if a := exchange(t, sts, rotated, typeJWT, "orders-api"); a.Status != 200 {
		t.Fatalf("new key after the overlap: %d %v", a.Status, a.Body)
	}
}

// TestFaultsEndpoint sets, lists and clears faults over HTTP, as a test
// in another language does, and refuses a spec that does not parse.
func TestFaultsEndpoint(t *testing.T) {
	t.Parallel()
	sts := idtxtest.New(t)
	for _, c := range []struct {
		method, body string
		status       int
		want         string
	}{
		{"POST", "fault=unavailable%3D2s%2Ctimes%3D1&fault=slow%3D1s", 200, `{"faults":["unavailable=2s,times=1","slow=1s"]}`},
		{"GET", "", 200, `{"faults":["unavailable=2s,times=1","slow=1s"]}`},
		{"POST", "fault=flaky", 400, `{"error":"invalid_request","error_description":"fault \"flaky\": \"flaky\" is not a fault (faults: unavailable, slow, error, drop, jwks-down, rotate-key)"}`},
		{"POST", "fault=slow", 400, `{"error":"invalid_request","error_description":"fault \"slow\": slow needs a positive duration, such as slow=2s"}`},
		{"POST", "fault=drop%2Ctimes%3D0", 400, `{"error":"invalid_request","error_description":"fault \"drop,times=0\": after the comma only times=N (N \u003e= 1) may follow"}`},
		{"POST", "", 400, `{"error":"invalid_request","error_description":"send one or more form fields fault=SPEC"}`},
		{"DELETE", "", 200, `{"faults":[]}`},
	} {
		req, _ := http.NewRequest(c.method, sts.URL+"/mock/faults", strings.NewReader(c.body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
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
		`idtxtest: Fault: fault "error=Bad Code": error needs an OAuth error code, such as error=invalid_grant`; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got, want := fatal(t, func(tb testing.TB) { idtxtest.New(tb, idtxtest.WithFaults("drop=1")) }),
		`idtxtest.New: WithFaults: fault "drop=1": drop takes no value`; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
