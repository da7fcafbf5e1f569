package exchange_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/exchange"
	"github.com/idtx/idtx/idp"
	"github.com/idtx/idtx/internal/testconfig"
	"github.com/idtx/idtx/oauth"
	"github.com/idtx/idtx/secret"
	"github.com/idtx/idtx/store"
)

// t0 is the fake clock's start; no test reads the real clock for a verdict.
var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// keyPair is a signing key with its JWKS, as an IDP or a client holds it.
type keyPair struct {
	alg  string
	key  crypto.Signer
	kid  string
	jwks []byte
}

func newKeyPair(t testing.TB, alg string, key crypto.Signer) *keyPair {
	t.Helper()
	jwk, err := idp.PublicJWK(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	kp := &keyPair{alg: alg, key: key, kid: idp.Thumbprint(jwk)}
	jwk["kid"], jwk["alg"], jwk["use"] = kp.kid, alg, "sig"
	kp.jwks, _ = json.Marshal(map[string]any{"keys": []any{jwk}})
	return kp
}

var rsaKeys = sync.OnceValue(func() []*rsa.PrivateKey {
	var keys []*rsa.PrivateKey
	for range 3 {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		keys = append(keys, k)
	}
	return keys
})

// sign signs claims with extra header members; a nil header value
// deletes the member.
func (kp *keyPair) sign(t testing.TB, claims jwt.MapClaims, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(kp.alg), claims)
	tok.Header["kid"] = kp.kid
	for k, v := range header {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(kp.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const testConfig = `
issuer: https://sts.test
idps:
  - name: corp
    type: jwt
    issuer: https://idp.test
    jwks_file: corp.jwks
    audiences: [idtx-sts]
  - name: other
    type: jwt
    issuer: https://other.test
    jwks_file: other.jwks
    audiences: [idtx-sts]
    access_token_typ: [at+jwt]
services:
` + testconfig.Services + `  - name: narrow-api
    scopes: {narrow:a: {}, narrow:b: {}}
    subject_scopes_only: true
    token_lifetime: 1h
clients:
` + testconfig.Clients + `  - id: bcrypt-client
    secret_hash: %q
    services: ["*"]
  - id: argon-client
    secret_hash: $argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$%s
    services: ["*"]
  - id: jwt-client
    jwks_file: client.jwks
    services: ["*"]
`

// env is one engine under test with its keys, store and clock.
type env struct {
	t       testing.TB
	corp    *keyPair // the trusted IDP "corp"
	other   *keyPair // the trusted IDP "other"
	client  *keyPair // jwt-client's private_key_jwt key
	sts     *exchange.Signer
	store   store.Store
	engine  *exchange.Engine
	handler http.Handler
	now     time.Time
	pool    *secret.Pool // verifies hashed client secrets; counts them
}

func newEnv(t testing.TB) *env {
	return newEnvWith(t, store.NewMemory(), nil)
}

// newEnvWith builds an env; edit may change the config text and files.
func newEnvWith(t testing.TB, store store.Store, edit func(yaml string, files map[string][]byte) string) *env {
	return newEnvOpts(t, store, edit, nil)
}

// newEnvOpts is newEnvWith where opts may also change the engine's options.
func newEnvOpts(t testing.TB, store store.Store, edit func(yaml string, files map[string][]byte) string, opts func(*exchange.Options)) *env {
	t.Helper()
	keys := rsaKeys()
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	stsKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	e := &env{
		t:      t,
		corp:   newKeyPair(t, "RS256", keys[0]),
		other:  newKeyPair(t, "RS256", keys[1]),
		client: newKeyPair(t, "ES256", ec),
		store:  store,
		now:    t0,
	}
	hash, _ := bcrypt.GenerateFromPassword([]byte("bcrypt-secret"), bcrypt.MinCost)
	files := map[string][]byte{"corp.jwks": e.corp.jwks, "other.jwks": e.other.jwks, "client.jwks": e.client.jwks}
	yaml := fmt.Sprintf(testConfig, hash, argonHash("argon-secret"))
	if edit != nil {
		yaml = edit(yaml, files)
	}
	cfg, err := config.Parse([]byte(yaml), "", func(name string) ([]byte, error) {
		if b, ok := files[name]; ok {
			return b, nil
		}
		return nil, fmt.Errorf("no file %s", name)
	})
	if err != nil {
		t.Fatal(err)
	}
	if e.sts, err = exchange.NewSigner("ES256", stsKey); err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return e.now }
	reg, err := idp.FromConfig(context.Background(), cfg.IDPs, idp.Options{Clock: clock, ReadFile: cfg.ReadFile})
	if err != nil {
		t.Fatal(err)
	}
	o := exchange.Options{Registry: reg, Store: store, Signer: e.sts, Clock: clock, HashPool: secret.NewPool(0, 0)}
	if opts != nil {
		opts(&o)
	}
	e.pool = o.HashPool
	e.engine, err = exchange.NewEngine(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	e.handler = exchange.NewHandler(e.engine, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx := context.Background()
	if err := store.Grant(ctx, "corp", "alice", "billing-api", []string{"billing:read"}); err != nil {
		t.Fatal(err)
	}
	return e
}

// subject is a valid corp subject token for alice; over overrides claims
// (a nil value deletes the claim).
func (e *env) subject(over jwt.MapClaims) string {
	return e.corp.sign(e.t, e.claims(over), nil)
}

func (e *env) claims(over jwt.MapClaims) jwt.MapClaims {
	c := jwt.MapClaims{
		"iss": "https://idp.test", "sub": "alice", "aud": "idtx-sts",
		"iat": e.now.Unix(), "exp": e.now.Add(time.Hour).Unix(), "scope": "narrow:a openid",
	}
	for k, v := range over {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// form is a valid exchange of a corp token for orders-api.
func (e *env) form(token string, kv ...string) url.Values {
	f := url.Values{
		"grant_type":         {oauth.GrantTypeTokenExchange},
		"subject_token":      {token},
		"subject_token_type": {oauth.TokenTypeJWT},
		"audience":           {"orders-api"},
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			f.Del(kv[i])
		} else {
			f.Set(kv[i], kv[i+1])
		}
	}
	return f
}

type response struct {
	status int
	header http.Header
	body   map[string]any
}

func (r response) str(k string) string { s, _ := r.body[k].(string); return s }

// post sends form to path with demo-client's Basic credentials unless
// the form authenticates otherwise or basic is "-".
func (e *env) post(path string, form url.Values, basic ...string) response {
	e.t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	switch {
	case len(basic) == 2:
		req.SetBasicAuth(basic[0], basic[1])
	case len(basic) == 0 && form.Get("client_secret") == "" && form.Get("client_assertion") == "":
		req.SetBasicAuth("demo-client", "demo-secret")
	}
	return e.do(req)
}

func (e *env) do(req *http.Request) response {
	e.t.Helper()
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	r := response{status: rec.Code, header: rec.Header()}
	if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(rec.Body.Bytes(), &r.body); err != nil {
			e.t.Fatalf("body %q: %v", rec.Body.String(), err)
		}
	}
	return r
}

// issued verifies an issued token with the STS's key and returns it.
func (e *env) issued(token string) (jwt.MapClaims, map[string]any) {
	e.t.Helper()
	claims := jwt.MapClaims{}
	ks := e.sts.KeySet()
	tok, err := jwt.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) { return ks.Key(context.Background(), t) },
		jwt.WithTimeFunc(func() time.Time { return e.now }), jwt.WithValidMethods([]string{"ES256"}))
	if err != nil {
		e.t.Fatalf("issued token does not verify: %v", err)
	}
	return claims, tok.Header
}

// expectError asserts an OAuth error response.
func expectError(t testing.TB, r response, status int, code, descContains string) {
	t.Helper()
	if r.status != status || r.str("error") != code || !strings.Contains(r.str("error_description"), descContains) {
		t.Fatalf("got %d %v, want %d %s containing %q", r.status, r.body, status, code, descContains)
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", r.header.Get("Cache-Control"))
	}
}

// argonHash is the argon2id hash of secret with the salt and parameters
// testConfig names.
func argonHash(secret string) string {
	return base64.RawStdEncoding.EncodeToString(argon2.IDKey([]byte(secret), []byte("saltsaltsalt"), 1, 64, 1, 32))
}

func base64URL(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }
