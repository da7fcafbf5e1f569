package secret_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/idtx/idtx/secret"
)

func argon(m, t uint32, p uint8, salt, pw string) string {
	key := argon2.IDKey([]byte(pw), []byte(salt), t, m, p, 32)
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$", m, t, p) +
		base64.RawStdEncoding.EncodeToString([]byte(salt)) + "$" + base64.RawStdEncoding.EncodeToString(key)
}

func TestHashRoundTrip(t *testing.T) {
	for _, alg := range []string{secret.AlgBcrypt, secret.AlgArgon2id} {
		t.Run(alg, func(t *testing.T) {
			h, err := secret.Hash(alg, "s3cret")
			if err != nil {
				t.Fatal(err)
			}
			p, err := secret.ParseHash(h)
			if err != nil {
				t.Fatalf("ParseHash(%q): %v", h, err)
			}
			if p.Alg != alg {
				t.Errorf("alg %s", p.Alg)
			}
			switch alg {
			case secret.AlgBcrypt:
				if p.Cost != bcrypt.DefaultCost {
					t.Errorf("cost %d, want bcrypt's default %d", p.Cost, bcrypt.DefaultCost)
				}
			case secret.AlgArgon2id:
				if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") || p.String() != "argon2id m=19456 KiB t=2 p=1" {
					t.Errorf("hash %s params %s, want OWASP's m=19456 t=2 p=1", h, p)
				}
			}
			if !p.Verify("s3cret") {
				t.Error("the right secret does not verify")
			}
			if p.Verify("s3cret ") || p.Verify("") {
				t.Error("a wrong secret verifies")
			}
			h2, _ := secret.Hash(alg, "s3cret")
			if h2 == h {
				t.Error("two hashes of one secret are equal: no random salt")
			}
			d := p.Dummy()
			if d.String() != p.String() || d.Verify("s3cret") {
				t.Errorf("dummy %s verifies or differs from %s", d, p)
			}
		})
	}
}

func TestHashRefusals(t *testing.T) {
	for _, tt := range []struct{ alg, plain, want string }{
		{"bcrypt", "", "the secret is empty"},
		{"bcrypt", strings.Repeat("a", 73), "bcrypt reads at most 72 bytes and the secret has 73: use argon2id"},
		{"scrypt", "x", `unknown hash algorithm "scrypt" (bcrypt, argon2id)`},
	} {
		if _, err := secret.Hash(tt.alg, tt.plain); err == nil || err.Error() != tt.want {
			t.Errorf("Hash(%s, %.8q…) = %v, want %q", tt.alg, tt.plain, err, tt.want)
		}
	}
}

func TestParseHash(t *testing.T) {
	b10, _ := bcrypt.GenerateFromPassword([]byte("x"), 10)
	b4, _ := bcrypt.GenerateFromPassword([]byte("x"), 4)
	bcryptAt := func(cost string) string { return string(b4[:4]) + cost + string(b4[6:]) }
	ok := argon(64, 1, 1, "saltsalt", "x")
	parts := strings.Split(ok, "$")
	withParams := func(params string) string { return "$argon2id$v=19$" + params + "$" + parts[4] + "$" + parts[5] }
	b64 := base64.RawStdEncoding.EncodeToString
	tests := []struct {
		name, hash string
		kind       error // nil: accepted
		want       string
	}{
		{"bcrypt 2b", string(b10), nil, "bcrypt cost 10"},
		{"bcrypt 2a", "$2a$" + string(b10[4:]), nil, "bcrypt cost 10"},
		{"bcrypt 2y", "$2y$" + string(b10[4:]), nil, "bcrypt cost 10"},
		{"bcrypt at the ceiling", bcryptAt("14"), nil, "bcrypt cost 14"},
		{"argon2id", ok, nil, "argon2id m=64 KiB t=1 p=1"},
		{"argon2id at the ceilings", withParams("m=65536,t=10,p=16"), nil, "argon2id m=65536 KiB t=10 p=16"},
		{"argon2id at 8 KiB per lane", withParams("m=32,t=1,p=4"), nil, "argon2id m=32 KiB t=1 p=4"},
		{"not a hash", "hunter2", secret.ErrMalformed, "not a bcrypt ($2b$…) or argon2id ($argon2id$v=19$…) hash"},
		{"empty", "", secret.ErrMalformed, "not a bcrypt"},
		{"argon2i", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$" + parts[5], secret.ErrMalformed, "argon2i is not supported: use argon2id"},
		{"bcrypt 2x", "$2x$" + string(b10[4:]), secret.ErrMalformed, `bcrypt version "2x" is not supported (2a, 2b, 2y)`},
		{"bcrypt short", string(b10[:59]), secret.ErrMalformed, "bcrypt hash is 59 characters, want 60"},
		{"bcrypt cost not a number", bcryptAt("1x"), secret.ErrMalformed, `bcrypt cost "1x" is not a number`},
		{"bcrypt alphabet", string(b10[:59]) + "!", secret.ErrMalformed, "outside its base64 alphabet"},
		{"bcrypt cost below 4", bcryptAt("03"), secret.ErrMalformed, "bcrypt cost 3 is below the minimum of 4"},
		{"bcrypt cost above ceiling", bcryptAt("15"), secret.ErrTooCostly, "bcrypt cost 15 exceeds the ceiling of 14"},
		{"bcrypt cost 31", bcryptAt("31"), secret.ErrTooCostly, "bcrypt cost 31 exceeds the ceiling of 14"},
		{"argon2id memory above ceiling", withParams("m=131072,t=1,p=1"), secret.ErrTooCostly, "argon2id m=131072 KiB exceeds the 64 MiB ceiling"},
		{"argon2id memory 4 GiB", withParams("m=4194304,t=1,p=1"), secret.ErrTooCostly, "argon2id m=4194304 KiB exceeds the 64 MiB ceiling"},
		{"argon2id time above ceiling", withParams("m=64,t=11,p=1"), secret.ErrTooCostly, "argon2id t=11 exceeds the ceiling of 10 passes"},
		{"argon2id lanes above ceiling", withParams("m=1024,t=1,p=17"), secret.ErrTooCostly, "argon2id p=17 exceeds the ceiling of 16 lanes"},
		{"argon2id m overflows uint32", withParams("m=4294967296,t=1,p=1"), secret.ErrMalformed, "are not m=…,t=…,p=… with decimal numbers"},
		{"argon2id t=0", withParams("m=64,t=0,p=1"), secret.ErrMalformed, "argon2id t=0: at least one pass is required"},
		{"argon2id p=0", withParams("m=64,t=1,p=0"), secret.ErrMalformed, "argon2id p=0: at least one lane is required"},
		{"argon2id m below 8p", withParams("m=16,t=1,p=4"), secret.ErrMalformed, "argon2id m=16 KiB is below 8 KiB per lane"},
		{"argon2id order", withParams("t=1,m=64,p=1"), secret.ErrMalformed, "are not m=…,t=…,p=… with decimal numbers"},
		{"argon2id signed", withParams("m=+64,t=1,p=1"), secret.ErrMalformed, "with decimal numbers"},
		{"argon2id two params", withParams("m=64,t=1"), secret.ErrMalformed, `argon2id parameters "m=64,t=1" are not m=…,t=…,p=…`},
		{"argon2id version 16", strings.Replace(ok, "v=19", "v=16", 1), secret.ErrMalformed, `argon2id version "v=16" is not supported (v=19)`},
		{"argon2id no version", "$argon2id$m=64,t=1,p=1$" + parts[4] + "$" + parts[5], secret.ErrMalformed, "argon2id hash has 4 $-separated fields, want 5"},
		{"argon2id padded salt", withParams("m=64,t=1,p=1") + "=", secret.ErrMalformed, "argon2id hash is not unpadded base64"},
		{"argon2id short salt", "$argon2id$v=19$m=64,t=1,p=1$" + b64([]byte("salt")) + "$" + parts[5], secret.ErrMalformed, "argon2id salt is 4 bytes, want 8 to 64"},
		{"argon2id short hash", "$argon2id$v=19$m=64,t=1,p=1$" + parts[4] + "$" + b64([]byte("short")), secret.ErrMalformed, "argon2id hash is 5 bytes, want 16 to 64"},
		{"argon2id salt not base64", "$argon2id$v=19$m=64,t=1,p=1$!!!!!!!!!!!$" + parts[5], secret.ErrMalformed, "argon2id salt is not unpadded base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := secret.ParseHash(tt.hash)
			if tt.kind == nil {
				if err != nil || p.String() != tt.want {
					t.Fatalf("ParseHash = %v, %v; want %s", p, err, tt.want)
				}
				return
			}
			if err == nil || !errors.Is(err, tt.kind) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseHash error %v, want %v containing %q", err, tt.kind, tt.want)
			}
		})
	}
}

func TestPoolBoundsConcurrency(t *testing.T) {
	pool := secret.NewPool(2, time.Minute)
	var running, peak atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := pool.Do(context.Background(), func() {
				n := running.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				time.Sleep(time.Millisecond)
				running.Add(-1)
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if peak.Load() > 2 {
		t.Errorf("%d ran at once in a pool of 2", peak.Load())
	}
}

func TestPoolBusy(t *testing.T) {
	pool := secret.NewPool(1, 10*time.Millisecond)
	inside, release := make(chan struct{}), make(chan struct{})
	go pool.Do(context.Background(), func() { close(inside); <-release })
	<-inside
	defer close(release)
	h, _ := secret.ParseHash(argon(64, 1, 1, "saltsalt", "x"))

	ok, err := pool.Verify(context.Background(), h, "x")
	if ok || !errors.Is(err, secret.ErrBusy) || !strings.Contains(err.Error(), "no slot free within 10ms") {
		t.Errorf("full pool: %v %v, want ErrBusy after the wait bound", ok, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := pool.Verify(ctx, h, "x"); !errors.Is(err, secret.ErrBusy) || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v, want ErrBusy wrapping context.Canceled", err)
	}
	if n := pool.Verifications(); n != 0 {
		t.Errorf("%d verifications ran while the pool was full", n)
	}
}

func TestPoolVerify(t *testing.T) {
	pool := secret.NewPool(0, 0)
	if pool.MaxWait() != secret.DefaultMaxWait {
		t.Errorf("MaxWait %s", pool.MaxWait())
	}
	if n := secret.DefaultSlots(); n < 1 || n > 4 {
		t.Errorf("DefaultSlots %d, want 1..4", n)
	}
	h, _ := secret.ParseHash(argon(64, 1, 1, "saltsalt", "x"))
	for _, tt := range []struct {
		secret string
		want   bool
	}{{"x", true}, {"y", false}} {
		if ok, err := pool.Verify(context.Background(), h, tt.secret); ok != tt.want || err != nil {
			t.Errorf("Verify(%q) = %v %v", tt.secret, ok, err)
		}
	}
	if n := pool.Verifications(); n != 2 {
		t.Errorf("Verifications = %d, want 2", n)
	}
}

// bcrypt reads 72 bytes of a secret: a hash made elsewhere of a 72-byte
// secret verifies that secret, and not the secret followed by anything.
func TestBcryptLongSecret(t *testing.T) {
	long := strings.Repeat("A", 72)
	h, err := bcrypt.GenerateFromPassword([]byte(long), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	p, err := secret.ParseHash(string(h))
	if err != nil {
		t.Fatal(err)
	}
	if !p.Verify(long) {
		t.Fatal("the 72-byte secret does not verify")
	}
	if p.Verify(long+"zzz") || p.Verify(long+"A") {
		t.Fatal("a longer secret with the same first 72 bytes verifies")
	}
}
