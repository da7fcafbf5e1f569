package exchange_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/exchange"
	"github.com/idtx/idtx/idp"
	"github.com/idtx/idtx/keyset"
	"github.com/idtx/idtx/oauth"
	"github.com/idtx/idtx/store"
)

const rotatingConfig = `
issuer: %s
signing:
  alg: ES256
  rotate_every: 1h
idps:
  - name: corp
    type: jwt
    issuer: https://idp.test
    jwks_file: corp.jwks
    audiences: [idtx-sts]
services:
  - name: orders-api
    audience: orders-api
    scopes: {orders:read: {}}
    default_scopes: [orders:read]
    token_lifetime: 15m
clients:
  - id: demo-client
    secret: demo-secret
    services: ["*"]
    modes: [impersonation]
`

// rotatingServer is a server built from rotatingConfig as `idtx serve`
// builds one (exchange.Build, key set in a SQLite store), served over
// loopback, on a fake clock.
type rotatingServer struct {
	t      *testing.T
	srv    *httptest.Server
	engine *exchange.Engine
	keys   store.Keys
	kek    *keyset.KEK
	corp   *keyPair
	clock  atomic.Int64 // UnixNano
	cfg    *config.Config
}

func (r *rotatingServer) now() time.Time { return time.Unix(0, r.clock.Load()).UTC() }

func newRotatingServer(t *testing.T) *rotatingServer {
	t.Helper()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r := &rotatingServer{t: t, corp: newKeyPair(t, "ES256", ec)}
	r.clock.Store(t0.UnixNano())
	var h atomic.Pointer[exchange.Handler]
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { h.Load().ServeHTTP(w, req) }))
	t.Cleanup(r.srv.Close)

	files := map[string][]byte{"corp.jwks": r.corp.jwks}
	r.cfg, err = config.Parse([]byte(fmt.Sprintf(rotatingConfig, r.srv.URL)), "", func(name string) ([]byte, error) {
		if b, ok := files[name]; ok {
			return b, nil
		}
		return nil, fmt.Errorf("no file %s", name)
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open("sqlite:" + filepath.Join(t.TempDir(), "idtx.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r.keys = st.Keys()
	if r.kek, err = keyset.ParseKEK("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="); err != nil {
		t.Fatal(err)
	}
	r.engine, err = exchange.Build(t.Context(), r.cfg, exchange.BuildOptions{
		Home: t.TempDir(), Store: st, Clock: r.now, Keys: r.keys, KEK: r.kek,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.Store(exchange.NewHandler(r.engine, slog.New(slog.NewTextHandler(io.Discard, nil))))
	return r
}

// post sends form to path as demo-client and decodes the JSON answer.
func (r *rotatingServer) post(path string, form url.Values) (int, map[string]any) {
	r.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, r.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("demo-client", "demo-secret")
	res, err := r.srv.Client().Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer res.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		r.t.Fatalf("%s: %v", path, err)
	}
	return res.StatusCode, body
}

// exchange trades token, presented as tokenType, for orders-api.
func (r *rotatingServer) exchange(token, tokenType string) (int, map[string]any) {
	r.t.Helper()
	return r.post("/token", url.Values{
		"grant_type":         {oauth.GrantTypeTokenExchange},
		"subject_token":      {token},
		"subject_token_type": {tokenType},
		"audience":           {"orders-api"},
	})
}

func (r *rotatingServer) introspect(token string) map[string]any {
	r.t.Helper()
	status, body := r.post("/introspect", url.Values{"token": {token}})
	if status != http.StatusOK {
		r.t.Fatalf("/introspect: %d %v", status, body)
	}
	return body
}

// jwks fetches /jwks as a resource server does: the body, and how long
// Cache-Control lets it be kept.
func (r *rotatingServer) jwks() (string, time.Duration) {
	r.t.Helper()
	res, err := r.srv.Client().Get(r.srv.URL + "/jwks")
	if err != nil {
		r.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		r.t.Fatalf("/jwks: %d %v", res.StatusCode, err)
	}
	var maxAge time.Duration
	for d := range strings.SplitSeq(res.Header.Get("Cache-Control"), ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(d), "max-age="); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				r.t.Fatalf("Cache-Control %q", res.Header.Get("Cache-Control"))
			}
			maxAge = time.Duration(n) * time.Second
		}
	}
	if maxAge <= 0 {
		r.t.Fatalf("/jwks Cache-Control %q has no max-age", res.Header.Get("Cache-Control"))
	}
	return string(b), maxAge
}

// The config schedule (signing.rotate_every) run through a server built
// from a config and served over HTTP, on a fake clock, as `idtx serve`
// runs it: the signer refreshed every keyset.RefreshInterval. Across three
// rotations, resource servers that cache /jwks for its max-age (one
// starting at every step of the cache's life) verify every unexpired token
// the server issued; the signing kid changes exactly when the schedule
// says, and only after the new key has been in /jwks for a max-age; a key
// stays in /jwks until the longest token lifetime after it stopped
// signing, then leaves it, and a token it signed is refused from then on
// at /introspect and as a subject token.
func TestConfigRotationOverHTTP(t *testing.T) {
	r := newRotatingServer(t)
	ctx := t.Context()
	every, maxLife := r.cfg.Signing.RotateEvery, r.cfg.MaxTokenLifetime()
	if every != config.MinRotateEvery || maxLife != 15*time.Minute {
		t.Fatalf("rotate_every %s, longest lifetime %s", every, maxLife)
	}
	start := t0
	// Steps shorter than the JWKS max-age and the refresh interval.
	const step = 15 * time.Second
	end := start.Add(3*every + maxLife + keyset.JWKSMaxAge)
	// dueAt is when the schedule's key n (0: the first) begins to sign.
	dueAt := func(n int) time.Time { return start.Add(time.Duration(n) * every) }

	// The first key's private half, as one who stole it would hold it.
	keys, err := keyset.Load(ctx, r.keys, r.kek)
	if err != nil || len(keys) != 1 {
		t.Fatalf("key set at start: %d keys, %v", len(keys), err)
	}
	first := keys[0]
	forge := func(now time.Time, jti string) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
			"iss": r.srv.URL, "sub": "alice", "aud": "orders-api", "client_id": "demo-client",
			"scope": "orders:read", "idp": "corp", "jti": jti,
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		})
		tok.Header["kid"], tok.Header["typ"] = first.ID, "at+jwt"
		s, err := tok.SignedString(first.Private)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	// A resource server checks a token's signature with the key set it
	// cached (RFC 9068 §4); only unexpired tokens are checked, so the
	// verdict depends on the token and the key set alone, and is kept.
	type issued struct {
		raw string
		kid string
		exp time.Time
	}
	var tokens []issued
	bodies := map[string]int{}
	keySets := []idp.KeySet{}
	verdicts := map[[2]int]error{}
	verify := func(body string, tok int) error {
		b, ok := bodies[body]
		if !ok {
			ks, err := idp.StaticKeys([]byte(body))
			if err != nil {
				t.Fatalf("/jwks %s: %v", body, err)
			}
			b = len(keySets)
			bodies[body] = b
			keySets = append(keySets, ks)
		}
		if err, ok := verdicts[[2]int{b, tok}]; ok {
			return err
		}
		_, err := jwt.Parse(tokens[tok].raw, func(t *jwt.Token) (any, error) { return keySets[b].Key(ctx, t) },
			jwt.WithValidMethods([]string{"ES256"}), jwt.WithoutClaimsValidation())
		verdicts[[2]int{b, tok}] = err
		return err
	}
	type resourceServer struct {
		start, fetched time.Time
		maxAge         time.Duration
		body           string
	}
	var servers []*resourceServer
	for at := start; at.Before(start.Add(keyset.JWKSMaxAge)); at = at.Add(step) {
		servers = append(servers, &resourceServer{start: at})
	}

	var signing []string                // the signing kids in turn
	firstSeen := map[string]time.Time{} // when each kid appeared in /jwks
	var forged string                   // first's token, forged and used while first was published
	retireFirst := dueAt(1).Add(maxLife)
	for now := start; !now.After(end); now = now.Add(step) {
		r.clock.Store(now.UnixNano())
		if el := now.Sub(start); el > 0 && el%keyset.RefreshInterval == 0 {
			// What Signer.Run does at each tick in `idtx serve`.
			if err := r.engine.Signer().Refresh(ctx); err != nil {
				t.Fatal(err)
			}
		}

		// What /jwks shows now.
		body, maxAge := r.jwks()
		if maxAge != keyset.JWKSMaxAge {
			t.Fatalf("/jwks max-age %s, want %s", maxAge, keyset.JWKSMaxAge)
		}
		published := jwksKids(t, []byte(body))
		for kid := range published {
			if _, ok := firstSeen[kid]; !ok {
				firstSeen[kid] = now
			}
		}

		// A real exchange: a corp token for an orders-api token.
		subject := r.corp.sign(t, jwt.MapClaims{
			"iss": "https://idp.test", "sub": "alice", "aud": "idtx-sts",
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		}, nil)
		status, res := r.exchange(subject, oauth.TokenTypeJWT)
		if status != http.StatusOK {
			t.Fatalf("at +%s: exchange %d %v", now.Sub(start), status, res)
		}
		raw, _ := res["access_token"].(string)
		claims := jwt.MapClaims{}
		parsed, _, err := jwt.NewParser().ParseUnverified(raw, claims)
		if err != nil {
			t.Fatal(err)
		}
		kid, _ := parsed.Header["kid"].(string)
		exp, _ := claims.GetExpirationTime()
		if exp == nil || !exp.Equal(now.Add(maxLife)) {
			t.Fatalf("at +%s: exp %v, want the longest lifetime %s", now.Sub(start), exp, maxLife)
		}
		tokens = append(tokens, issued{raw, kid, exp.Time})

		// The kid that signs is the schedule's key for now: a new one
		// at each rotate_every, not a step before, and one that has been
		// in /jwks for at least a max-age.
		n := int(now.Sub(start) / every)
		switch {
		case n < len(signing) && kid != signing[n]:
			t.Fatalf("at +%s: signed by %s, want key %d %s (the next signs from +%s)", now.Sub(start), kid, n, signing[n], dueAt(n+1).Sub(start))
		case n == len(signing):
			for i, k := range signing {
				if k == kid {
					t.Fatalf("at +%s: still signing with key %d %s, due to rotate at +%s", now.Sub(start), i, kid, dueAt(n).Sub(start))
				}
			}
			if n > 0 {
				seen, ok := firstSeen[kid]
				if !ok || now.Sub(seen) < keyset.JWKSMaxAge {
					t.Fatalf("at +%s: key %s signs, published since +%s: less than a max-age (%s)", now.Sub(start), kid, seen.Sub(start), keyset.JWKSMaxAge)
				}
				t.Logf("key %d %s signs from +%s, published %s before", n, kid, now.Sub(start), now.Sub(seen))
			}
			signing = append(signing, kid)
		case n > len(signing):
			t.Fatalf("at +%s: no token signed by key %d", now.Sub(start), n-1)
		}

		// A key that stopped signing stays in /jwks exactly until every
		// token it could have signed has expired.
		for i, k := range signing[:len(signing)-1] {
			retire := dueAt(i + 1).Add(maxLife)
			if want := now.Before(retire); published[k] != want {
				t.Fatalf("at +%s: key %d %s in /jwks: %v, want %v (it stopped signing at +%s, longest lifetime %s)",
					now.Sub(start), i, k, published[k], want, dueAt(i+1).Sub(start), maxLife)
			}
		}
		if len(published) > 3 {
			t.Fatalf("at +%s: /jwks has %d keys", now.Sub(start), len(published))
		}

		// Every resource server, its cache refetched once its max-age is
		// over, verifies every token still valid.
		for i, rs := range servers {
			if now.Before(rs.start) {
				continue
			}
			if rs.body == "" || !now.Before(rs.fetched.Add(rs.maxAge)) {
				rs.body, rs.maxAge = r.jwks()
				rs.fetched = now
			}
			for j := len(tokens) - 1; j >= 0 && now.Before(tokens[j].exp); j-- {
				if err := verify(rs.body, j); err != nil {
					t.Fatalf("at +%s: resource server %d (/jwks cached at +%s) refuses a token of kid %s valid until +%s: %v",
						now.Sub(start), i, rs.fetched.Sub(start), tokens[j].kid, tokens[j].exp.Sub(start), err)
				}
			}
		}

		// The refusal side, around the first key's retirement.
		switch {
		case now.Equal(retireFirst.Add(-step)):
			// Still published: the server takes its tokens, and
			// remembers the subject token as validated.
			forged = forge(now, "forged-1")
			if got := r.introspect(forged); got["active"] != true {
				t.Fatalf("a token of the published key %s at /introspect: %v", first.ID, got)
			}
			if status, res := r.exchange(forged, oauth.TokenTypeAccessToken); status != http.StatusOK {
				t.Fatalf("a token of the published key %s as subject token: %d %v", first.ID, status, res)
			}
		case now.Equal(retireFirst):
			if published[first.ID] {
				t.Fatalf("key %s still in /jwks at its retirement", first.ID)
			}
			lastReal := ""
			for _, tk := range tokens {
				if tk.kid == first.ID {
					lastReal = tk.raw
				}
			}
			want := fmt.Sprintf(`subject_token: invalid token: no usable key: kid %q is not in the IDP's key set`, first.ID)
			for name, tok := range map[string]string{
				"the last token it issued": lastReal, "a token used before": forged, "a new token": forge(now, "forged-2"),
			} {
				if got := r.introspect(tok); len(got) != 1 || got["active"] != false {
					t.Errorf("%s of the retired key at /introspect: %v, want only active false", name, got)
				}
				status, res := r.exchange(tok, oauth.TokenTypeAccessToken)
				if desc, _ := res["error_description"].(string); status != http.StatusBadRequest || res["error"] != "invalid_request" || !strings.Contains(desc, want) {
					t.Errorf("%s of the retired key as subject token: %d %v, want 400 invalid_request %q", name, status, res, want)
				}
			}
		}
	}
	if len(signing) != 4 {
		t.Fatalf("%d signing keys over three rotations: %v", len(signing), signing)
	}
	if forged == "" {
		t.Fatal("the refusal side never ran")
	}
	// A rotation deletes the keys retired before it: the store holds the
	// last two, the one retiring now and the one that signs.
	keys, err = keyset.Load(ctx, r.keys, r.kek)
	if err != nil || len(keys) != 2 || keys[0].ID != signing[2] || keys[1].ID != signing[3] {
		t.Errorf("the store holds %d keys at the end (%v), want %v", len(keys), err, signing[2:])
	}
}
