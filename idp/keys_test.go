package idp_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/idtx/idtx/idp"
	"github.com/idtx/idtx/oauth"
)

type signer struct {
	key  *rsa.PrivateKey
	kid  string
	jwks []byte
}

func newSigner(t *testing.T) *signer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	jwk, _ := idp.PublicJWK(key.Public())
	s := &signer{key: key, kid: idp.Thumbprint(jwk)}
	jwk["kid"], jwk["alg"] = s.kid, "RS256"
	s.jwks, _ = json.Marshal(map[string]any{"keys": []any{jwk}})
	return s
}

var now = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func (s *signer) token(t *testing.T) string {
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": "https://idp.test", "sub": "alice", "aud": "sts", "exp": now.Add(time.Hour).Unix(),
	})
	tok.Header["kid"] = s.kid
	out, err := tok.SignedString(s.key)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// jwksServer serves whichever key set is current and counts fetches.
type jwksServer struct {
	*httptest.Server
	current atomic.Pointer[[]byte]
	fetches atomic.Int32
}

func newJWKSServer(t *testing.T, jwks []byte) *jwksServer {
	s := &jwksServer{}
	s.current.Store(&jwks)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		w.Write(*s.current.Load())
	}))
	t.Cleanup(s.Close)
	return s
}

func validator(t *testing.T, keys idp.KeySet) *idp.JWT {
	v, err := idp.NewJWT(idp.JWTConfig{
		Name: "corp", Issuer: "https://idp.test", Audiences: []string{"sts"}, Algorithms: []string{"RS256"},
		ClockSkew: 30 * time.Second, Clock: func() time.Time { return now }, Keys: keys,
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// docs/security.md: remote key sets are refreshed on an unknown kid at most
// once per interval, and an IDP that is down leaves its cached keys in use.
func TestRemoteKeysRefreshAndOutage(t *testing.T) {
	a, b, c := newSigner(t), newSigner(t), newSigner(t)
	srv := newJWKSServer(t, a.jwks)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	keys, err := idp.RemoteKeys(ctx, srv.URL, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	v := validator(t, keys)
	check := func(s *signer, wantErr string) {
		t.Helper()
		_, err := v.Validate(ctx, s.token(t), oauth.TokenTypeJWT)
		if (err == nil) != (wantErr == "") || (err != nil && !strings.Contains(err.Error(), wantErr)) {
			t.Fatalf("Validate = %v, want %q", err, wantErr)
		}
	}
	check(a, "")
	if n := srv.fetches.Load(); n != 1 {
		t.Fatalf("fetches after start = %d, want 1", n)
	}

	srv.current.Store(&b.jwks) // the IDP rotates to key b
	check(b, "")               // unknown kid: one refresh finds it
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("fetches after rotation = %d, want 2", n)
	}
	check(c, "is not in the IDP's key set") // another unknown kid, inside the interval: no fetch
	check(c, "is not in the IDP's key set")
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("fetches after unknown kids = %d, want still 2", n)
	}

	srv.Close() // the IDP goes down: cached keys stay in use
	check(b, "")
}

func TestRemoteKeysUnreachableAtStart(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	keys, err := idp.RemoteKeys(t.Context(), url, http.DefaultClient)
	if err != nil {
		t.Fatalf("an IDP down at start must not stop the server: %v", err)
	}
	_, err = validator(t, keys).Validate(t.Context(), newSigner(t).token(t), oauth.TokenTypeJWT)
	if err == nil || !strings.Contains(err.Error(), "idp unavailable") {
		t.Fatalf("Validate = %v, want idp unavailable", err)
	}
}

func TestDiscovery(t *testing.T) {
	s := newSigner(t)
	var srvURL string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			json.NewEncoder(w).Encode(map[string]string{"issuer": "https://idp.test", "jwks_uri": srvURL + "/keys"})
		case "/keys":
			w.Write(s.jwks)
		}
	}))
	defer srv.Close()
	srvURL = srv.URL
	// Discovery is fetched from the issuer; here the issuer's host is the
	// test server, reached through a client that rewrites the host.
	client := &http.Client{Transport: rewriteHost{to: srv.Listener.Addr().String()}}
	v := validator(t, idp.DiscoveredKeys(t.Context(), "https://idp.test", client))
	if _, err := v.Validate(t.Context(), s.token(t), oauth.TokenTypeJWT); err != nil {
		t.Fatal(err)
	}

	mixUp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": "https://evil.test", "jwks_uri": srvURL + "/keys"})
	}))
	defer mixUp.Close()
	client = &http.Client{Transport: rewriteHost{to: mixUp.Listener.Addr().String()}}
	v = validator(t, idp.DiscoveredKeys(t.Context(), "https://idp.test", client))
	if _, err := v.Validate(t.Context(), s.token(t), oauth.TokenTypeJWT); err == nil || !strings.Contains(err.Error(), `names issuer "https://evil.test"`) {
		t.Fatalf("discovery naming another issuer: %v", err)
	}
}

type rewriteHost struct{ to string }

func (rw rewriteHost) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host = "http", rw.to
	return http.DefaultTransport.RoundTrip(r)
}
