// Package keyset keeps the STS's signing keys with their lifecycle, in
// the store that replicas share: a new key is published in /jwks before it
// signs, and an old one stays published until every token it signed has
// expired (RFC 7517 key sets; RFC 7515 §4.1.4 kid). Private keys are
// sealed with AES-GCM under a key-encryption key when one is given. It is
// a package of its own because the key set is neither a consent nor part
// of one exchange: the signer, `idtx keys` and the store all use it.
package keyset

import (
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/idtx/idtx/idp"
	"github.com/idtx/idtx/store"
)

// JWKSMaxAge is how long a resource server may cache /jwks (its
// Cache-Control max-age).
const JWKSMaxAge = 300 * time.Second

// RefreshInterval is how often a server reads the key set from the store
// again, and checks the rotation schedule.
const RefreshInterval = 30 * time.Second

// PublishLead is how long a new key is published before it signs by
// default: a server shows it in /jwks within RefreshInterval, and a
// resource server that fetched /jwks just before that drops its copy
// within JWKSMaxAge, so none sees a kid it cannot find.
const PublishLead = JWKSMaxAge + RefreshInterval

// Key is one signing key and its lifecycle.
type Key struct {
	ID      string // the RFC 7638 thumbprint of the public key
	Alg     string // ES256, RS256 or EdDSA
	Private crypto.Signer
	// CreatedAt is when the key was added; SignsFrom when it becomes the
	// signing key (a later key's SignsFrom ends its signing).
	CreatedAt, SignsFrom time.Time
	// RetireAfter is when the key leaves /jwks: the time it stopped
	// signing plus the longest token lifetime; zero while it signs.
	RetireAfter time.Time
}

// Policy is how a server keeps its key set.
type Policy struct {
	// Alg is the algorithm of the first key and of scheduled rotations.
	Alg string
	// MaxTokenLifetime is the longest lifetime of a token the STS signs:
	// a key stays published this long after it stops signing.
	MaxTokenLifetime time.Duration
	// RotateEvery, when set, adds a key that signs this long after the
	// newest one began to (signing.rotate_every).
	RotateEvery time.Duration
	// KEK seals new private keys and opens stored ones.
	KEK *KEK
	// First, when set, is the key to start an empty set with (a key file
	// an earlier idtx generated); else one is generated.
	First func() (crypto.Signer, error)
}

// Load reads and opens the whole key set, sorted by SignsFrom.
func Load(ctx context.Context, s store.Keys, kek *KEK) ([]Key, error) {
	recs, err := s.Records(ctx)
	if err != nil {
		return nil, err
	}
	return openAll(recs, kek)
}

func openAll(recs []store.KeyRecord, kek *KEK) ([]Key, error) {
	keys := make([]Key, 0, len(recs))
	for _, r := range recs {
		k, err := openRecord(r, kek)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	sortKeys(keys)
	return keys, nil
}

func sortKeys(keys []Key) {
	slices.SortStableFunc(keys, func(a, b Key) int { return a.SignsFrom.Compare(b.SignsFrom) })
}

// Ensure gives the store a key when it has none, and applies p's rotation
// schedule at now; it changes the store under its lock only when needed,
// and re-checks under the lock, so replicas doing it at once agree.
//
// It also records p.MaxTokenLifetime in the store when it is longer than
// any recorded before, so that a rotation made by a process with a
// shorter lifetime never deletes a key whose tokens this server signed
// are still valid. It runs at start and at each refresh, never per token.
func Ensure(ctx context.Context, s store.Keys, now time.Time, p Policy) error {
	recs, err := s.Records(ctx)
	if err != nil {
		return err
	}
	life, err := s.MaxLifetime(ctx)
	if err != nil {
		return err
	}
	if !needsChange(recs, now, p) && life >= p.MaxTokenLifetime {
		return nil
	}
	return s.Update(ctx, func(tx store.KeyTx) error {
		if err := raiseLifetime(ctx, tx, p.MaxTokenLifetime); err != nil {
			return err
		}
		recs, err := tx.Records(ctx)
		if err != nil {
			return err
		}
		if !needsChange(recs, now, p) {
			return nil
		}
		if len(recs) == 0 {
			var key crypto.Signer
			if p.First != nil {
				if key, err = p.First(); err != nil {
					return err
				}
			}
			_, err := add(ctx, tx, recs, key, p.Alg, now, now, p)
			return err
		}
		at := newest(recs).SignsFrom.Add(p.RotateEvery)
		_, err = add(ctx, tx, recs, nil, newest(recs).Alg, now, later(at, now.Add(PublishLead)), p)
		return err
	})
}

func needsChange(recs []store.KeyRecord, now time.Time, p Policy) bool {
	if len(recs) == 0 {
		return true
	}
	return p.RotateEvery > 0 && !now.Add(PublishLead).Before(newest(recs).SignsFrom.Add(p.RotateEvery))
}

func newest(recs []store.KeyRecord) store.KeyRecord {
	n := recs[0]
	for _, r := range recs[1:] {
		if r.SignsFrom.After(n.SignsFrom) {
			n = r
		}
	}
	return n
}

// Rotate adds a key of alg that signs from at, and schedules the
// retirement of the keys it takes over from. Keys retired before now are
// deleted: a private key is not kept past its use. An at before now is
// taken as now: a key cannot have signed in the past, and the key it takes
// over from must stay published for the tokens it signed until now.
func Rotate(ctx context.Context, s store.Keys, now, at time.Time, alg string, p Policy) (Key, error) {
	at = later(at, now)
	var k Key
	err := s.Update(ctx, func(tx store.KeyTx) error {
		if err := raiseLifetime(ctx, tx, p.MaxTokenLifetime); err != nil {
			return err
		}
		recs, err := tx.Records(ctx)
		if err != nil {
			return err
		}
		k, err = add(ctx, tx, recs, nil, alg, now, at, p)
		return err
	})
	return k, err
}

// raiseLifetime records d as the store's longest token lifetime when it
// is longer than the one recorded.
func raiseLifetime(ctx context.Context, tx store.KeyTx, d time.Duration) error {
	life, err := tx.MaxLifetime(ctx)
	if err != nil || life >= d {
		return err
	}
	return tx.SetMaxLifetime(ctx, d)
}

// ErrSealedNeedsKEK refuses to add a key in the clear beside sealed ones:
// the replicas that hold the KEK would sign with a private key anyone who
// can read the store can copy.
var ErrSealedNeedsKEK = fmt.Errorf("the store's signing keys are sealed: give the key-encryption key (signing.kek_file or %s) so that the new key is sealed too", EnvKEK)

// add stores a new key (key, or a generated one) and sets RetireAfter of
// every key a later one takes over from. A key that retired before now is
// deleted, where its retirement is counted with the longest token lifetime
// recorded in the store (see Ensure), not only p's: a replica with a
// longer lifetime may have signed with it.
func add(ctx context.Context, tx store.KeyTx, recs []store.KeyRecord, key crypto.Signer, alg string, now, at time.Time, p Policy) (Key, error) {
	if p.KEK == nil && slices.ContainsFunc(recs, Sealed) {
		return Key{}, ErrSealedNeedsKEK
	}
	life, err := tx.MaxLifetime(ctx)
	if err != nil {
		return Key{}, err
	}
	life = max(life, p.MaxTokenLifetime)
	if len(recs) > 0 {
		// Two keys that sign from the same second leave no order between
		// them: the new one starts after the one it takes over from.
		at = later(at, newest(recs).SignsFrom.Add(time.Second))
	}
	if key == nil {
		var err error
		if key, err = Generate(alg); err != nil {
			return Key{}, err
		}
	} else if a, err := algOf(key); err != nil {
		return Key{}, err
	} else {
		alg = a
	}
	k := Key{Private: key, Alg: alg, CreatedAt: now.Truncate(time.Second), SignsFrom: at.Truncate(time.Second)}
	if k.ID, err = KeyID(key); err != nil {
		return Key{}, err
	}
	r, err := k.seal(p.KEK)
	if err != nil {
		return Key{}, err
	}
	for _, old := range recs {
		if old.ID == k.ID {
			return Key{}, fmt.Errorf("key %s is already in the set", k.ID)
		}
	}
	if err := tx.Add(ctx, r); err != nil {
		return Key{}, err
	}
	all := append(slices.Clone(recs), r)
	slices.SortStableFunc(all, func(a, b store.KeyRecord) int { return a.SignsFrom.Compare(b.SignsFrom) })
	for i, old := range all {
		if i+1 == len(all) {
			continue
		}
		retire := later(old.RetireAfter, all[i+1].SignsFrom.Add(life))
		if !old.RetireAfter.IsZero() && retire.Before(now) {
			if err := tx.Delete(ctx, old.ID); err != nil {
				return Key{}, err
			}
			continue
		}
		if retire.After(old.RetireAfter) {
			if err := tx.SetRetireAfter(ctx, old.ID, retire); err != nil {
				return Key{}, err
			}
		}
	}
	return k, nil
}

// Current is the key that signs at now: the one with the latest SignsFrom
// not after now, or the earliest when every key is still to come. keys
// must be sorted by SignsFrom.
func Current(keys []Key, now time.Time) *Key {
	if len(keys) == 0 {
		return nil
	}
	cur := &keys[0]
	for i := range keys {
		if !keys[i].SignsFrom.After(now) {
			cur = &keys[i]
		}
	}
	return cur
}

// Published is the keys /jwks shows at now: every key until it retires,
// which is no sooner than maxLifetime after the next key took over (so a
// server with a longer lifetime than the one that rotated keeps its own
// tokens verifiable). keys must be sorted by SignsFrom.
func Published(keys []Key, now time.Time, maxLifetime time.Duration) []Key {
	var out []Key
	for i, k := range keys {
		retire := k.RetireAfter
		if i+1 < len(keys) {
			retire = later(retire, keys[i+1].SignsFrom.Add(maxLifetime))
		} else {
			retire = time.Time{}
		}
		if retire.IsZero() || now.Before(retire) {
			out = append(out, k)
		}
	}
	return out
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Generate makes a new private key for alg.
func Generate(alg string) (crypto.Signer, error) {
	switch alg {
	case "ES256":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "RS256":
		return rsa.GenerateKey(rand.Reader, 3072)
	case "EdDSA":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return nil, fmt.Errorf("signing: cannot generate a key for %q (ES256, RS256 or EdDSA)", alg)
}

// KeyID is the RFC 7638 thumbprint of key's public key.
func KeyID(key crypto.Signer) (string, error) {
	jwk, err := idp.PublicJWK(key.Public())
	if err != nil {
		return "", err
	}
	return idp.Thumbprint(jwk), nil
}

func algOf(key crypto.Signer) (string, error) {
	switch key.(type) {
	case *ecdsa.PrivateKey:
		return "ES256", nil
	case *rsa.PrivateKey:
		return "RS256", nil
	case ed25519.PrivateKey:
		return "EdDSA", nil
	}
	return "", fmt.Errorf("signing: unsupported key type %T", key)
}

// KEK is a key-encryption key: AES-256-GCM over each stored private key.
type KEK struct{ aead cipher.AEAD }

// EnvKEK names the environment variable that may hold the KEK.
const EnvKEK = "IDTX_KEK"

// ParseKEK reads a KEK: base64 (standard or URL, padded or not) of 32
// random bytes, as `openssl rand -base64 32` prints.
func ParseKEK(text string) (*KEK, error) {
	text = strings.TrimSpace(text)
	var raw []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if raw, err = enc.DecodeString(text); err == nil {
			break
		}
	}
	if err != nil || len(raw) != 32 {
		return nil, errors.New("key-encryption key must be base64 of 32 random bytes (openssl rand -base64 32)")
	}
	block, _ := aes.NewCipher(raw)
	aead, _ := cipher.NewGCM(block)
	return &KEK{aead: aead}, nil
}

// LoadKEK reads the KEK from file when one is named, else from IDTX_KEK;
// nil when neither is given.
func LoadKEK(file string) (*KEK, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("signing.kek_file: %w", err)
		}
		k, err := ParseKEK(string(b))
		if err != nil {
			return nil, fmt.Errorf("signing.kek_file %s: %w", file, err)
		}
		return k, nil
	}
	if v := os.Getenv(EnvKEK); v != "" {
		k, err := ParseKEK(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvKEK, err)
		}
		return k, nil
	}
	return nil, nil
}

// sealedPrefix marks a private key sealed under a KEK.
const sealedPrefix = "aes256gcm:"

func (k Key) seal(kek *KEK) (store.KeyRecord, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.Private)
	if err != nil {
		return store.KeyRecord{}, err
	}
	priv := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if kek != nil {
		nonce := make([]byte, kek.aead.NonceSize())
		rand.Read(nonce)
		// The kid is the associated data: a sealed key copied onto
		// another row does not open.
		ct := kek.aead.Seal(nonce, nonce, []byte(priv), []byte(k.ID))
		priv = sealedPrefix + base64.StdEncoding.EncodeToString(ct)
	}
	return store.KeyRecord{ID: k.ID, Alg: k.Alg, Private: priv, CreatedAt: k.CreatedAt, SignsFrom: k.SignsFrom, RetireAfter: k.RetireAfter}, nil
}

func openRecord(r store.KeyRecord, kek *KEK) (Key, error) {
	priv := []byte(r.Private)
	if b64, ok := strings.CutPrefix(r.Private, sealedPrefix); ok {
		if kek == nil {
			return Key{}, fmt.Errorf("signing key %s is encrypted: give its key-encryption key (signing.kek_file or %s)", r.ID, EnvKEK)
		}
		ct, err := base64.StdEncoding.DecodeString(b64)
		n := kek.aead.NonceSize()
		if err != nil || len(ct) < n {
			return Key{}, fmt.Errorf("signing key %s: sealed key is malformed", r.ID)
		}
		if priv, err = kek.aead.Open(nil, ct[:n], ct[n:], []byte(r.ID)); err != nil {
			return Key{}, fmt.Errorf("signing key %s does not open with this key-encryption key: give the one it was sealed with", r.ID)
		}
	}
	key, err := idp.ParsePrivateKey(priv)
	if err != nil {
		return Key{}, fmt.Errorf("signing key %s: %w", r.ID, err)
	}
	if id, err := KeyID(key); err != nil || id != r.ID {
		return Key{}, fmt.Errorf("signing key %s: the stored key's thumbprint is %s", r.ID, id)
	}
	if alg, err := algOf(key); err != nil || alg != r.Alg {
		return Key{}, fmt.Errorf("signing key %s: a %T does not sign %s", r.ID, key, r.Alg)
	}
	return Key{ID: r.ID, Alg: r.Alg, Private: key, CreatedAt: r.CreatedAt, SignsFrom: r.SignsFrom, RetireAfter: r.RetireAfter}, nil
}

// Sealed reports whether r's private key is sealed under a KEK.
func Sealed(r store.KeyRecord) bool { return strings.HasPrefix(r.Private, sealedPrefix) }
