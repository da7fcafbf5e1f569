package attack

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idtx/idtx/store"
)

// TestReplayCachePerClient is issue 8 item 7 against a running server:
// jwt-client sends valid, distinct client assertions until its share of
// the replay cache is full. It is then refused with an error that says
// so, and jwt-client-2, another private_key_jwt client, still
// authenticates.
func TestReplayCachePerClient(t *testing.T) {
	e := newEnv(t)
	const limit = store.DefaultReplayLimit
	const workers = 4

	// /introspect authenticates the client as /token does, with the same
	// replay cache, and answers an unknown token with {"active":false}:
	// each 200 is an assertion recorded.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	defer client.CloseIdleConnections()
	introspect := func(assertion string) (int, string, error) {
		form := withAssertion(url.Values{"token": {"not-a-token"}}, "jwt-client", assertion)
		resp, err := client.Post(e.srv.URL+"/introspect", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw), nil
	}

	var next, recorded atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for i := next.Add(1); i <= limit; i = next.Add(1) {
				status, body, err := introspect(e.client.assertion(t, "jwt-client", e.srv.URL+"/token", nil))
				switch {
				case err != nil:
					firstErr.CompareAndSwap(nil, err.Error())
					return
				case status == http.StatusOK && body == `{"active":false}`+"\n":
					recorded.Add(1)
				default:
					firstErr.CompareAndSwap(nil, fmt.Sprintf("assertion %d: %d %s", i, status, body))
					return
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d distinct assertions from jwt-client in %s", recorded.Load(), time.Since(start).Round(time.Millisecond))
	if err := firstErr.Load(); err != nil {
		t.Fatalf("an assertion under the bound was not accepted: %v", err)
	}
	if n := recorded.Load(); n != limit {
		t.Fatalf("%d of %d assertions accepted", n, limit)
	}

	t.Run("one more from the same client is refused, saying why", func(t *testing.T) {
		began := time.Now()
		r := e.srv.do(t, &request{form: withAssertion(exchangeForm(e.corp.sign(t, claims(nil), nil)), "jwt-client",
			e.client.assertion(t, "jwt-client", e.srv.URL+"/token", nil))})
		t.Logf("refused in %s", time.Since(began).Round(time.Microsecond))
		expectRefusal(t, r, http.StatusUnauthorized, "invalid_client",
			fmt.Sprintf("client_assertion: client jwt-client has %d unexpired assertions (the limit); use shorter-lived assertions", limit))
	})
	t.Run("another private_key_jwt client still authenticates", func(t *testing.T) {
		_, c := e.srv.mustExchange(t, withAssertion(exchangeForm(e.corp.sign(t, claims(nil), nil)), "jwt-client-2",
			e.client2.assertion(t, "jwt-client-2", e.srv.URL+"/token", nil)), "", "")
		if c["client_id"] != "jwt-client-2" {
			t.Fatalf("client_id = %v, want jwt-client-2", c["client_id"])
		}
	})
	t.Run("a replay is still a replay", func(t *testing.T) {
		a := e.client2.assertion(t, "jwt-client-2", e.srv.URL, nil)
		e.srv.mustExchange(t, withAssertion(exchangeForm(e.corp.sign(t, claims(nil), nil)), "jwt-client-2", a), "", "")
		r := e.srv.do(t, &request{form: withAssertion(exchangeForm(e.corp.sign(t, claims(nil), nil)), "jwt-client-2", a)})
		expectRefusal(t, r, http.StatusUnauthorized, "invalid_client", "client_assertion: jti ")
		if !strings.HasSuffix(r.str("error_description"), " was already used") {
			t.Fatalf("error_description %q, want the jti named as already used", r.str("error_description"))
		}
	})
}
