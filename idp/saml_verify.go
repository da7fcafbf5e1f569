package idp

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
	"github.com/russellhaering/goxmldsig/etreeutils"
)

// Signature and digest algorithms accepted from an IDP: SHA-256 and up;
// SHA-1 only where the IDP's config allows it (allow_sha1).
var (
	samlSignatureAlgs = []string{
		"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
		"http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
		"http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
		"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
		"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
		"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
	}
	samlDigestAlgs = []string{
		"http://www.w3.org/2001/04/xmlenc#sha256",
		"http://www.w3.org/2001/04/xmldsig-more#sha384",
		"http://www.w3.org/2001/04/xmlenc#sha512",
	}
	sha1SignatureAlgs = []string{"http://www.w3.org/2000/09/xmldsig#rsa-sha1", "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1"}
	sha1DigestAlgs    = []string{"http://www.w3.org/2000/09/xmldsig#sha1"}
)

// verify validates every signature the Response and the assertion carry,
// with the IDP's certificates only (at least one is required, and a
// broken one is never ignored), and reads the assertion from an element
// goxmldsig returned: never from the document passed in.
func (v *SAML) verify(d *document) (*Assertion, error) {
	responseSigned := d.root != d.assertion && signatureOf(d.root) != nil
	assertionSigned := signatureOf(d.assertion) != nil
	if !responseSigned && !assertionSigned {
		return nil, fmt.Errorf("%w: neither the assertion nor the response is signed", ErrInvalid)
	}
	var assertion, response *etree.Element
	var sigAlg, digestAlg, signedBy string
	if responseSigned {
		validated, s, dg, err := v.validateSignature(d.root, d.version, "ResponseID")
		if err != nil {
			return nil, err
		}
		response, sigAlg, digestAlg, signedBy = validated, s, dg, "Response"
		var inside []*etree.Element
		for _, c := range validated.ChildElements() {
			if c.Tag == "Assertion" {
				inside = append(inside, c)
			}
		}
		if len(inside) != 1 {
			return nil, fmt.Errorf("%w: the signed response holds %d assertions", ErrInvalid, len(inside))
		}
		assertion = inside[0]
	}
	if assertionSigned {
		// The assertion may use prefixes declared on the Response: carry
		// the declarations in scope onto the element before validating.
		nsctx, err := etreeutils.NSBuildParentContext(d.assertion)
		if err != nil {
			return nil, fmt.Errorf("%w: namespaces: %w", ErrMalformed, err)
		}
		detached, err := etreeutils.NSDetatch(nsctx, d.assertion)
		if err != nil {
			return nil, fmt.Errorf("%w: namespaces: %w", ErrMalformed, err)
		}
		validated, s, dg, err := v.validateSignature(detached, d.version, "AssertionID")
		if err != nil {
			return nil, err
		}
		assertion, sigAlg, digestAlg, signedBy = validated, s, dg, "Assertion"
	}
	if d.root != d.assertion {
		// SAML 2.0 Profiles §4.1.4.2: a Response's Issuer, if present, is
		// the IDP's entity ID too. Read from the validated copy when there
		// is one; refusing on unsigned text only ever refuses more.
		resp := response
		if resp == nil {
			resp = d.root
		}
		if issuers := childNS(resp, "Issuer", NamespaceSAML2Assertion); len(issuers) > 1 {
			return nil, fmt.Errorf("%w: the response has %d Issuer elements", ErrMalformed, len(issuers))
		} else if len(issuers) == 1 {
			iss, err := nameText(issuers[0])
			if err != nil {
				return nil, err
			}
			if iss != v.cfg.Issuer {
				return nil, fmt.Errorf("%w: Response Issuer %q is not %q", ErrUntrusted, clip(iss), v.cfg.Issuer)
			}
		}
	}
	a, err := readAssertion(assertion, d.version)
	if err != nil {
		return nil, err
	}
	if d.root != d.assertion {
		resp := response // as for the Issuer: these checks only refuse
		if resp == nil {
			resp = d.root
		}
		if a.response, err = readResponse(resp, d.version); err != nil {
			return nil, err
		}
	}
	a.SignedBy, a.SignatureAlgorithm, a.DigestAlgorithm = signedBy, sigAlg, digestAlg
	return a, nil
}

// validateSignature checks el's enveloped signature: algorithms first,
// then goxmldsig with only the configured certificates. idAttr1 is the ID
// attribute's name in SAML 1.1.
func (v *SAML) validateSignature(el *etree.Element, version int, idAttr1 string) (*etree.Element, string, string, error) {
	idAttr := "ID"
	if version == 1 {
		idAttr = idAttr1
	}
	// goxmldsig validates the first Signature anywhere below el whose
	// Reference names el: make sure that is the one enveloped signature
	// whose algorithms are checked here.
	covering := signaturesCovering(el, el.SelectAttrValue(idAttr, ""))
	switch {
	case len(covering) != 1:
		return nil, "", "", fmt.Errorf("%w: %d signatures reference the %s; exactly one is accepted", ErrInvalid, len(covering), el.Tag)
	case covering[0] != signatureOf(el):
		return nil, "", "", fmt.Errorf("%w: the signature referencing the %s is not its enveloped signature", ErrInvalid, el.Tag)
	}
	sigAlg, digestAlgs := algorithmsOf(covering[0])
	if len(digestAlgs) == 0 {
		digestAlgs = []string{""} // refused below as not allowed
	}
	for _, d := range digestAlgs {
		if err := v.checkAlgorithms(sigAlg, d); err != nil {
			return nil, "", "", err
		}
	}
	digestAlg := digestAlgs[0]
	roots, restore, err := v.keyInfoRoot(covering[0], el.Tag)
	if err != nil {
		return nil, "", "", err
	}
	defer restore()
	ctx := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: roots})
	ctx.Clock = dsig.NewFakeClockAt(v.cfg.Clock())
	if version == 1 {
		ctx.IdAttribute = idAttr1
	}
	validated, err := ctx.Validate(el)
	if err != nil {
		return nil, "", "", fmt.Errorf("%w: signature of the %s does not verify with IDP %s's certificate: %w", ErrInvalid, el.Tag, v.cfg.Name, err)
	}
	return validated, sigAlg, digestAlg, nil
}

// keyInfoRoot settles which configured certificate a signature names,
// before goxmldsig runs. goxmldsig would parse the certificate in the
// signature's KeyInfo as X.509 and compare it with each configured one;
// comparing the DER bytes is the same test (x509.Certificate.Equal
// compares them) without parsing an untrusted certificate on every
// exchange. The KeyInfo is then taken out of the signature until restore
// is called, and goxmldsig is given only the certificate it named, which
// it uses as it uses a lone configured certificate when there is no
// KeyInfo: with its own validity-window check. The signed bytes do not
// change: the enveloped-signature transform removes the whole Signature.
//
// A signature without KeyInfo, or whose KeyInfo holds no X509Certificate,
// goes to goxmldsig as before, with every configured certificate.
func (v *SAML) keyInfoRoot(sig *etree.Element, signed string) ([]*x509.Certificate, func(), error) {
	none := func() {}
	var keyInfos []*etree.Element
	for _, c := range sig.ChildElements() {
		if c.Tag == "KeyInfo" {
			keyInfos = append(keyInfos, c)
		}
	}
	switch {
	case len(keyInfos) == 0:
		return v.cfg.Certificates, none, nil
	case len(keyInfos) > 1:
		return nil, none, fmt.Errorf("%w: the signature of the %s has %d KeyInfo elements", ErrInvalid, signed, len(keyInfos))
	case keyInfos[0].NamespaceURI() != nsDSig:
		return nil, none, fmt.Errorf("%w: the signature of the %s has a KeyInfo outside the XML-DSig namespace", ErrInvalid, signed)
	}
	ki := keyInfos[0]
	// goxmldsig reads the first X509Certificate of the X509Data elements
	// taken together (encoding/xml appends repeated elements).
	var first *etree.Element
	for _, data := range ki.ChildElements() {
		if data.Tag != "X509Data" || data.NamespaceURI() != nsDSig {
			continue
		}
		for _, c := range data.ChildElements() {
			if c.Tag == "X509Certificate" && c.NamespaceURI() == nsDSig {
				first = c
				break
			}
		}
		if first != nil {
			break
		}
	}
	if first == nil {
		return v.cfg.Certificates, none, nil
	}
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(charData(first)), ""))
	if err != nil {
		return nil, none, fmt.Errorf("%w: the certificate in the signature of the %s is not base64: %w", ErrInvalid, signed, err)
	}
	for _, c := range v.cfg.Certificates {
		if bytes.Equal(c.Raw, der) {
			i := ki.Index()
			sig.RemoveChildAt(i)
			return []*x509.Certificate{c}, func() { sig.InsertChildAt(i, ki) }, nil
		}
	}
	return nil, none, fmt.Errorf("%w: the certificate in the signature of the %s is not one of IDP %s's certificates (SHA-256 %s)", ErrUntrusted, signed, v.cfg.Name, certFingerprint(der))
}

// certFingerprint is the hex SHA-256 of a DER certificate.
func certFingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

func (v *SAML) checkAlgorithms(sigAlg, digestAlg string) error {
	sigOK := slices.Contains(samlSignatureAlgs, sigAlg) || (v.cfg.AllowSHA1 && slices.Contains(sha1SignatureAlgs, sigAlg))
	digestOK := slices.Contains(samlDigestAlgs, digestAlg) || (v.cfg.AllowSHA1 && slices.Contains(sha1DigestAlgs, digestAlg))
	switch {
	case !sigOK && slices.Contains(sha1SignatureAlgs, sigAlg):
		return fmt.Errorf("%w: signature algorithm %s is SHA-1, refused unless IDP %s sets allow_sha1", ErrInvalid, sigAlg, v.cfg.Name)
	case !sigOK:
		return fmt.Errorf("%w: signature algorithm %q is not allowed", ErrInvalid, clip(sigAlg))
	case !digestOK && slices.Contains(sha1DigestAlgs, digestAlg):
		return fmt.Errorf("%w: digest algorithm %s is SHA-1, refused unless IDP %s sets allow_sha1", ErrInvalid, digestAlg, v.cfg.Name)
	case !digestOK:
		return fmt.Errorf("%w: digest algorithm %q is not allowed", ErrInvalid, clip(digestAlg))
	}
	return nil
}

// signatureOf is el's enveloped ds:Signature child, or nil.
func signatureOf(el *etree.Element) *etree.Element {
	for _, c := range el.ChildElements() {
		if c.Tag == "Signature" && c.NamespaceURI() == nsDSig {
			return c
		}
	}
	return nil
}

// algorithmsOf reads a signature's SignatureMethod and the DigestMethod
// of each of its References.
func algorithmsOf(sig *etree.Element) (sigAlg string, digestAlgs []string) {
	if sig == nil {
		return "", nil
	}
	for _, si := range sig.ChildElements() {
		if si.Tag != "SignedInfo" {
			continue
		}
		for _, c := range si.ChildElements() {
			switch c.Tag {
			case "SignatureMethod":
				sigAlg = c.SelectAttrValue("Algorithm", "")
			case "Reference":
				for _, r := range c.ChildElements() {
					if r.Tag == "DigestMethod" {
						digestAlgs = append(digestAlgs, r.SelectAttrValue("Algorithm", ""))
					}
				}
			}
		}
	}
	return sigAlg, digestAlgs
}

// signaturesCovering are the ds:Signature elements anywhere below el with
// a Reference to el: URI "" or "#" + its ID, as goxmldsig matches them.
func signaturesCovering(el *etree.Element, id string) []*etree.Element {
	var out []*etree.Element
	var walk func(*etree.Element)
	walk = func(e *etree.Element) {
		for _, c := range e.ChildElements() {
			if c.Tag == "Signature" && c.NamespaceURI() == nsDSig {
				for _, ref := range c.FindElements("./SignedInfo/Reference") {
					if uri := ref.SelectAttrValue("URI", ""); uri == "" || uri == "#"+id {
						out = append(out, c)
						break
					}
				}
			}
			walk(c)
		}
	}
	walk(el)
	return out
}
