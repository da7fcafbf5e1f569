package idp

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// toServer sends every request to srv, whatever its URL's host.
type toServer struct{ srv *httptest.Server }

func (s toServer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host = "http", s.srv.Listener.Addr().String()
	return http.DefaultTransport.RoundTrip(r)
}

// A discovery document without a jwks_uri is refused as it is, and
// discovery that failed is not tried again before RefreshInterval: a
// token stream does not become a request stream to the IDP; after it,
// discovery is tried again.
func TestDiscoveryWithoutJWKSURIThrottled(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"issuer":"https://idp.test"}`))
	}))
	defer srv.Close()
	d := &discovered{ctx: t.Context(), issuer: "https://idp.test", client: &http.Client{Transport: toServer{srv}}}
	want := ErrUnavailable.Error() + `: discovery at https://idp.test/.well-known/openid-configuration names issuer "https://idp.test" and jwks_uri ""`
	for i := range 3 {
		if _, err := d.resolve(); !errors.Is(err, ErrUnavailable) || err.Error() != want {
			t.Fatalf("resolve %d: %v, want %q", i, err, want)
		}
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("discovery fetched %d times in a row, want once", n)
	}
	// RefreshInterval after the failed try, discovery is tried again.
	d.mu.Lock()
	d.lastTry = d.lastTry.Add(-RefreshInterval)
	d.mu.Unlock()
	if _, err := d.resolve(); !errors.Is(err, ErrUnavailable) || err.Error() != want {
		t.Fatalf("resolve after RefreshInterval: %v, want %q", err, want)
	}
	if n := hits.Load(); n != 2 {
		t.Fatalf("discovery fetched %d times after RefreshInterval, want twice in all", n)
	}
}
