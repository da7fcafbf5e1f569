package exchange_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/argon2"

	"github.com/idtx/idtx/exchange"
	"github.com/idtx/idtx/oauth"
	"github.com/idtx/idtx/secret"
	"github.com/idtx/idtx/store"
)

// A hashed client pays the hash once: the next exchanges within the TTL
// come from the verified cache, on the engine's clock.
func TestHashedSecretCache(t *testing.T) {
	e := newEnv(t)
	for _, c := range [][2]string{{"argon-client", "argon-secret"}, {"bcrypt-client", "bcrypt-secret"}} {
		t.Run(c[0], func(t *testing.T) {
			e.now = t0
			exchangeAs := func(secret string) response { return e.post("/token", e.form(e.subject(nil)), c[0], secret) }
			before := e.pool.Verifications()
			for i := range 3 {
				if r := exchangeAs(c[1]); r.status != 200 {
					t.Fatalf("exchange %d: %d %v", i, r.status, r.body)
				}
			}
			if n := e.pool.Verifications() - before; n != 1 {
				t.Errorf("3 exchanges ran %d hash verifications, want 1", n)
			}
			e.now = t0.Add(5*time.Minute - time.Second)
			exchangeAs(c[1])
			if n := e.pool.Verifications() - before; n != 1 {
				t.Errorf("within 5m: %d verifications, want 1", n)
			}
			e.now = t0.Add(5 * time.Minute)
			if r := exchangeAs(c[1]); r.status != 200 {
				t.Fatalf("after the TTL: %d %v", r.status, r.body)
			}
			if n := e.pool.Verifications() - before; n != 2 {
				t.Errorf("after 5m: %d verifications, want 2 (the cache entry expired)", n)
			}
			for range 2 { // a wrong secret is never cached
				expectError(t, exchangeAs(c[1]+"x"), 401, "invalid_client", "client authentication failed (client_secret_basic): unknown client or wrong secret")
			}
			if n := e.pool.Verifications() - before; n != 4 {
				t.Errorf("after 2 wrong secrets: %d verifications, want 4", n)
			}
		})
	}
}

// A wrong secret for an unknown client id is verified against a dummy
// hash through the same pool, so it costs what a hashed client costs.
func TestUnknownClientRunsDummyVerify(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name  string
		form  url.Values
		basic []string
		runs  uint64
		code  int
		desc  string
	}{
		{"unknown id, Basic", e.form(e.subject(nil)), []string{"nobody", "x"}, 1, 401, "client authentication failed (client_secret_basic): unknown client or wrong secret"},
		{"unknown id, post", e.form(e.subject(nil), "client_id", "nobody", "client_secret", "x"), nil, 1, 401, "client authentication failed (client_secret_post): unknown client or wrong secret"},
		{"hashed client, wrong secret", e.form(e.subject(nil)), []string{"bcrypt-client", "x"}, 1, 401, "client authentication failed (client_secret_basic): unknown client or wrong secret"},
		{"plain client, wrong secret", e.form(e.subject(nil)), []string{"demo-client", "x"}, 0, 401, "client authentication failed (client_secret_basic): unknown client or wrong secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.pool.Verifications()
			expectError(t, e.post("/token", tt.form, tt.basic...), tt.code, "invalid_client", tt.desc)
			if n := e.pool.Verifications() - before; n != tt.runs {
				t.Errorf("%d hash verifications, want %d", n, tt.runs)
			}
		})
	}
	t.Run("no hashed client, no dummy", func(t *testing.T) {
		plain := newEnvWith(t, store.NewMemory(), func(y string, _ map[string][]byte) string {
			a, b := strings.Index(y, "  - id: bcrypt-client"), strings.Index(y, "  - id: jwt-client")
			return y[:a] + y[b:]
		})
		expectError(t, plain.post("/token", plain.form(plain.subject(nil)), "nobody", "x"), 401, "invalid_client", "unknown client or wrong secret")
		if n := plain.pool.Verifications(); n != 0 {
			t.Errorf("%d verifications with no hashed client configured", n)
		}
	})
}

// With every slot of the pool taken, a hashed client (or an unknown id)
// gets temporarily_unavailable with Retry-After once the wait bound
// passes, and a plain-secret client is not held up at all.
func TestHashPoolBusy(t *testing.T) {
	pool := secret.NewPool(1, 10*time.Millisecond)
	e := newEnvOpts(t, store.NewMemory(), nil, func(o *exchange.Options) { o.HashPool = pool })
	inside, release := make(chan struct{}), make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		pool.Do(context.Background(), func() { close(inside); <-release })
	}()
	<-inside
	for _, basic := range [][]string{{"argon-client", "argon-secret"}, {"nobody", "x"}} {
		r := e.post("/token", e.form(e.subject(nil)), basic...)
		expectError(t, r, 503, "temporarily_unavailable", "client authentication (client_secret_basic): every secret hash verifier is busy; retry in 10ms")
		if got := r.header.Get("Retry-After"); got != "1" {
			t.Errorf("%s: Retry-After %q, want 1", basic[0], got)
		}
		if r.header.Get("WWW-Authenticate") != "" {
			t.Errorf("%s: a 503 carries WWW-Authenticate", basic[0])
		}
	}
	if r := e.post("/token", e.form(e.subject(nil))); r.status != 200 {
		t.Errorf("plain-secret client while the pool is full: %d %v", r.status, r.body)
	}
	close(release)
	<-done
	if r := e.post("/token", e.form(e.subject(nil)), "argon-client", "argon-secret"); r.status != 200 {
		t.Errorf("after the pool freed: %d %v", r.status, r.body)
	}
}

// A failed client authentication is logged with the client id that was
// tried, clipped.
func TestFailedAuthLogsClientID(t *testing.T) {
	e := newEnv(t)
	var buf bytes.Buffer
	e.handler = exchange.NewHandler(e.engine, slog.New(slog.NewTextHandler(&buf, nil)))
	long := strings.Repeat("a", 100)
	tests := []struct {
		name  string
		form  url.Values
		basic []string
		want  string
	}{
		{"Basic", e.form(e.subject(nil)), []string{"demo-client", "wrong"}, "client=demo-client"},
		{"post", e.form(e.subject(nil), "client_id", "bcrypt-client", "client_secret", "wrong"), nil, "client=bcrypt-client"},
		{"unknown id", e.form(e.subject(nil)), []string{"nobody", "x"}, "client=nobody"},
		{"assertion iss", e.form(e.subject(nil), "client_assertion_type", oauth.ClientAssertionTypeJWTBearer,
			"client_assertion", e.assertion(jwt.MapClaims{"iss": "mallory", "sub": "mallory"})), nil, "client=mallory"},
		{"clipped", e.form(e.subject(nil)), []string{long, "x"}, "client=" + long[:64] + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf.Reset()
			if r := e.post("/token", tt.form, tt.basic...); r.status != 401 {
				t.Fatalf("%d %v", r.status, r.body)
			}
			line := buf.String()
			if !strings.Contains(line, "exchange refused") || !strings.Contains(line, tt.want) || !strings.Contains(line, "result=invalid_client") || !strings.Contains(line, "step=client") {
				t.Errorf("log %q lacks %s", line, tt.want)
			}
			if strings.Contains(line, long[:65]) {
				t.Errorf("log %q has the id unclipped", line)
			}
		})
	}
}

// 120 concurrent wrong secrets for an argon2id client with m=64 MiB: the
// pool keeps the heap bounded, the flood gets 401 or 503, and another
// client's exchange still succeeds while it runs.
func TestHashFloodBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("a flood of argon2id verifications")
	}
	key := argon2.IDKey([]byte("heavy-secret"), []byte("saltsaltsalt"), 1, 64<<10, 1, 32)
	heavy := "$argon2id$v=19$m=65536,t=1,p=1$c2FsdHNhbHRzYWx0$" + base64.RawStdEncoding.EncodeToString(key)
	e := newEnvWith(t, store.NewMemory(), func(y string, _ map[string][]byte) string {
		return y + "  - id: heavy-client\n    secret_hash: " + heavy + "\n    services: [\"*\"]\n"
	})
	runtime.GC()

	var peakHeap, peakSys atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapSys > peakHeap.Load() {
				peakHeap.Store(ms.HeapSys)
			}
			if ms.Sys > peakSys.Load() {
				peakSys.Store(ms.Sys)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()

	const flood = 120
	subject := e.subject(nil)
	results := make([]response, flood)
	var wg sync.WaitGroup
	for i := range flood {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = e.post("/token", e.form(subject), "heavy-client", fmt.Sprintf("wrong-%d", i))
		}()
	}
	for deadline := time.Now().Add(30 * time.Second); e.pool.Verifications() == 0; time.Sleep(time.Millisecond) { // the flood has reached the pool
		if time.Now().After(deadline) {
			t.Fatal("no verification began within 30s of the flood")
		}
	}
	start := time.Now()
	r := e.post("/token", e.form(subject, "client_id", "restricted-client", "client_secret", "restricted-secret"))
	latency := time.Since(start)
	wg.Wait()
	close(stop)
	<-sampled

	if r.status != 200 {
		t.Errorf("another client's exchange during the flood: %d %v", r.status, r.body)
	}
	counts := map[string]int{}
	for i, r := range results {
		switch {
		case r.status == 401 && r.str("error") == "invalid_client" && strings.Contains(r.str("error_description"), "wrong secret"):
		case r.status == 503 && r.str("error") == "temporarily_unavailable" && r.header.Get("Retry-After") == "2":
		default:
			t.Errorf("flood request %d: %d %v", i, r.status, r.body)
		}
		counts[r.str("error")]++
	}
	t.Logf("flood of %d: %v; %d hash verifications in %d slot(s); peak HeapSys %d MiB, Sys %d MiB; the other client answered in %s",
		flood, counts, e.pool.Verifications(), secret.DefaultSlots(), peakHeap.Load()>>20, peakSys.Load()>>20, latency)
	if peakHeap.Load() > 512<<20 {
		t.Errorf("peak HeapSys %d MiB during the flood, want under 512 MiB", peakHeap.Load()>>20)
	}
}

// Over HTTP: one private_key_jwt client at its bound gets an honest error;
// another client is not affected; expired entries make room again.
func TestReplayBoundPerClient(t *testing.T) {
	var e *env
	e = newEnvOpts(t, store.NewMemory(), func(y string, _ map[string][]byte) string {
		return y + "  - id: jwt-client-2\n    jwks_file: client.jwks\n    services: [\"*\"]\n"
	}, func(o *exchange.Options) {
		o.Replay = store.NewMemoryReplayCache(func() time.Time { return e.now }, 2)
	})
	send := func(client, jti string) response {
		a := e.assertion(jwt.MapClaims{"iss": client, "sub": client, "jti": jti, "exp": e.now.Add(time.Minute).Unix()})
		return e.post("/token", e.form(e.subject(nil), "client_assertion_type", oauth.ClientAssertionTypeJWTBearer, "client_assertion", a))
	}
	for _, jti := range []string{"a1", "a2"} {
		if r := send("jwt-client", jti); r.status != 200 {
			t.Fatalf("%s: %d %v", jti, r.status, r.body)
		}
	}
	expectError(t, send("jwt-client", "a3"), 401, "invalid_client",
		"client_assertion: client jwt-client has 2 unexpired assertions (the limit); use shorter-lived assertions")
	if r := send("jwt-client-2", "a1"); r.status != 200 {
		t.Errorf("jwt-client-2 while jwt-client is at its limit: %d %v", r.status, r.body)
	}
	expectError(t, send("jwt-client", "a1"), 401, "invalid_client", `client_assertion: jti "a1" was already used`)
	e.now = t0.Add(time.Minute + 30*time.Second) // exp plus the 30s leeway
	if r := send("jwt-client", "a3"); r.status != 200 {
		t.Errorf("after the first assertions expired: %d %v", r.status, r.body)
	}
	e.now = t0
	expectError(t, send("jwt-client-2", strings.Repeat("j", 257)), 401, "invalid_client", "client_assertion: jti is longer than 256 bytes")
}

// The assertion's aud: one value, the issuer or the token endpoint; an
// array naming anything else is refused (audience injection,
// draft-ietf-oauth-rfc7523bis); typ client-authentication+jwt names the
// issuer alone.
func TestAssertionAudience(t *testing.T) {
	e := newEnv(t)
	const iss, tokenURL = "https://sts.test", "https://sts.test/token"
	n := 0
	send := func(path string, aud any, typ string) response {
		n++
		c := jwt.MapClaims{"iss": "jwt-client", "sub": "jwt-client", "jti": fmt.Sprint("aud-", n), "exp": e.now.Add(time.Minute).Unix()}
		if aud != nil {
			c["aud"] = aud
		}
		var header map[string]any
		if typ != "" {
			header = map[string]any{"typ": typ}
		}
		a := e.client.sign(t, c, header)
		f := e.form(e.subject(nil), "client_assertion_type", oauth.ClientAssertionTypeJWTBearer, "client_assertion", a)
		if path == "/introspect" {
			f = url.Values{"token": {"x"}, "client_assertion_type": {oauth.ClientAssertionTypeJWTBearer}, "client_assertion": {a}}
		}
		return e.post(path, f)
	}
	const many = "client_assertion: aud has %d values; it must be exactly one, https://sts.test or https://sts.test/token (audience injection, draft-ietf-oauth-rfc7523bis)"
	const typed = `client_assertion: typ client-authentication+jwt requires aud to be the issuer https://sts.test alone, not %q (draft-ietf-oauth-rfc7523bis)`
	tests := []struct {
		name string
		path string
		aud  any
		typ  string
		want string // "" accepted
	}{
		{"issuer string", "/token", iss, "", ""},
		{"token endpoint string", "/token", tokenURL, "", ""},
		{"issuer in a one-element array", "/token", []string{iss}, "", ""},
		{"token endpoint in a one-element array", "/token", []string{tokenURL}, "", ""},
		{"injection: another server beside the token endpoint", "/token", []string{tokenURL, "https://evil.test"}, "", fmt.Sprintf(many, 2)},
		{"injection: another server before the issuer", "/token", []string{"https://evil.test", iss}, "", fmt.Sprintf(many, 2)},
		{"issuer and token endpoint together", "/token", []string{iss, tokenURL}, "", fmt.Sprintf(many, 2)},
		{"empty array", "/token", []string{}, "", fmt.Sprintf(many, 0)},
		{"no aud", "/token", nil, "", fmt.Sprintf(many, 0)},
		{"another server", "/token", "https://evil.test", "", `client_assertion: aud "https://evil.test" must be https://sts.test or https://sts.test/token (RFC 7523 §3)`},
		{"issuer with a trailing slash", "/token", iss + "/", "", `client_assertion: aud "https://sts.test/" must be`},
		{"typed, issuer", "/token", iss, "client-authentication+jwt", ""},
		{"typed, issuer in an array", "/token", []string{iss}, "client-authentication+jwt", ""},
		{"typed, token endpoint", "/token", tokenURL, "client-authentication+jwt", fmt.Sprintf(typed, tokenURL)},
		{"typed with application/, token endpoint", "/token", tokenURL, "application/client-authentication+jwt", fmt.Sprintf(typed, tokenURL)},
		{"typed in capitals, token endpoint", "/token", tokenURL, "Client-Authentication+JWT", fmt.Sprintf(typed, tokenURL)},
		{"typed, two values", "/token", []string{iss, tokenURL}, "client-authentication+jwt", fmt.Sprintf(many, 2)},
		{"typed at+jwt", "/token", iss, "at+jwt", `client_assertion: typ "at+jwt" is not JWT or client-authentication+jwt`},
		{"typed JWT", "/token", tokenURL, "JWT", ""},
		{"introspect, token endpoint", "/introspect", tokenURL, "", ""},
		{"introspect, issuer", "/introspect", iss, "", ""},
		{"introspect, introspection endpoint", "/introspect", "https://sts.test/introspect", "", `client_assertion: aud "https://sts.test/introspect" must be https://sts.test or https://sts.test/token (RFC 7523 §3)`},
		{"introspect, injection", "/introspect", []string{iss, "https://evil.test"}, "", fmt.Sprintf(many, 2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := send(tt.path, tt.aud, tt.typ)
			if tt.want == "" {
				if r.status != http.StatusOK {
					t.Fatalf("%d %v", r.status, r.body)
				}
				return
			}
			expectError(t, r, 401, "invalid_client", tt.want)
		})
	}
}
