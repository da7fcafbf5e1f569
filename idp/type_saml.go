package idp

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/url"
	"time"

	"github.com/idtx/idtx/config"
)

// SAMLSpec is the keys of a saml IDP: its signing certificates, and the
// conditions its assertions are held to.
type SAMLSpec struct {
	CertificateFile string `yaml:"certificate_file"`
	MetadataFile    string `yaml:"metadata_file"`
	// AllowSHA1 accepts RSA-SHA1 and SHA-1 digests from a SAML IDP.
	AllowSHA1 bool `yaml:"allow_sha1"`
	// Recipients, when set, are the URLs a SAML IDP may name as the
	// Response's Destination and the bearer SubjectConfirmationData's
	// Recipient (SAML 2.0 Profiles §4.1.4.2); a bearer confirmation must
	// then name one of them. Unset, neither is checked.
	Recipients []string `yaml:"recipients"`
	// MaxAge, when set, bounds how long after its IssueInstant a SAML
	// assertion is accepted, however late its NotOnOrAfter.
	MaxAge time.Duration `yaml:"max_age"`
}

// KeyGroups names the certificate keys and the condition keys apart when
// another type is given them.
func (*SAMLSpec) KeyGroups() [][]string {
	return [][]string{{"certificate_file", "metadata_file", "allow_sha1"}, {"recipients", "max_age"}}
}

// Validate checks that the certificates come from exactly one place and
// that the conditions can be met.
func (s *SAMLSpec) Validate(_ config.IDP, at config.Path, where string) config.Problems {
	var p config.Problems
	if (s.CertificateFile != "") == (s.MetadataFile != "") {
		p = append(p, at.Problem("%s: a saml IDP needs exactly one of certificate_file, metadata_file", where))
	}
	for j, r := range s.Recipients {
		if u, err := url.Parse(r); err != nil || !u.IsAbs() {
			p = append(p, at.Child("recipients").Index(j).Problem("%s: recipient %q is not an absolute URI (a Destination or Recipient the IDP sends)", where, r))
		}
	}
	if s.MaxAge < 0 || s.MaxAge > 24*time.Hour {
		p = append(p, at.Child("max_age").Problem("%s: max_age %s is outside 0..24h (0 or unset: no bound beyond NotOnOrAfter)", where, s.MaxAge))
	}
	return p
}

// Open builds the SAML validator of d, with the certificates of its
// certificate_file or of its metadata_file (whose entityID must be the
// issuer).
func (s *SAMLSpec) Open(_ context.Context, d config.IDP, opts Options) (Validator, error) {
	var certs []*x509.Certificate
	switch {
	case s.CertificateFile != "":
		data, err := opts.ReadFile(s.CertificateFile)
		if err != nil {
			return nil, fmt.Errorf("idp %s: %w", d.Name, err)
		}
		if certs, err = ParseCertificates(data); err != nil {
			return nil, fmt.Errorf("idp %s: certificate_file %s: %w", d.Name, s.CertificateFile, err)
		}
	case s.MetadataFile != "":
		data, err := opts.ReadFile(s.MetadataFile)
		if err != nil {
			return nil, fmt.Errorf("idp %s: %w", d.Name, err)
		}
		entityID, mc, err := MetadataCertificates(data)
		if err != nil {
			return nil, fmt.Errorf("idp %s: metadata_file %s: %w", d.Name, s.MetadataFile, err)
		}
		if entityID != d.Issuer {
			return nil, fmt.Errorf("idp %s: metadata_file names entityID %q, not the issuer %q", d.Name, entityID, d.Issuer)
		}
		certs = mc
	}
	v, err := NewSAML(SAMLConfig{
		Name: d.Name, Issuer: d.Issuer, Certificates: certs, Audiences: d.Audiences,
		AllowSHA1: s.AllowSHA1, ClockSkew: d.ClockSkew, Clock: opts.Clock, Claims: d.Claims,
		Recipients: s.Recipients, MaxAge: s.MaxAge,
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}
