package stsclient_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/idtx/idtx/oauth"
	"github.com/idtx/idtx/stsclient"
)

func TestDiscover(t *testing.T) {
	var srvURL string
	mux := http.NewServeMux()
	// RFC 8414 §3.1: the well-known segment goes between host and path.
	mux.HandleFunc("/.well-known/oauth-authorization-server/realms/a", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": srvURL + "/realms/a", "token_endpoint": srvURL + "/realms/a/tok"})
	})
	// Keycloak-style: only OpenID discovery, under the issuer's path.
	mux.HandleFunc("/realms/b/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": srvURL + "/realms/b", "token_endpoint": srvURL + "/realms/b/protocol/openid-connect/token"})
	})
	// A document that names another issuer would redirect credentials.
	mux.HandleFunc("/realms/evil/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": "https://attacker.test", "token_endpoint": "https://attacker.test/token"})
	})
	mux.HandleFunc("/realms/noiss/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"token_endpoint": "https://attacker.test/token"})
	})
	mux.HandleFunc("/realms/js/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": srvURL + "/realms/js", "token_endpoint": "javascript:alert(1)"})
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	srvURL = srv.URL
	for path, want := range map[string]string{
		"/realms/evil":  `names issuer "https://attacker.test", not "` + srv.URL + `/realms/evil" (RFC 8414 §3.3)`,
		"/realms/noiss": `names issuer "", not`,
		"/realms/js":    `has token_endpoint "javascript:alert(1)", not an http(s) URL`,
	} {
		if got, err := stsclient.Discover(context.Background(), srv.Client(), srv.URL+path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Discover(%s) = %q, %v; want an error containing %s", path, got, err, want)
		}
	}
	tests := map[string]string{
		srv.URL + "/realms/a":        srv.URL + "/realms/a/tok",
		srv.URL + "/realms/b/":       srv.URL + "/realms/b/protocol/openid-connect/token",
		srv.URL + "/v1/token":        srv.URL + "/v1/token",        // a token endpoint: no discovery
		srv.URL + "/no/metadata/sts": srv.URL + "/no/metadata/sts", // no metadata: the URL itself
	}
	for in, want := range tests {
		got, err := stsclient.Discover(context.Background(), srv.Client(), in)
		if err != nil || got != want {
			t.Errorf("Discover(%s) = %s, %v; want %s", in, got, err, want)
		}
	}
	if _, err := stsclient.Discover(context.Background(), srv.Client(), "ftp://x"); err == nil {
		t.Error("ftp URL accepted")
	}
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	if _, err := stsclient.Discover(context.Background(), http.DefaultClient, down.URL); !stsclient.IsUnreachable(err) {
		t.Errorf("unreachable STS: %v", err)
	}
}

// sts answers every request with handler, recording the last form.
func sts(t *testing.T, handler http.HandlerFunc) (*stsclient.STS, *http.Request) {
	t.Helper()
	var last http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		last = *r
		handler(w, r)
	}))
	t.Cleanup(srv.Close)
	return &stsclient.STS{TokenEndpoint: srv.URL + "/token", HTTP: srv.Client(), Auth: stsclient.ClientAuth{
		Method: oauth.AuthClientSecretBasic, ClientID: "a:b", Secret: "p@ss word%",
	}}, &last
}

var params = stsclient.ExchangeParams{
	SubjectToken: "tok", SubjectTokenType: oauth.TokenTypeJWT, Audiences: []string{"a1", "a2"},
	Resources: []string{"https://r"}, Scope: "x y", Extra: url.Values{"connector_id": {"up"}},
}

func TestExchangeAnswers(t *testing.T) {
	t.Run("success", func(t *testing.T) {
		s, last := sts(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.Write([]byte(`{"access_token":"at","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer","expires_in":60,"extra":1}`))
		})
		res, raw, err := s.Exchange(context.Background(), params)
		if err != nil || res.AccessToken != "at" || !strings.Contains(string(raw), `"extra":1`) {
			t.Fatalf("%v %v %s", res, err, raw)
		}
		f := last.PostForm
		if f.Get("grant_type") != oauth.GrantTypeTokenExchange || strings.Join(f["audience"], ",") != "a1,a2" ||
			f.Get("resource") != "https://r" || f.Get("scope") != "x y" || f.Get("connector_id") != "up" || f.Get("client_secret") != "" {
			t.Errorf("form %v", f)
		}
		// RFC 6749 §2.3.1: id and secret are url-encoded inside Basic.
		id, secret, _ := last.BasicAuth()
		if id != url.QueryEscape("a:b") || secret != url.QueryEscape("p@ss word%") {
			t.Errorf("basic %q %q", id, secret)
		}
	})
	t.Run("OAuth error", func(t *testing.T) {
		s, _ := sts(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(400)
			w.Write([]byte(`{"error":"invalid_target","error_description":"audience \"x\" is not a registered service"}`))
		})
		_, _, err := s.Exchange(context.Background(), params)
		var oerr *oauth.Error
		if !errors.As(err, &oerr) || oerr.Error() != `invalid_target: audience "x" is not a registered service` || oerr.Status != 400 {
			t.Fatalf("%v", err)
		}
	})
	t.Run("HTML error page", func(t *testing.T) {
		s, _ := sts(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(502)
			w.Write([]byte("<html>\n<head><title>502 Bad Gateway</title></head>\n<body>nginx</body></html>"))
		})
		_, _, err := s.Exchange(context.Background(), params)
		var ue *stsclient.UnreachableError
		if !errors.As(err, &ue) || ue.Status != 502 || !strings.Contains(err.Error(), `answered 502 Bad Gateway, not OAuth JSON: "<html> <head><title>502 Bad Gateway</title>`) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("200 that is not a token response", func(t *testing.T) {
		s, _ := sts(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
		if _, _, err := s.Exchange(context.Background(), params); !stsclient.IsUnreachable(err) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("client_secret_post and none", func(t *testing.T) {
		s, last := sts(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(400) })
		s.Auth.Method = oauth.AuthClientSecretPost
		s.Exchange(context.Background(), params)
		if last.PostForm.Get("client_id") != "a:b" || last.PostForm.Get("client_secret") != "p@ss word%" || last.Header.Get("Authorization") != "" {
			t.Errorf("post: %v %v", last.PostForm, last.Header)
		}
		s.Auth.Method = oauth.AuthNone
		s.Exchange(context.Background(), params)
		if last.PostForm.Get("client_id") != "a:b" || last.PostForm.Get("client_secret") != "" {
			t.Errorf("none: %v", last.PostForm)
		}
	})
}

// private_key_jwt (RFC 7523 §3): iss = sub = client id, aud the token
// endpoint, a 60 s life, a fresh jti every time.
func TestPrivateKeyJWTAssertion(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, last := sts(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(400) })
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s.Auth = stsclient.ClientAuth{Method: oauth.AuthPrivateKeyJWT, ClientID: "gw", Key: key}
	s.Now = func() time.Time { return now }
	var jtis []string
	for range 2 {
		s.Exchange(context.Background(), params)
		f := last.PostForm
		if f.Get("client_assertion_type") != oauth.ClientAssertionTypeJWTBearer || f.Get("client_id") != "gw" {
			t.Fatalf("form %v", f)
		}
		var c jwt.RegisteredClaims
		tok, err := jwt.ParseWithClaims(f.Get("client_assertion"), &c, func(*jwt.Token) (any, error) { return key.Public(), nil },
			jwt.WithTimeFunc(func() time.Time { return now }))
		if err != nil {
			t.Fatal(err)
		}
		if tok.Method.Alg() != "ES256" || c.Issuer != "gw" || c.Subject != "gw" || c.Audience[0] != s.TokenEndpoint ||
			c.ExpiresAt.Sub(c.IssuedAt.Time) != 60*time.Second || c.ID == "" {
			t.Fatalf("assertion %s %+v", tok.Method.Alg(), c)
		}
		jtis = append(jtis, c.ID)
	}
	if jtis[0] == jtis[1] {
		t.Error("jti repeated")
	}
}
