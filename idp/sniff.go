package idp

import (
	"bytes"
	"encoding/base64"
	"strings"

	"github.com/idtx/idtx/oauth"
)

// Format is what a token looks like, before anything is verified.
type Format int

// Token formats Sniff tells apart.
const (
	FormatUnknown Format = iota
	FormatJWT            // compact JWS: three base64url parts
	FormatJWE            // compact JWE: five parts
	FormatSAML2          // SAML 2.0 assertion or response
	FormatSAML1          // SAML 1.1 assertion or response
)

// SAML namespaces (SAML 2.0 Core §2, SAML 1.1 Core §2).
const (
	NamespaceSAML2Assertion = "urn:oasis:names:tc:SAML:2.0:assertion"
	NamespaceSAML1Assertion = "urn:oasis:names:tc:SAML:1.0:assertion"
)

// Sniff guesses a token's format from its shape. For SAML it also returns
// the XML, decoded from raw XML, standard base64 or base64url (RFC 8693
// §3 says base64url); it never inflates.
func Sniff(token string) (Format, []byte) {
	t := strings.TrimSpace(token)
	if t == "" {
		return FormatUnknown, nil
	}
	if strings.HasPrefix(strings.TrimPrefix(t, "\ufeff"), "<") { // a UTF-8 byte order mark may lead
		return samlFormat([]byte(t))
	}
	if looksCompact(t, 2) {
		return FormatJWT, nil
	}
	if looksCompact(t, 4) {
		return FormatJWE, nil
	}
	if xml := DecodeBase64(t); xml != nil && bytes.HasPrefix(bytes.TrimPrefix(bytes.TrimSpace(xml), utf8BOM), []byte("<")) {
		return samlFormat(xml)
	}
	return FormatUnknown, nil
}

func looksCompact(t string, dots int) bool {
	if strings.Count(t, ".") != dots {
		return false
	}
	for _, r := range t {
		if !(r == '.' || r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func samlFormat(xml []byte) (Format, []byte) {
	switch {
	case bytes.Contains(xml, []byte(NamespaceSAML2Assertion)):
		return FormatSAML2, xml
	case bytes.Contains(xml, []byte(NamespaceSAML1Assertion)):
		return FormatSAML1, xml
	}
	return FormatUnknown, nil
}

// DecodeBase64 decodes standard or URL-safe base64, padded or not, with
// line breaks allowed; nil if it is neither.
func DecodeBase64(s string) []byte {
	s = strings.Join(strings.Fields(s), "")
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b
		}
	}
	return nil
}

// TokenTypeOf is the token type URN a token of this format is sent as by
// default: jwt for a JWT, saml2 or saml1 for XML, access_token otherwise
// (an opaque token).
func TokenTypeOf(f Format) string {
	switch f {
	case FormatJWT:
		return oauth.TokenTypeJWT
	case FormatSAML2:
		return oauth.TokenTypeSAML2
	case FormatSAML1:
		return oauth.TokenTypeSAML1
	}
	return oauth.TokenTypeAccessToken
}
