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
	xrv "github.com/mattermost/xml-roundtrip-validator"
)

// SAML names (SAML 2.0 Core, SAML 1.1 Core).
const (
	nsSAML2Protocol = "urn:oasis:names:tc:SAML:2.0:protocol"
	nsSAML1Protocol = "urn:oasis:names:tc:SAML:1.0:protocol"
	nsDSig          = "http://www.w3.org/2000/09/xmldsig#"
	bearerSAML2     = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
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
	if tokenType == TokenTypeSAML1 {
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
	if err := v.checkConditions(a); err != nil {
		return nil, err
	}
	return v.identity(a), nil
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
				if der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(fullText(c)), "")); err == nil {
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
		return "", nil, fmt.Errorf("metadata XML does not survive a round trip: %v", err)
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
				return "", nil, fmt.Errorf("X509Certificate: %v", err)
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
