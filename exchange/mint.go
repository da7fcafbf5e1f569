package exchange

import (
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
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"github.com/idtx/idtx/idp"
	"github.com/idtx/idtx/workflow"
)

// Signer signs the access tokens the STS issues (RFC 9068).
type Signer struct {
	alg    string
	method jwt.SigningMethod
	key    crypto.Signer
	kid    string
	jwks   []byte
	keys   idp.KeySet
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
	s := &Signer{alg: alg, key: key}
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if alg != "ES256" || k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("signing: a P-256 key signs ES256 only, not %s", alg)
		}
		s.method = jwt.SigningMethodES256
	case *rsa.PrivateKey:
		if alg != "RS256" || k.N.BitLen() < idp.MinRSABits {
			return nil, fmt.Errorf("signing: an RSA key (2048 bits or more) signs RS256 only, not %s", alg)
		}
		s.method = jwt.SigningMethodRS256
	case ed25519.PrivateKey:
		if alg != "EdDSA" {
			return nil, fmt.Errorf("signing: an Ed25519 key signs EdDSA only, not %s", alg)
		}
		s.method = jwt.SigningMethodEdDSA
	default:
		return nil, fmt.Errorf("signing: unsupported key type %T", key)
	}
	jwk, err := idp.PublicJWK(key.Public())
	if err != nil {
		return nil, err
	}
	s.kid = idp.Thumbprint(jwk)
	jwk["kid"], jwk["alg"], jwk["use"] = s.kid, alg, "sig"
	if s.jwks, err = json.Marshal(map[string]any{"keys": []any{jwk}}); err != nil {
		return nil, err
	}
	if s.keys, err = idp.StaticKeys(s.jwks); err != nil {
		return nil, err
	}
	return s, nil
}

// Alg is the JWS algorithm the signer uses.
func (s *Signer) Alg() string { return s.alg }

// KeyID is the RFC 7638 thumbprint of the public key.
func (s *Signer) KeyID() string { return s.kid }

// JWKS is the public key set, served at /jwks.
func (s *Signer) JWKS() []byte { return s.jwks }

// KeySet verifies the signer's own tokens.
func (s *Signer) KeySet() idp.KeySet { return s.keys }

// Sign signs claims as an RFC 9068 access token: typ at+jwt, kid.
func (s *Signer) Sign(claims jwt.Claims) (string, error) {
	t := jwt.NewWithClaims(s.method, claims)
	t.Header["typ"] = "at+jwt"
	t.Header["kid"] = s.kid
	return t.SignedString(s.key)
}

// AccessClaims are the claims of an issued token (RFC 9068 §2.2, RFC
// 8693 §4).
type AccessClaims struct {
	jwt.RegisteredClaims
	ClientID string         `json:"client_id"`
	Scope    string         `json:"scope,omitempty"`
	IDP      string         `json:"idp,omitempty"`
	Act      map[string]any `json:"act,omitempty"`
	// Extra are claims added by workflows (docs/workflows.md). They never
	// replace a claim above: the workflow package refuses reserved names
	// at load and from webhooks, and MarshalJSON skips any that slips by.
	Extra map[string]any `json:"-"`
}

// accessClaims is AccessClaims without its MarshalJSON.
type accessClaims AccessClaims

// MarshalJSON writes the claims, then the Extra claims in name order,
// leaving out any Extra claim whose name is reserved: all the STS sets
// itself.
func (c AccessClaims) MarshalJSON() ([]byte, error) {
	base, err := json.Marshal(accessClaims(c))
	if err != nil || len(c.Extra) == 0 {
		return base, err
	}
	out := base[:len(base)-1] // drop the closing brace
	for _, name := range slices.Sorted(maps.Keys(c.Extra)) {
		if workflow.Reserved(name) { // every claim above is reserved (TestAccessClaimsAreReserved)
			continue
		}
		k, err := json.Marshal(name)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(c.Extra[name])
		if err != nil {
			return nil, fmt.Errorf("claim %s: %w", k, err)
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(out, k...)
		out = append(out, ':')
		out = append(out, v...)
	}
	return append(out, '}'), nil
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
	key, err := newKey(alg)
	if err != nil {
		return nil, err
	}
	return NewSigner(alg, key)
}

func newKey(alg string) (crypto.Signer, error) {
	var key crypto.Signer
	var err error
	switch alg {
	case "ES256":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "RS256":
		key, err = rsa.GenerateKey(rand.Reader, 3072)
	case "EdDSA":
		_, key, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, fmt.Errorf("signing: cannot generate a key for %q", alg)
	}
	return key, err
}

func generateKey(alg, path string) error {
	key, err := newKey(alg)
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
