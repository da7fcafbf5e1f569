package idp

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/idtx/idtx/oauth"
	xrv "github.com/mattermost/xml-roundtrip-validator"
)

// SAML names (SAML 2.0 Core, SAML 1.1 Core).
const (
	nsSAML2Protocol = "urn:oasis:names:tc:SAML:2.0:protocol"
	nsSAML1Protocol = "urn:oasis:names:tc:SAML:1.0:protocol"
	nsDSig          = "http://www.w3.org/2000/09/xmldsig#"
	bearerSAML2     = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
	bearerSAML1     = "urn:oasis:names:tc:SAML:1.0:cm:bearer"
	successSAML2    = "urn:oasis:names:tc:SAML:2.0:status:Success"
)

// MaxSAMLBytes caps a SAML token, encoded, before anything else is done.
const MaxSAMLBytes = 16 << 10

// Assertion is what a SAML assertion says, read from one element.
type Assertion struct {
	Version            int // 2 or 1 (SAML 1.1)
	ID                 string
	Issuer             string
	Subject            string
	IssueInstant       time.Time
	NotBefore          time.Time
	NotOnOrAfter       time.Time
	BearerNotOnOrAfter time.Time // SAML 2.0 bearer SubjectConfirmationData
	Audiences          []string
	Attributes         map[string][]string
	// SignedBy says which element carried the signature: "Assertion",
	// "Response", or "" when unsigned (inspect only).
	SignedBy           string
	SignatureAlgorithm string
	DigestAlgorithm    string
	// CertFingerprint is the SHA-256 of the certificate in the signature's
	// KeyInfo, if any (inspect only: trust never comes from it).
	CertFingerprint string

	confirmations []confirmation
	audienceSets  [][]string       // one per AudienceRestriction
	attributeErrs map[string]error // attribute name → why a value is not plain text
	response      *responseInfo    // nil for a bare assertion
}

// confirmation is one SubjectConfirmation: for SAML 2.0 with its
// SubjectConfirmationData; for SAML 1.1 one per statement's Subject, with
// the bearer method if it lists it.
type confirmation struct {
	method                  string
	notBefore, notOnOrAfter time.Time
	recipient               string
	statement               string // SAML 1.1: the statement the Subject is in
}

// responseInfo is what the checks read from a Response around the
// assertion.
type responseInfo struct {
	status       string // the top-level StatusCode's Value
	success      bool   // Value is Success (a QName resolved, for 1.1)
	destination  string // Destination (2.0) or Recipient (1.1)
	issueInstant time.Time
}

// SAMLConfig configures a SAML validator.
type SAMLConfig struct {
	Name         string
	Issuer       string // entity ID
	Certificates []*x509.Certificate
	Audiences    []string
	AllowSHA1    bool
	ClockSkew    time.Duration
	Clock        func() time.Time
	// Claims maps attribute names to claim names (e.g. a Group URI to
	// "groups"); mapped attributes become claims of the identity.
	Claims map[string]string
	// Recipients, when set, are the URLs a Response's Destination and a
	// bearer SubjectConfirmationData's Recipient may name; a SAML 2.0
	// bearer confirmation must then name one (SAML 2.0 Profiles
	// §4.1.4.2).
	Recipients []string
	// MaxAge, when set, bounds the assertion's age from its IssueInstant.
	MaxAge time.Duration
}

// SAML validates SAML 2.0 and 1.1 assertions from one IDP.
type SAML struct {
	cfg SAMLConfig
}

// NewSAML returns a validator for cfg.
func NewSAML(cfg SAMLConfig) (*SAML, error) {
	if len(cfg.Certificates) == 0 {
		return nil, fmt.Errorf("idp %s: no signing certificate", cfg.Name)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	return &SAML{cfg: cfg}, nil
}

// Validate checks a SAML token presented as tokenType (saml1 or saml2).
func (v *SAML) Validate(_ context.Context, token, tokenType string) (*Identity, error) {
	d, err := parseSAML(token)
	if err != nil {
		return nil, err
	}
	return v.validate(d, tokenType)
}

func (v *SAML) validate(d *document, tokenType string) (*Identity, error) {
	want := 2
	if tokenType == oauth.TokenTypeSAML1 {
		want = 1
	}
	if d.version != want {
		return nil, fmt.Errorf("%w: the document is SAML %s, presented as %s", ErrInvalid, versionName(d.version), tokenTypeShort(tokenType))
	}
	a, err := v.verify(d)
	if err != nil {
		return nil, err
	}
	if a.Issuer != v.cfg.Issuer {
		return nil, fmt.Errorf("%w: Issuer %q is not %q", ErrUntrusted, clip(a.Issuer), v.cfg.Issuer)
	}
	if err := v.checkResponse(a.response, v.issueLeeway(a)); err != nil {
		return nil, err
	}
	exp, err := v.checkConditions(a)
	if err != nil {
		return nil, err
	}
	return v.identity(a, exp)
}

func versionName(v int) string {
	if v == 1 {
		return "1.1"
	}
	return "2.0"
}

func tokenTypeShort(urn string) string {
	return strings.TrimPrefix(urn, "urn:ietf:params:oauth:token-type:")
}

// InspectSAML decodes a SAML token without verifying it, for `idtx
// inspect`: the pipeline's structural checks run, the signature does not.
func InspectSAML(token string) (*Assertion, error) {
	d, err := parseSAML(token)
	if err != nil {
		return nil, err
	}
	a, err := readAssertion(d.assertion, d.version)
	if err != nil {
		return nil, err
	}
	for _, el := range []*etree.Element{d.assertion, d.root} {
		if sig := signatureOf(el); sig != nil {
			a.SignedBy = el.Tag
			var digests []string
			a.SignatureAlgorithm, digests = algorithmsOf(sig)
			if len(digests) > 0 {
				a.DigestAlgorithm = digests[0]
			}
			if c := sig.FindElement(".//X509Certificate"); c != nil {
				if der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(charData(c)), "")); err == nil {
					a.CertFingerprint = certFingerprint(der)
				}
			}
			break
		}
	}
	return a, nil
}

// ParseCertificates reads every PEM certificate in data (several, for
// rotation).
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return certs, nil
}

// MetadataCertificates reads a SAML metadata document (SAML 2.0 Metadata
// §2.4.3): the entityID, and the signing certificates of its
// IDPSSODescriptor.
func MetadataCertificates(data []byte) (string, []*x509.Certificate, error) {
	if err := xrv.Validate(bytes.NewReader(data)); err != nil {
		return "", nil, fmt.Errorf("metadata XML does not survive a round trip: %w", err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(data); err != nil {
		return "", nil, err
	}
	ed := doc.FindElement("//EntityDescriptor")
	if ed == nil {
		return "", nil, errors.New("no EntityDescriptor")
	}
	var certs []*x509.Certificate
	for _, kd := range ed.FindElements("./IDPSSODescriptor/KeyDescriptor") {
		if use := kd.SelectAttrValue("use", "signing"); use != "signing" {
			continue
		}
		for _, c := range kd.FindElements(".//X509Certificate") {
			der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(c.Text()), ""))
			if err != nil {
				return "", nil, fmt.Errorf("X509Certificate: %w", err)
			}
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				return "", nil, err
			}
			certs = append(certs, cert)
		}
	}
	if len(certs) == 0 {
		return "", nil, errors.New("no signing certificate in the IDPSSODescriptor")
	}
	return ed.SelectAttrValue("entityID", ""), certs, nil
}
