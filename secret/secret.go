// Package secret parses, verifies and makes the hashed client secrets of
// an idtx config (`secret_hash`): bcrypt and argon2id in the PHC string
// format (RFC 9106). It is its own package because both the server (to
// verify) and the CLI (`idtx secret hash`, to make one) need it, and
// because a slow hash is a resource an attacker can spend: parameters
// above a ceiling are refused when the config is read, and verifications
// run through a bounded Pool.
package secret

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Hash algorithms.
const (
	AlgBcrypt   = "bcrypt"
	AlgArgon2id = "argon2id"
)

// Ceilings on the cost of one verification. A hash above them is refused
// by ParseHash, so that a config cannot make each wrong secret cost the
// server more than about a second of one core and 64 MiB.
const (
	// MaxArgon2Memory is the largest argon2id m, in KiB (64 MiB). RFC 9106
	// §4 recommends 64 MiB for memory-constrained settings; OWASP 19 MiB.
	MaxArgon2Memory = 64 << 10
	// MaxArgon2Time is the largest argon2id t (passes over the memory):
	// 10 passes of 64 MiB is already about a second on one core.
	MaxArgon2Time = 10
	// MaxArgon2Threads is the largest argon2id p (lanes).
	MaxArgon2Threads = 16
	// MaxBcryptCost is the largest bcrypt cost: 2^14 rounds take about a
	// second on one core, 16 times the default cost of 10.
	MaxBcryptCost = 14
)

// Parameters Hash uses for argon2id: the first OWASP Password Storage
// recommendation (m=19 MiB, t=2, p=1), a 16-byte salt and a 32-byte key.
const (
	HashArgon2Memory  = 19456
	HashArgon2Time    = 2
	HashArgon2Threads = 1
	argon2SaltLen     = 16
	argon2KeyLen      = 32
)

// Bounds on the parts of an argon2id hash (RFC 9106 §3.1: salt of at
// least 8 bytes; a tag of at least 4, of which we ask 16).
const (
	minArgon2Salt = 8
	maxArgon2Salt = 64
	minArgon2Key  = 16
	maxArgon2Key  = 64
)

// ErrMalformed is a secret hash that cannot be parsed.
var ErrMalformed = errors.New("malformed secret hash")

// ErrTooCostly is a secret hash whose parameters exceed a ceiling.
var ErrTooCostly = errors.New("secret hash exceeds a cost ceiling")

// hashError is a message that stands on its own and a sentinel for
// errors.Is.
type hashError struct {
	kind error
	msg  string
}

func (e *hashError) Error() string { return e.msg }
func (e *hashError) Unwrap() error { return e.kind }

func malformed(format string, args ...any) error {
	return &hashError{ErrMalformed, fmt.Sprintf(format, args...)}
}

func tooCostly(format string, args ...any) error {
	return &hashError{ErrTooCostly, fmt.Sprintf(format, args...)}
}

// Params is a parsed secret hash: its algorithm, its cost parameters and
// what it takes to verify a secret against it.
type Params struct {
	Alg string
	// Cost is bcrypt's cost (log2 of the rounds).
	Cost int
	// Memory (KiB), Time and Threads are argon2id's m, t and p.
	Memory  uint32
	Time    uint32
	Threads uint8

	encoded   string // the bcrypt hash as written
	salt, key []byte // argon2id
}

// ParseHash parses a bcrypt ($2a$, $2b$, $2y$) or PHC argon2id
// ($argon2id$v=19$m=…,t=…,p=…$salt$hash) secret hash. The error says what
// is wrong, and wraps ErrMalformed or ErrTooCostly.
func ParseHash(s string) (*Params, error) {
	switch {
	case strings.HasPrefix(s, "$argon2id$"):
		return parseArgon2id(s)
	case strings.HasPrefix(s, "$argon2"):
		return nil, malformed("%s is not supported: use argon2id (RFC 9106 §4)", strings.SplitN(s[1:], "$", 2)[0])
	case strings.HasPrefix(s, "$2"):
		return parseBcrypt(s)
	}
	return nil, malformed("not a bcrypt ($2b$…) or argon2id ($argon2id$v=19$…) hash")
}

const bcryptAlphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func parseBcrypt(s string) (*Params, error) {
	// $2b$10$ then 22 characters of salt and 31 of hash.
	if len(s) < 4 || s[3] != '$' || !strings.Contains("aby", s[2:3]) {
		return nil, malformed("bcrypt version %q is not supported (2a, 2b, 2y)", clip(strings.SplitN(s[1:], "$", 2)[0]))
	}
	if len(s) != 60 || s[6] != '$' {
		return nil, malformed("bcrypt hash is %d characters, want 60 ($2b$NN$ and 53 more)", len(s))
	}
	cost, err := strconv.Atoi(s[4:6])
	if err != nil || s[4] < '0' || s[4] > '9' {
		return nil, malformed("bcrypt cost %q is not a number", s[4:6])
	}
	for _, c := range s[7:] {
		if !strings.ContainsRune(bcryptAlphabet, c) {
			return nil, malformed("bcrypt hash has a character outside its base64 alphabet")
		}
	}
	if cost < bcrypt.MinCost {
		return nil, malformed("bcrypt cost %d is below the minimum of %d", cost, bcrypt.MinCost)
	}
	if cost > MaxBcryptCost {
		return nil, tooCostly("bcrypt cost %d exceeds the ceiling of %d", cost, MaxBcryptCost)
	}
	return &Params{Alg: AlgBcrypt, Cost: cost, encoded: s}, nil
}

func parseArgon2id(s string) (*Params, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 {
		return nil, malformed("argon2id hash has %d $-separated fields, want 5: $argon2id$v=19$m=…,t=…,p=…$salt$hash", len(parts)-1)
	}
	if parts[2] != "v=19" {
		return nil, malformed("argon2id version %q is not supported (v=19)", clip(parts[2]))
	}
	kv := strings.Split(parts[3], ",")
	if len(kv) != 3 {
		return nil, malformed("argon2id parameters %q are not m=…,t=…,p=…", clip(parts[3]))
	}
	var vals [3]uint64
	for i, name := range []string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(kv[i], name+"=")
		n, err := strconv.ParseUint(v, 10, 32)
		if !ok || err != nil || v == "" || v[0] == '+' {
			return nil, malformed("argon2id parameters %q are not m=…,t=…,p=… with decimal numbers", clip(parts[3]))
		}
		vals[i] = n
	}
	m, t, p := vals[0], vals[1], vals[2]
	switch {
	case p == 0:
		return nil, malformed("argon2id p=0: at least one lane is required")
	case p > MaxArgon2Threads:
		return nil, tooCostly("argon2id p=%d exceeds the ceiling of %d lanes", p, MaxArgon2Threads)
	case t == 0:
		return nil, malformed("argon2id t=0: at least one pass is required")
	case t > MaxArgon2Time:
		return nil, tooCostly("argon2id t=%d exceeds the ceiling of %d passes", t, MaxArgon2Time)
	case m > MaxArgon2Memory:
		return nil, tooCostly("argon2id m=%d KiB exceeds the %d MiB ceiling", m, MaxArgon2Memory>>10)
	case m < 8*p:
		return nil, malformed("argon2id m=%d KiB is below 8 KiB per lane (RFC 9106 §3.1)", m)
	}
	salt, err := base64.RawStdEncoding.Strict().DecodeString(parts[4])
	if err != nil {
		return nil, malformed("argon2id salt is not unpadded base64")
	}
	if len(salt) < minArgon2Salt || len(salt) > maxArgon2Salt {
		return nil, malformed("argon2id salt is %d bytes, want %d to %d", len(salt), minArgon2Salt, maxArgon2Salt)
	}
	key, err := base64.RawStdEncoding.Strict().DecodeString(parts[5])
	if err != nil {
		return nil, malformed("argon2id hash is not unpadded base64")
	}
	if len(key) < minArgon2Key || len(key) > maxArgon2Key {
		return nil, malformed("argon2id hash is %d bytes, want %d to %d", len(key), minArgon2Key, maxArgon2Key)
	}
	return &Params{Alg: AlgArgon2id, Memory: uint32(m), Time: uint32(t), Threads: uint8(p), salt: salt, key: key}, nil
}

// String describes the parameters, never the hash itself.
func (p *Params) String() string {
	if p.Alg == AlgBcrypt {
		return fmt.Sprintf("bcrypt cost %d", p.Cost)
	}
	return fmt.Sprintf("argon2id m=%d KiB t=%d p=%d", p.Memory, p.Time, p.Threads)
}

// maxBcryptSecret is the most bcrypt reads of a secret.
const maxBcryptSecret = 72

// Verify reports whether secret matches the hash, in constant time for a
// given hash. It costs what the parameters say: call it through a Pool.
func (p *Params) Verify(secret string) bool {
	switch p.Alg {
	case AlgBcrypt:
		// bcrypt reads the first 72 bytes only: without the length check,
		// a hash of a 72-byte secret would take that secret followed by
		// anything. The comparison runs either way, so the time a wrong
		// secret takes does not depend on its length.
		ok := bcrypt.CompareHashAndPassword([]byte(p.encoded), []byte(secret)) == nil
		return ok && len(secret) <= maxBcryptSecret
	case AlgArgon2id:
		got := argon2.IDKey([]byte(secret), p.salt, p.Time, p.Memory, p.Threads, uint32(len(p.key)))
		return subtle.ConstantTimeCompare(got, p.key) == 1
	}
	return false
}

// Dummy is a hash with the same algorithm and parameters and a random
// salt and digest: verifying any secret against it costs what a real
// verification costs and never succeeds. A server verifies a secret sent
// for an unknown client against it, so that timing does not tell which
// client ids exist.
func (p *Params) Dummy() *Params {
	d := *p
	switch p.Alg {
	case AlgBcrypt:
		b := []byte(p.encoded[:7])
		for _, r := range randomBytes(53) {
			b = append(b, bcryptAlphabet[int(r)%len(bcryptAlphabet)])
		}
		d.encoded = string(b)
	case AlgArgon2id:
		d.salt, d.key = randomBytes(len(p.salt)), randomBytes(len(p.key))
	}
	return &d
}

// Hash makes a secret_hash for plaintext: bcrypt at bcrypt's default cost,
// or argon2id with HashArgon2Memory, HashArgon2Time and HashArgon2Threads
// and a random salt, in the PHC string format.
func Hash(alg, plaintext string) (string, error) {
	if plaintext == "" {
		return "", errors.New("the secret is empty")
	}
	switch alg {
	case AlgBcrypt:
		// bcrypt reads only the first 72 bytes: a longer secret would
		// match anything that shares them.
		if len(plaintext) > maxBcryptSecret {
			return "", fmt.Errorf("bcrypt reads at most 72 bytes and the secret has %d: use argon2id", len(plaintext))
		}
		h, err := bcrypt.GenerateFromPassword([]byte(plaintext), bcrypt.DefaultCost)
		if err != nil {
			return "", fmt.Errorf("bcrypt: %w", err)
		}
		return string(h), nil
	case AlgArgon2id:
		salt := randomBytes(argon2SaltLen)
		key := argon2.IDKey([]byte(plaintext), salt, HashArgon2Time, HashArgon2Memory, HashArgon2Threads, argon2KeyLen)
		b64 := base64.RawStdEncoding.EncodeToString
		return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", HashArgon2Memory, HashArgon2Time, HashArgon2Threads, b64(salt), b64(key)), nil
	}
	return "", fmt.Errorf("unknown hash algorithm %q (bcrypt, argon2id)", clip(alg))
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return b
}

// clip shortens text taken from a hash before it is echoed in an error.
func clip(s string) string {
	const max = 32
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
