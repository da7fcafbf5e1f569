package attack

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/idtx/idtx/internal/testconfig"
	"github.com/idtx/idtx/mockidp"
)

// Names the generated configuration uses.
const (
	corpIssuer     = "https://corp.idp.test"
	partnerIssuer  = "https://partner.idp.test"
	weakIssuer     = "https://weak.idp.test"
	corpSAMLIssuer = "https://corp.idp.test/saml"
	stsAudience    = "idtx-sts"

	tokenTypeJWT         = "urn:ietf:params:oauth:token-type:jwt"
	tokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
	tokenTypeIDToken     = "urn:ietf:params:oauth:token-type:id_token"
	tokenTypeSAML2       = "urn:ietf:params:oauth:token-type:saml2"
	tokenTypeSAML1       = "urn:ietf:params:oauth:token-type:saml1"
	grantTokenExchange   = "urn:ietf:params:oauth:grant-type:token-exchange"
	assertionTypeJWT     = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
)

// jwtKey is a JWS signing key as an IDP or a client holds it.
type jwtKey struct {
	alg string
	key crypto.Signer
	kid string
}

// strongRSA are the 2048-bit RSA keys of this run, generated once.
var strongRSA = sync.OnceValue(func() []*rsa.PrivateKey {
	keys := make([]*rsa.PrivateKey, 5)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			keys[i] = k
		})
	}
	wg.Wait()
	return keys
})

// weakRSA is a 1024-bit key, under the 2048 bits RFC 7518 §3.3 requires.
var weakRSA = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		panic(err)
	}
	return k
})

func newJWTKey(alg string, key crypto.Signer) *jwtKey {
	k := &jwtKey{alg: alg, key: key}
	sum := sha256.Sum256(k.publicJSON())
	k.kid = base64.RawURLEncoding.EncodeToString(sum[:12])
	return k
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jwk is the public key as a JWK (RFC 7517 §4, RFC 7518 §6).
func (k *jwtKey) jwk() map[string]any {
	m := map[string]any{"alg": k.alg, "use": "sig"}
	switch pub := k.key.Public().(type) {
	case *rsa.PublicKey:
		m["kty"], m["n"], m["e"] = "RSA", b64(pub.N.Bytes()), b64(big.NewInt(int64(pub.E)).Bytes())
	case *ecdsa.PublicKey:
		ecdh, err := pub.ECDH()
		if err != nil {
			panic(err)
		}
		raw := ecdh.Bytes() // 0x04 || X || Y
		n := (len(raw) - 1) / 2
		m["kty"], m["crv"], m["x"], m["y"] = "EC", "P-256", b64(raw[1:1+n]), b64(raw[1+n:])
	}
	if k.kid != "" {
		m["kid"] = k.kid
	}
	return m
}

func (k *jwtKey) publicJSON() []byte {
	b, _ := json.Marshal(k.jwk())
	return b
}

// jwks is a key set holding keys (RFC 7517 §5).
func jwks(keys ...*jwtKey) []byte {
	list := make([]any, len(keys))
	for i, k := range keys {
		list[i] = k.jwk()
	}
	b, _ := json.Marshal(map[string]any{"keys": list})
	return b
}

// sign signs claims with k; header adds members, and a nil value deletes
// one (kid is k's unless header says otherwise).
func (k *jwtKey) sign(t testing.TB, claims map[string]any, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(k.alg), jwt.MapClaims(claims))
	tok.Header["kid"] = k.kid
	for name, v := range header {
		if v == nil {
			delete(tok.Header, name)
		} else {
			tok.Header[name] = v
		}
	}
	s, err := tok.SignedString(k.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// signRaw signs the exact header and claims JSON given, so that a test can
// send what no JSON encoder writes (duplicate members).
func (k *jwtKey) signRaw(t testing.TB, header, claims string) string {
	t.Helper()
	input := b64([]byte(header)) + "." + b64([]byte(claims))
	sig, err := jwt.GetSigningMethod(k.alg).Sign(input, k.key)
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + b64(sig)
}

// claimsOf decodes a JWT's claims without verifying it: the tests read
// what the STS issued, and the STS's own signature is not under test here.
func claimsOf(t testing.TB, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("issued token %q is not a compact JWT", token)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// samlSigner is a SAML IDP's signing key and certificate.
type samlSigner struct {
	key  crypto.Signer
	cert *x509.Certificate
}

func newSAMLSigner(t testing.TB, key *rsa.PrivateKey, cn string) samlSigner {
	t.Helper()
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(now.UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: now.Add(-24 * time.Hour), NotAfter: now.Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return samlSigner{key: key, cert: cert}
}

func (s samlSigner) certPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.cert.Raw})
}

// fixture is one generated configuration with every key behind it.
type fixture struct {
	dir    string
	config string // the config file's path

	corp     *jwtKey // IDP corp: RS256, the IDP most attacks target
	partner  *jwtKey // IDP partner: a second trusted IDP, RS256
	weak     *jwtKey // IDP weak: a 1024-bit RSA key in its JWKS
	impostor *jwtKey // trusted by nobody
	client   *jwtKey // jwt-client's private_key_jwt key, ES256
	client2  *jwtKey // jwt-client-2's private_key_jwt key, ES256

	saml        samlSigner // IDP corp-saml
	foreignSAML samlSigner // trusted by nobody
}

// fixtureConfig is the server configuration the attacks run against; the
// issuer is left out, so the server takes its listen address.
const fixtureConfig = `
idps:
  - name: corp
    type: jwt
    issuer: ` + corpIssuer + `
    jwks_file: corp.jwks
    audiences: [` + stsAudience + `]
    algorithms: [RS256]
  - name: partner
    type: jwt
    issuer: ` + partnerIssuer + `
    jwks_file: partner.jwks
    audiences: [` + stsAudience + `]
    access_token_typ: [at+jwt]
  - name: weak
    type: jwt
    issuer: ` + weakIssuer + `
    jwks_file: weak.jwks
    audiences: [` + stsAudience + `]
  - name: corp-saml
    type: saml
    issuer: ` + corpSAMLIssuer + `
    certificate_file: corp-saml.pem
    audiences: [` + stsAudience + `]
    claims: {scope: scope}
  - name: mock-saml
    type: saml
    issuer: ` + mockidp.SAMLIssuer + `
    certificate_file: mock-saml.pem
    audiences: [` + stsAudience + `]
services:
` + testconfig.Services + `  - name: narrow-api
    scopes: {narrow:a: {}, narrow:b: {}}
    default_scopes: [narrow:a]
    subject_scopes_only: true
    token_lifetime: 5m
  - name: wide-api
    scopes: {narrow:b: {}}
    token_lifetime: 5m
    require_may_act: true
  - name: hop1-api
    scopes: {chain:read: {}}
    default_scopes: [chain:read]
    token_lifetime: 5m
  - name: hop2-api
    scopes: {chain:read: {}}
    default_scopes: [chain:read]
    token_lifetime: 5m
  - name: hop3-api
    scopes: {chain:read: {}}
    default_scopes: [chain:read]
    token_lifetime: 5m
clients:
` + testconfig.Clients + `  - id: jwt-client
    jwks_file: client.jwks
    services: ["*"]
  - id: jwt-client-2
    jwks_file: client2.jwks
    services: ["*"]
  # The resource servers behind hop1-api and hop2-api, each passing the
  # token it received on to the next hop (RFC 8693 §1.1 delegation).
  - id: hop1-client
    secret: hop1-secret
    services: [hop2-api]
    serves: [hop1-api]
    modes: [delegation]
  - id: hop2-client
    secret: hop2-secret
    services: [hop3-api]
    serves: [hop2-api]
    modes: [delegation]
`

// newFixture writes a configuration and its key files into a temporary
// folder.
func newFixture(t testing.TB) *fixture { return newFixtureMore(t, fixtureMore{}) }

// newFixtureWith is newFixture with more IDPs (YAML list items) trusted.
func newFixtureWith(t testing.TB, moreIDPs string) *fixture {
	return newFixtureMore(t, fixtureMore{idps: moreIDPs})
}

// fixtureMore is what a test adds to fixtureConfig.
type fixtureMore struct {
	idps    string // YAML list items under idps
	clients string // YAML list items under clients
	top     string // top-level keys
}

// newFixtureMore is newFixture with more IDPs, clients and top-level keys.
func newFixtureMore(t testing.TB, more fixtureMore) *fixture {
	t.Helper()
	rsaKeys := strongRSA()
	ecKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	f := &fixture{
		dir:         t.TempDir(),
		corp:        newJWTKey("RS256", rsaKeys[0]),
		partner:     newJWTKey("RS256", rsaKeys[1]),
		weak:        newJWTKey("RS256", weakRSA()),
		impostor:    newJWTKey("RS256", rsaKeys[2]),
		client:      newJWTKey("ES256", ecKey()),
		client2:     newJWTKey("ES256", ecKey()),
		saml:        newSAMLSigner(t, rsaKeys[3], "corp-saml"),
		foreignSAML: newSAMLSigner(t, rsaKeys[4], "evil"),
	}
	files := map[string][]byte{
		// clients is the last list of fixtureConfig: more clients follow it.
		"sts.yaml":      []byte(more.top + strings.Replace(fixtureConfig, "idps:\n", "idps:\n"+more.idps, 1) + more.clients),
		"corp.jwks":     jwks(f.corp),
		"partner.jwks":  jwks(f.partner),
		"weak.jwks":     jwks(f.weak),
		"client.jwks":   jwks(f.client),
		"client2.jwks":  jwks(f.client2),
		"corp-saml.pem": f.saml.certPEM(),
		"mock-saml.pem": mockidp.CertificatePEM(),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(f.dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	f.config = filepath.Join(f.dir, "sts.yaml")
	return f
}

// claims are a valid corp access token's claims for alice, dated from the
// real clock the server runs on; over changes them (nil deletes).
func claims(over map[string]any) map[string]any {
	now := time.Now()
	c := map[string]any{
		"iss": corpIssuer, "sub": "alice", "aud": stsAudience,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"jti": randomID(), "scope": "narrow:a orders:read",
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

func randomID() string {
	var b [12]byte
	rand.Read(b[:])
	return b64(b[:])
}

// exchangeForm is a token exchange of subject (a JWT unless kv says
// otherwise) for orders-api; kv sets fields, and an empty value deletes one.
func exchangeForm(subject string, kv ...string) url.Values {
	f := url.Values{
		"grant_type":         {grantTokenExchange},
		"subject_token":      {subject},
		"subject_token_type": {tokenTypeJWT},
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

// assertion is a private_key_jwt client assertion (RFC 7523 §3) for aud,
// signed with k; over changes its claims (nil deletes).
func (k *jwtKey) assertion(t testing.TB, clientID, aud string, over map[string]any) string {
	return k.assertionWith(t, clientID, aud, over, nil)
}

// assertionWith is assertion with header members added (nil deletes).
func (k *jwtKey) assertionWith(t testing.TB, clientID, aud string, over, header map[string]any) string {
	now := time.Now()
	c := map[string]any{
		"iss": clientID, "sub": clientID, "aud": aud,
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": randomID(),
	}
	for name, v := range over {
		if v == nil {
			delete(c, name)
		} else {
			c[name] = v
		}
	}
	return k.sign(t, c, header)
}

// withAssertion adds private_key_jwt client authentication to form.
func withAssertion(form url.Values, clientID, assertion string) url.Values {
	form.Set("client_id", clientID)
	form.Set("client_assertion_type", assertionTypeJWT)
	form.Set("client_assertion", assertion)
	return form
}
