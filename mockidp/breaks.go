package mockidp

import (
	"crypto"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/golang-jwt/jwt/v5"
)

// Break is a named failure scenario for a mock subject token: the token
// is well formed but wrong in one way, which the mock STS refuses with
// the refusal docs/testing.md names.
type Break string

// The failure scenarios; Breaks says which formats each applies to.
const (
	BreakExpired        Break = "expired"
	BreakNotYetValid    Break = "not-yet-valid"
	BreakWrongIssuer    Break = "wrong-issuer"
	BreakWrongAudience  Break = "wrong-audience"
	BreakBadSignature   Break = "bad-signature"
	BreakUnknownKID     Break = "unknown-kid"
	BreakAlgNone        Break = "alg-none"
	BreakHS256PublicKey Break = "hs256-with-public-key"
	BreakNoExp          Break = "no-exp"
	BreakTypIDToken     Break = "typ-id-token"
	BreakUnsigned       Break = "unsigned"
	BreakWrapped        Break = "wrapped"
)

// What the failure scenarios put in a token.
const (
	WrongIssuer           = "https://wrong-issuer.idtx.test"
	WrongAudience         = "not-idtx-sts"
	unknownKID            = "mock-unknown-kid"
	breakShift            = time.Hour // how far expired and not-yet-valid are off
	wrappedSubject        = "admin"   // the subject a wrapped assertion claims
	formatJWT, formatSAML = "jwt", "saml"
	breakHelpIndent       = "  "
)

// BreakInfo describes a failure scenario for help text and docs.
type BreakInfo struct {
	Kind    Break
	Formats []string // "jwt", "saml"
	Help    string
}

// Breaks lists every failure scenario, in the order help lists them.
var Breaks = []BreakInfo{
	{BreakExpired, []string{formatJWT, formatSAML}, "exp (SAML NotOnOrAfter) an hour ago"},
	{BreakNotYetValid, []string{formatJWT}, "nbf an hour from now"},
	{BreakWrongIssuer, []string{formatJWT}, "iss " + WrongIssuer + ", an issuer the STS does not trust"},
	{BreakWrongAudience, []string{formatJWT, formatSAML}, "aud (SAML Audience) " + WrongAudience + ", not the STS"},
	{BreakBadSignature, []string{formatJWT}, "a signature that does not verify (one bit flipped)"},
	{BreakUnknownKID, []string{formatJWT}, "kid " + unknownKID + ", which the IDP does not publish"},
	{BreakAlgNone, []string{formatJWT}, "alg none and no signature (RFC 8725 §3.1)"},
	{BreakHS256PublicKey, []string{formatJWT}, "HS256 keyed with the IDP's public key (RFC 8725 §2.1)"},
	{BreakNoExp, []string{formatJWT}, "no exp claim"},
	{BreakTypIDToken, []string{formatJWT}, "an ID token (typ JWT, nonce, azp) to present as an access_token"},
	{BreakUnsigned, []string{formatSAML}, "an assertion with no signature"},
	{BreakWrapped, []string{formatSAML}, "signature wrapping: a forged assertion for " + wrappedSubject + " around the signed one"},
}

// BreakHelp is one line per scenario, for `idtx mock token --help`.
func BreakHelp() string {
	var b strings.Builder
	for _, i := range Breaks {
		fmt.Fprintf(&b, "%s%-22s %-9s %s\n", breakHelpIndent, i.Kind, strings.Join(i.Formats, ","), i.Help)
	}
	return b.String()
}

// CheckBreaks refuses a kind that does not exist or does not apply to
// format ("jwt", "saml" or "opaque").
func CheckBreaks(breaks []Break, format string) error {
	for _, k := range breaks {
		i := slices.IndexFunc(Breaks, func(i BreakInfo) bool { return i.Kind == k })
		if i < 0 {
			names := make([]string, len(Breaks))
			for j, b := range Breaks {
				names[j] = string(b.Kind)
			}
			return fmt.Errorf("break %q is not a failure scenario (scenarios: %s)", k, strings.Join(names, ", "))
		}
		if !slices.Contains(Breaks[i].Formats, format) {
			return fmt.Errorf("break %q does not apply to format %s (it applies to %s)", k, format, strings.Join(Breaks[i].Formats, ", "))
		}
	}
	return nil
}

func (o TokenOptions) breaks(k Break) bool { return slices.Contains(o.Breaks, k) }

// signJWT mints the JWT of o with key (kid, published as pub), broken as
// o.Breaks ask.
func signJWT(o TokenOptions, key crypto.Signer, method jwt.SigningMethod, kid string, pub crypto.PublicKey) (string, error) {
	if err := CheckBreaks(o.Breaks, formatJWT); err != nil {
		return "", err
	}
	o = o.withDefaults()
	if o.breaks(BreakExpired) {
		o.Now = o.Now.Add(-o.TTL - breakShift)
	}
	if o.breaks(BreakWrongIssuer) {
		o.Issuer = WrongIssuer
	}
	if o.breaks(BreakWrongAudience) {
		o.Aud = WrongAudience
	}
	claims := o.claims(Issuer)
	header := map[string]any{"alg": method.Alg(), "typ": "at+jwt", "kid": kid}
	if o.breaks(BreakNotYetValid) {
		claims["nbf"] = o.Now.Add(breakShift).Unix()
	}
	if o.breaks(BreakNoExp) {
		delete(claims, "exp")
	}
	if o.breaks(BreakUnknownKID) {
		header["kid"] = unknownKID
	}
	if o.breaks(BreakTypIDToken) {
		// OpenID Connect Core §2: an ID token, for a client, typ JWT.
		header["typ"] = "JWT"
		claims["nonce"], claims["azp"], claims["auth_time"] = randomID(), DemoClient, o.Now.Unix()
	}
	switch {
	case o.breaks(BreakAlgNone):
		header["alg"] = "none"
		signing, err := compact(header, claims)
		return signing + ".", err
	case o.breaks(BreakHS256PublicKey):
		header["alg"] = "HS256"
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			return "", err
		}
		secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		signing, err := compact(header, claims)
		if err != nil {
			return "", err
		}
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(signing))
		return signing + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil)), nil
	}
	t := jwt.NewWithClaims(method, jwt.MapClaims(claims))
	t.Header = header
	signed, err := t.SignedString(key)
	if err != nil || !o.breaks(BreakBadSignature) {
		return signed, err
	}
	dot := strings.LastIndexByte(signed, '.')
	sig, err := base64.RawURLEncoding.DecodeString(signed[dot+1:])
	if err != nil {
		return "", err
	}
	sig[len(sig)/2] ^= 1
	return signed[:dot+1] + base64.RawURLEncoding.EncodeToString(sig), nil
}

// compact is the signing input of a JWS: header and claims, base64url.
func compact(header, claims map[string]any) (string, error) {
	h, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc(h) + "." + enc(c), nil
}

// breakSAML applies o.Breaks to a signed assertion.
func breakSAML(doc *etree.Document, o TokenOptions) error {
	a := doc.Root()
	sig := a.FindElement("./Signature")
	switch {
	case o.breaks(BreakUnsigned):
		if sig != nil {
			a.RemoveChild(sig)
		}
	case o.breaks(BreakWrapped):
		// The forged assertion is the document; the signed one hides in
		// its Signature, which still verifies over the signed one (the
		// XML signature wrapping of Somorovsky et al., USENIX Security 2012).
		signed := a.Copy()
		forged := a
		for _, attr := range []string{"ID", "AssertionID"} {
			if forged.SelectAttr(attr) != nil {
				forged.CreateAttr(attr, "_forged"+randomID())
			}
		}
		for _, path := range []string{".//NameID", ".//NameIdentifier"} {
			for _, e := range forged.FindElements(path) {
				e.SetText(wrappedSubject)
			}
		}
		if sig == nil {
			return fmt.Errorf("wrapped: the assertion has no signature to wrap")
		}
		sig.CreateElement("ds:Object").AddChild(signed)
	}
	return nil
}
