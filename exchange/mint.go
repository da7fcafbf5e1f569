package exchange

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/idtx/idtx/idp"
	"github.com/idtx/idtx/keyset"
	"github.com/idtx/idtx/store"
	"github.com/idtx/idtx/workflow"
)

// Signer signs the access tokens the STS issues (RFC 9068). It signs
// with one key of a key set, chosen by the engine's clock: a fixed key
// (a key file), or a set kept in the store (package keyset) that rotates
// and that replicas share.
type Signer struct {
	now  func() time.Time
	view atomic.Pointer[signerView]

	// For a key set in a store; nil store for a fixed key.
	store  store.Keys
	policy keyset.Policy

	jwksMu    sync.Mutex
	jwksKids  string
	jwksBytes []byte
}

// signerView is the key set as last read, sorted by SignsFrom.
type signerView struct {
	keys []keyset.Key
	pubs map[string]signerKey // by kid
}

type signerKey struct {
	alg    string
	method jwt.SigningMethod
	jwk    map[string]any
	public crypto.PublicKey
	// header is the base64url JOSE header of the access tokens this key
	// signs: alg, kid, typ at+jwt.
	header string
}

// GeneratedKeyFile is where LoadSigner keeps the generated key for alg in
// home.
func GeneratedKeyFile(home, alg string) string {
	return filepath.Join(home, "sts-"+strings.ToLower(alg)+".pem")
}

// LoadSigner reads the signing key from keyFile. With no keyFile it uses
// the key for alg in home, generating it (mode 0600) the first time.
func LoadSigner(alg, keyFile, home string) (*Signer, error) {
	if keyFile == "" {
		if home == "" {
			return nil, errors.New("signing: no key_file and no IDTX_HOME to keep a generated key in")
		}
		keyFile = GeneratedKeyFile(home, alg)
		if _, err := os.Stat(keyFile); errors.Is(err, fs.ErrNotExist) {
			if err := generateKey(alg, keyFile); err != nil {
				return nil, err
			}
		}
	}
	data, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	key, err := idp.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", keyFile, err)
	}
	return NewSigner(alg, key)
}

// NewSigner signs with key, which must suit alg (ES256, RS256 or EdDSA).
func NewSigner(alg string, key crypto.Signer) (*Signer, error) {
	if _, err := signingMethod(alg, key); err != nil {
		return nil, err
	}
	kid, err := keyset.KeyID(key)
	if err != nil {
		return nil, err
	}
	s := &Signer{now: time.Now}
	if err := s.setKeys([]keyset.Key{{ID: kid, Alg: alg, Private: key}}); err != nil {
		return nil, err
	}
	return s, nil
}

// NewKeySetSigner signs with the key set in keys: it gives the store a
// first key when it has none (p.First, or a new one), and reads the set
// again, applying p's rotation schedule, at each Refresh.
func NewKeySetSigner(ctx context.Context, keys store.Keys, p keyset.Policy, now func() time.Time) (*Signer, error) {
	if now == nil {
		now = time.Now
	}
	s := &Signer{now: now, store: keys, policy: p}
	if err := s.Refresh(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Refresh applies the rotation schedule and reads the key set again. On
// an error the signer keeps the set it had: a database that went away
// stops no signing.
func (s *Signer) Refresh(ctx context.Context) error {
	if s.store == nil {
		return nil
	}
	if err := keyset.Ensure(ctx, s.store, s.now(), s.policy); err != nil {
		return fmt.Errorf("signing keys: %w", err)
	}
	keys, err := keyset.Load(ctx, s.store, s.policy.KEK)
	if err != nil {
		return fmt.Errorf("signing keys: %w", err)
	}
	return s.setKeys(keys)
}

// Run refreshes the key set every interval until ctx ends, reporting
// failures to onErr.
func (s *Signer) Run(ctx context.Context, interval time.Duration, onErr func(error)) {
	if s.store == nil {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.Refresh(ctx); err != nil && ctx.Err() == nil && onErr != nil {
				onErr(err)
			}
		}
	}
}

func (s *Signer) setKeys(keys []keyset.Key) error {
	if len(keys) == 0 {
		return errors.New("signing: the key set is empty")
	}
	v := &signerView{keys: keys, pubs: make(map[string]signerKey, len(keys))}
	for _, k := range keys {
		m, err := signingMethod(k.Alg, k.Private)
		if err != nil {
			return fmt.Errorf("signing key %s: %w", k.ID, err)
		}
		jwk, err := idp.PublicJWK(k.Private.Public())
		if err != nil {
			return err
		}
		jwk["kid"], jwk["alg"], jwk["use"] = k.ID, k.Alg, "sig"
		h, err := json.Marshal(map[string]string{"alg": m.Alg(), "kid": k.ID, "typ": "at+jwt"})
		if err != nil {
			return err
		}
		v.pubs[k.ID] = signerKey{alg: k.Alg, method: m, jwk: jwk, public: k.Private.Public(),
			header: base64.RawURLEncoding.EncodeToString(h)}
	}
	s.view.Store(v)
	return nil
}

// signingMethod is the JWS method for alg, if key suits it.
func signingMethod(alg string, key crypto.Signer) (jwt.SigningMethod, error) {
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if alg != "ES256" || k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("signing: a P-256 key signs ES256 only, not %s", alg)
		}
		return jwt.SigningMethodES256, nil
	case *rsa.PrivateKey:
		if alg != "RS256" || k.N.BitLen() < idp.MinRSABits {
			return nil, fmt.Errorf("signing: an RSA key (2048 bits or more) signs RS256 only, not %s", alg)
		}
		return jwt.SigningMethodRS256, nil
	case ed25519.PrivateKey:
		if alg != "EdDSA" {
			return nil, fmt.Errorf("signing: an Ed25519 key signs EdDSA only, not %s", alg)
		}
		return jwt.SigningMethodEdDSA, nil
	}
	return nil, fmt.Errorf("signing: unsupported key type %T", key)
}

// current is the key that signs now, in the view v.
func (s *Signer) current(v *signerView) *keyset.Key {
	if s.store == nil {
		return &v.keys[0]
	}
	return keyset.Current(v.keys, s.now())
}

// published is the keys of v that /jwks shows now.
func (s *Signer) published(v *signerView) []keyset.Key {
	if s.store == nil {
		return v.keys
	}
	return keyset.Published(v.keys, s.now(), s.policy.MaxTokenLifetime)
}

// Alg is the JWS algorithm of the key that signs now.
func (s *Signer) Alg() string { return s.current(s.view.Load()).Alg }

// Algs is every algorithm a key of the set may sign with: a rotation may
// change the algorithm (keys rotate --alg).
func (s *Signer) Algs() []string {
	if s.store == nil {
		return []string{s.Alg()}
	}
	return []string{"ES256", "RS256", "EdDSA"}
}

// KeyID is the RFC 7638 thumbprint of the key that signs now.
func (s *Signer) KeyID() string { return s.current(s.view.Load()).ID }

// JWKS is the published public key set, served at /jwks: the key that
// signs now, the next one, and those whose tokens may not have expired.
func (s *Signer) JWKS() []byte {
	v := s.view.Load()
	keys := s.published(v)
	var kids strings.Builder
	for _, k := range keys {
		kids.WriteString(k.ID + " ")
	}
	s.jwksMu.Lock()
	defer s.jwksMu.Unlock()
	if s.jwksBytes != nil && s.jwksKids == kids.String() {
		return s.jwksBytes
	}
	jwks := make([]any, 0, len(keys))
	for _, k := range keys {
		jwks = append(jwks, v.pubs[k.ID].jwk)
	}
	b, _ := json.Marshal(map[string]any{"keys": jwks})
	s.jwksKids, s.jwksBytes = kids.String(), b
	return b
}

// KeySet verifies the signer's own tokens with every published key.
func (s *Signer) KeySet() idp.KeySet { return signerKeys{s} }

type signerKeys struct{ s *Signer }

// Generation identifies the published key set at now (a hash of its
// kids): it changes when a refresh adds a key and when the clock passes a
// key's retirement. The registry's validation cache drops a token it
// verified with other keys (idp generations), so a token whose key has
// left /jwks is refused as a subject token at once, as /introspect and
// the resource servers refuse it, even when it was exchanged before.
func (k signerKeys) Generation() uint64 {
	h := fnv.New64a()
	for _, pub := range k.s.published(k.s.view.Load()) {
		h.Write([]byte(pub.ID))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

// Key finds the published key the token names; its alg must be the key's
// (RFC 8725 §3.1: the key fixes the algorithm, not the token).
func (k signerKeys) Key(_ context.Context, t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	v := k.s.view.Load()
	for _, pub := range k.s.published(v) {
		if pub.ID != kid {
			continue
		}
		sk := v.pubs[kid]
		if t.Method.Alg() != sk.alg {
			return nil, fmt.Errorf("key %s signs %s, not %s", clipText(kid), sk.alg, clipText(t.Method.Alg()))
		}
		return sk.public, nil
	}
	// The wording of the other IDPs (package idp): a retired key is gone.
	return nil, fmt.Errorf("kid %q is not in the IDP's key set", clipText(kid))
}

// Sign signs claims as an RFC 9068 access token with the key that signs
// now: typ at+jwt, kid. The header is encoded once per key, and
// *AccessClaims are encoded without reflection (appendJSON): on the hot
// path of every exchange, that is a tenth of the work left after the
// signature itself.
func (s *Signer) Sign(claims jwt.Claims) (string, error) {
	v := s.view.Load()
	k := s.current(v)
	sk := v.pubs[k.ID]
	var payload []byte
	var err error
	if c, ok := claims.(*AccessClaims); ok {
		payload, err = c.appendJSON(make([]byte, 0, 512))
	} else {
		payload, err = json.Marshal(claims)
	}
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	buf := make([]byte, 0, len(sk.header)+1+enc.EncodedLen(len(payload))+1+enc.EncodedLen(132))
	buf = append(buf, sk.header...)
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, payload)
	sig, err := sk.method.Sign(string(buf), k.Private)
	if err != nil {
		return "", err
	}
	buf = append(buf, '.')
	return string(enc.AppendEncode(buf, sig)), nil
}

// AccessClaims are the claims of an issued token (RFC 9068 §2.2, RFC
// 8693 §4).
type AccessClaims struct {
	jwt.RegisteredClaims
	ClientID string         `json:"client_id"`
	Scope    string         `json:"scope,omitempty"`
	IDP      string         `json:"idp,omitempty"`
	Act      map[string]any `json:"act,omitempty"`
	// MayAct is the subject's may_act (RFC 8693 §4.4), carried so that a
	// chained exchange holds the next actor to it; its iss is always set.
	MayAct any `json:"may_act,omitempty"`
	// Groups, Roles and Entitlements are the user's, as her IDP gave them
	// (RFC 9068 §2.2.3.1), carried so that the next hop of a chain judges
	// them; Carried names those the token carries (docs/security.md).
	Groups       any      `json:"groups,omitempty"`
	Roles        any      `json:"roles,omitempty"`
	Entitlements any      `json:"entitlements,omitempty"`
	Carried      []string `json:"carried,omitempty"`
	// Extra are claims added by workflows (docs/workflows.md). They never
	// replace a claim above: the workflow package refuses reserved names
	// at load and from webhooks, and MarshalJSON skips any that slips by.
	Extra map[string]any `json:"-"`
}

// ClaimCarried is the claim that lists the identity claims an issued
// token carries from the user's IDP.
const ClaimCarried = "carried"

// MarshalJSON writes the claims, then the Extra claims in name order,
// leaving out any Extra claim whose name is reserved: all the STS sets
// itself.
func (c AccessClaims) MarshalJSON() ([]byte, error) { return c.appendJSON(nil) }

// appendJSON appends the claims as a JSON object: byte for byte what
// encoding/json writes for the struct's tags (TestAccessClaimsJSON), then
// the Extra claims. A field added to AccessClaims must be added here too:
// TestAccessClaimsEveryField sets every field by reflection and fails
// until it is.
func (c *AccessClaims) appendJSON(b []byte) ([]byte, error) {
	b = append(b, '{')
	first := true
	name := func(n string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, n...)
		b = append(b, '"', ':')
	}
	str := func(n, v string) {
		if v != "" {
			name(n)
			b = appendJSONString(b, v)
		}
	}
	date := func(n string, d *jwt.NumericDate) error {
		if d == nil {
			return nil
		}
		name(n)
		if jwt.TimePrecision != time.Second {
			v, err := d.MarshalJSON()
			b = append(b, v...)
			return err
		}
		b = strconv.AppendInt(b, d.Truncate(time.Second).Unix(), 10)
		return nil
	}
	r := &c.RegisteredClaims
	str("iss", r.Issuer)
	str("sub", r.Subject)
	if len(r.Audience) > 0 {
		name("aud")
		if len(r.Audience) == 1 && !jwt.MarshalSingleStringAsArray {
			b = appendJSONString(b, r.Audience[0])
		} else {
			b = append(b, '[')
			for i, a := range r.Audience {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendJSONString(b, a)
			}
			b = append(b, ']')
		}
	}
	for _, d := range []struct {
		n string
		d *jwt.NumericDate
	}{{"exp", r.ExpiresAt}, {"nbf", r.NotBefore}, {"iat", r.IssuedAt}} {
		if err := date(d.n, d.d); err != nil {
			return nil, err
		}
	}
	str("jti", r.ID)
	name("client_id")
	b = appendJSONString(b, c.ClientID)
	str("scope", c.Scope)
	str("idp", c.IDP)
	for _, m := range []struct {
		n string
		v any
	}{{"act", c.Act}, {"may_act", c.MayAct}, {"groups", c.Groups}, {"roles", c.Roles}, {"entitlements", c.Entitlements}} {
		if m.v == nil || m.n == "act" && len(c.Act) == 0 {
			continue
		}
		name(m.n)
		v, err := json.Marshal(m.v)
		if err != nil {
			return nil, err
		}
		b = append(b, v...)
	}
	if len(c.Carried) > 0 {
		name(ClaimCarried)
		b = append(b, '[')
		for i, n := range c.Carried {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, n)
		}
		b = append(b, ']')
	}
	for _, n := range slices.Sorted(maps.Keys(c.Extra)) {
		if workflow.Reserved(n) { // every claim above is reserved (TestAccessClaimsAreReserved)
			continue
		}
		v, err := json.Marshal(c.Extra[n])
		if err != nil {
			return nil, fmt.Errorf("claim %s: %w", clipText(n), err)
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendJSONString(b, n)
		b = append(b, ':')
		b = append(b, v...)
	}
	return append(b, '}'), nil
}

// appendJSONString appends s as a JSON string, as encoding/json writes
// it: printable ASCII other than the quote, the backslash and <, >, & (which
// encoding/json escapes for HTML) is copied; any other string is left to
// encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// newJTI returns 128 random bits, base64url.
func newJTI() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// NewEphemeralSigner signs with a key generated in memory for alg and
// never written anywhere: for `idtx explain` and `idtx walk`, whose tokens
// no one should keep.
func NewEphemeralSigner(alg string) (*Signer, error) {
	key, err := keyset.Generate(alg)
	if err != nil {
		return nil, err
	}
	return NewSigner(alg, key)
}

func generateKey(alg, path string) error {
	key, err := keyset.Generate(alg)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	// O_EXCL: two servers starting at once must not overwrite each other.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
