package idp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/beevik/etree"
	xrv "github.com/mattermost/xml-roundtrip-validator"
	dsig "github.com/russellhaering/goxmldsig"
	"github.com/russellhaering/goxmldsig/etreeutils"
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

// document is a SAML token decoded, round-trip checked and parsed.
type document struct {
	doc       *etree.Document
	root      *etree.Element
	version   int
	assertion *etree.Element // the one assertion, unverified
}

// parseSAML runs the first steps of the pipeline (SECURITY.md): size cap,
// decoding (never inflating), the xml-roundtrip-validator check, no
// DOCTYPE, and exactly one assertion in the whole document.
func parseSAML(token string) (*document, error) {
	if len(token) > MaxSAMLBytes {
		return nil, fmt.Errorf("%w: SAML token is longer than %d bytes", ErrMalformed, MaxSAMLBytes)
	}
	format, xml := Sniff(token)
	if format != FormatSAML2 && format != FormatSAML1 {
		return nil, fmt.Errorf("%w: not a SAML assertion or response (raw XML, base64 or base64url)", ErrMalformed)
	}
	if err := roundTrip(xml); err != nil {
		return nil, fmt.Errorf("%w: XML does not survive a round trip: %v", ErrMalformed, err)
	}
	if bytes.Contains(xml, []byte("<!DOCTYPE")) || bytes.Contains(xml, []byte("<!ENTITY")) {
		return nil, fmt.Errorf("%w: a DOCTYPE is refused", ErrMalformed)
	}
	doc := etree.NewDocument()
	doc.ReadSettings.Permissive = false
	if err := doc.ReadFromBytes(xml); err != nil {
		return nil, fmt.Errorf("%w: XML: %v", ErrMalformed, err)
	}
	for _, t := range doc.Child {
		if d, ok := t.(*etree.Directive); ok && strings.HasPrefix(strings.ToUpper(strings.TrimSpace(d.Data)), "DOCTYPE") {
			return nil, fmt.Errorf("%w: a DOCTYPE is refused", ErrMalformed)
		}
	}
	root := doc.Root()
	if root == nil {
		return nil, fmt.Errorf("%w: empty XML document", ErrMalformed)
	}
	d := &document{doc: doc, root: root}
	ns := root.NamespaceURI()
	switch {
	case root.Tag == "Response" && ns == nsSAML2Protocol, root.Tag == "Assertion" && ns == NamespaceSAML2Assertion:
		d.version = 2
	case root.Tag == "Response" && ns == nsSAML1Protocol, root.Tag == "Assertion" && ns == NamespaceSAML1Assertion:
		d.version = 1
	default:
		return nil, fmt.Errorf("%w: root element is %s, not a SAML Response or Assertion", ErrMalformed, clip(root.FullTag()))
	}
	assertionNS := NamespaceSAML2Assertion
	if d.version == 1 {
		assertionNS = NamespaceSAML1Assertion
	}
	// Count every Assertion in the document, wherever it hides: a second
	// one is how signature wrapping (XSW) gets an unsigned copy read.
	var all []*etree.Element
	var walk func(*etree.Element)
	walk = func(e *etree.Element) {
		if e.Tag == "Assertion" || e.Tag == "EncryptedAssertion" {
			all = append(all, e)
		}
		for _, c := range e.ChildElements() {
			walk(c)
		}
	}
	walk(root)
	switch {
	case len(all) != 1:
		return nil, fmt.Errorf("%w: the document holds %d assertions; exactly one is accepted", ErrMalformed, len(all))
	case all[0].Tag == "EncryptedAssertion":
		return nil, fmt.Errorf("%w: encrypted assertions are not supported", ErrMalformed)
	case all[0].NamespaceURI() != assertionNS:
		return nil, fmt.Errorf("%w: the assertion is not in the %s namespace", ErrMalformed, assertionNS)
	case root.Tag == "Response" && all[0].Parent() != root:
		return nil, fmt.Errorf("%w: the assertion is not a child of the Response", ErrMalformed)
	}
	d.assertion = all[0]
	return d, nil
}

// issuer is the unverified issuer of the assertion, to pick the IDP.
func (d *document) issuer() string {
	if d.version == 1 {
		return d.assertion.SelectAttrValue("Issuer", "")
	}
	if is := childNS(d.assertion, "Issuer", NamespaceSAML2Assertion); len(is) == 1 {
		return fullText(is[0])
	}
	return ""
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
			return nil, fmt.Errorf("%w: namespaces: %v", ErrMalformed, err)
		}
		detached, err := etreeutils.NSDetatch(nsctx, d.assertion)
		if err != nil {
			return nil, fmt.Errorf("%w: namespaces: %v", ErrMalformed, err)
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
		} else if len(issuers) == 1 && fullText(issuers[0]) != v.cfg.Issuer {
			return nil, fmt.Errorf("%w: Response Issuer %q is not %q", ErrUntrusted, clip(fullText(issuers[0])), v.cfg.Issuer)
		}
	}
	a, err := readAssertion(assertion, d.version)
	if err != nil {
		return nil, err
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
		return nil, "", "", fmt.Errorf("%w: signature of the %s does not verify with IDP %s's certificate: %v", ErrInvalid, el.Tag, v.cfg.Name, err)
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
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(fullText(first)), ""))
	if err != nil {
		return nil, none, fmt.Errorf("%w: the certificate in the signature of the %s is not base64: %v", ErrInvalid, signed, err)
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

// checkConditions holds the assertion to its time window, audience and
// bearer confirmation (SAML 2.0 Core §2.5, Profiles §4.1.4.2).
func (v *SAML) checkConditions(a *Assertion) error {
	now := v.cfg.Clock()
	skew := v.cfg.ClockSkew
	ts := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	switch {
	case a.NotOnOrAfter.IsZero():
		return fmt.Errorf("%w: Conditions has no NotOnOrAfter", ErrInvalid)
	case !a.NotBefore.IsZero() && now.Add(skew).Before(a.NotBefore):
		return fmt.Errorf("%w: not valid before %s (now %s)", ErrInvalid, ts(a.NotBefore), ts(now))
	case !now.Add(-skew).Before(a.NotOnOrAfter):
		return fmt.Errorf("%w: expired at %s (now %s)", ErrInvalid, ts(a.NotOnOrAfter), ts(now))
	case !a.BearerNotOnOrAfter.IsZero() && !now.Add(-skew).Before(a.BearerNotOnOrAfter):
		return fmt.Errorf("%w: bearer confirmation expired at %s (now %s)", ErrInvalid, ts(a.BearerNotOnOrAfter), ts(now))
	case len(a.Audiences) == 0:
		return fmt.Errorf("%w: no AudienceRestriction; one naming %q is required", ErrInvalid, v.cfg.Audiences)
	}
	for _, aud := range a.Audiences {
		if slices.Contains(v.cfg.Audiences, aud) {
			return nil
		}
	}
	return fmt.Errorf("%w: audience %q names none of IDP %s's audiences %q", ErrInvalid, clipAll(a.Audiences), v.cfg.Name, v.cfg.Audiences)
}

func (v *SAML) identity(a *Assertion) *Identity {
	claims := map[string]any{"iss": a.Issuer, "sub": a.Subject}
	for attr, claim := range v.cfg.Claims {
		vals, ok := a.Attributes[attr]
		switch {
		case !ok:
		case claim == "scope": // RFC 8693 §4.2: one space-separated string
			claims[claim] = strings.Join(vals, " ")
		default:
			list := make([]any, len(vals))
			for i, s := range vals {
				list[i] = s
			}
			claims[claim] = list
		}
	}
	exp := a.NotOnOrAfter
	if !a.BearerNotOnOrAfter.IsZero() && a.BearerNotOnOrAfter.Before(exp) {
		exp = a.BearerNotOnOrAfter
	}
	claims["exp"] = exp.Unix()
	return &Identity{
		IDP: v.cfg.Name, Issuer: a.Issuer, Subject: a.Subject, Claims: claims, Expiry: exp,
		Scopes: scopesOf(claims),
	}
}

// readAssertion reads the fields of a (validated) assertion element,
// requiring exactly one Issuer, one subject and one Conditions.
func readAssertion(el *etree.Element, version int) (*Assertion, error) {
	a := &Assertion{Version: version, Attributes: map[string][]string{}}
	bad := func(format string, args ...any) (*Assertion, error) {
		return nil, fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
	}
	ns := NamespaceSAML2Assertion
	if version == 1 {
		ns = NamespaceSAML1Assertion
	}
	conditions := childNS(el, "Conditions", ns)
	if len(conditions) != 1 {
		return bad("the assertion has %d Conditions; exactly one is required", len(conditions))
	}
	var err error
	if a.NotBefore, err = attrTime(conditions[0], "NotBefore"); err != nil {
		return nil, err
	}
	if a.NotOnOrAfter, err = attrTime(conditions[0], "NotOnOrAfter"); err != nil {
		return nil, err
	}
	if version == 2 {
		a.ID = el.SelectAttrValue("ID", "")
		issuers := childNS(el, "Issuer", ns)
		if len(issuers) != 1 {
			return bad("the assertion has %d Issuer elements; exactly one is required", len(issuers))
		}
		a.Issuer = fullText(issuers[0])
		subjects := childNS(el, "Subject", ns)
		if len(subjects) != 1 {
			return bad("the assertion has %d Subject elements; exactly one is required", len(subjects))
		}
		ids := childNS(subjects[0], "NameID", ns)
		if len(ids) != 1 {
			return bad("the Subject has %d NameID elements; exactly one is required", len(ids))
		}
		a.Subject = fullText(ids[0])
		for _, sc := range childNS(subjects[0], "SubjectConfirmation", ns) {
			if sc.SelectAttrValue("Method", "") != bearerSAML2 {
				continue
			}
			for _, scd := range childNS(sc, "SubjectConfirmationData", ns) {
				t, err := attrTime(scd, "NotOnOrAfter")
				if err != nil {
					return nil, err
				}
				if !t.IsZero() && (a.BearerNotOnOrAfter.IsZero() || t.Before(a.BearerNotOnOrAfter)) {
					a.BearerNotOnOrAfter = t
				}
			}
		}
		for _, ar := range childNS(conditions[0], "AudienceRestriction", ns) {
			for _, au := range childNS(ar, "Audience", ns) {
				a.Audiences = append(a.Audiences, fullText(au))
			}
		}
		for _, st := range childNS(el, "AttributeStatement", ns) {
			for _, at := range childNS(st, "Attribute", ns) {
				name := at.SelectAttrValue("Name", "")
				for _, av := range childNS(at, "AttributeValue", ns) {
					a.Attributes[name] = append(a.Attributes[name], fullText(av))
				}
			}
		}
	} else {
		a.ID = el.SelectAttrValue("AssertionID", "")
		a.Issuer = el.SelectAttrValue("Issuer", "")
		if a.Issuer == "" {
			return bad("the assertion has no Issuer")
		}
		// SAML 1.1 repeats the Subject in each statement: all must agree.
		for _, st := range el.ChildElements() {
			if st.NamespaceURI() != ns || !strings.HasSuffix(st.Tag, "Statement") {
				continue
			}
			for _, subj := range childNS(st, "Subject", ns) {
				ids := childNS(subj, "NameIdentifier", ns)
				if len(ids) != 1 {
					return bad("a Subject has %d NameIdentifier elements; exactly one is required", len(ids))
				}
				if s := fullText(ids[0]); a.Subject == "" {
					a.Subject = s
				} else if s != a.Subject {
					return bad("the statements name different subjects")
				}
			}
			if st.Tag == "AttributeStatement" {
				for _, at := range childNS(st, "Attribute", ns) {
					name := at.SelectAttrValue("AttributeName", "")
					for _, av := range childNS(at, "AttributeValue", ns) {
						a.Attributes[name] = append(a.Attributes[name], fullText(av))
					}
				}
			}
		}
		for _, ar := range childNS(conditions[0], "AudienceRestrictionCondition", ns) {
			for _, au := range childNS(ar, "Audience", ns) {
				a.Audiences = append(a.Audiences, fullText(au))
			}
		}
	}
	if a.Subject == "" {
		return bad("the assertion names no subject")
	}
	if a.IssueInstant, err = attrTime(el, "IssueInstant"); err != nil {
		return nil, err
	}
	return a, nil
}

// childNS are el's child elements named tag in namespace ns.
func childNS(el *etree.Element, tag, ns string) []*etree.Element {
	var out []*etree.Element
	for _, c := range el.ChildElements() {
		if c.Tag == tag && c.NamespaceURI() == ns {
			out = append(out, c)
		}
	}
	return out
}

// fullText joins every text node of el, across comments: etree's Text()
// stops at the first comment, which is how "alice@x.com<!---->.evil.com"
// would read as alice@x.com (CVE-2017-11427).
func fullText(el *etree.Element) string {
	var b strings.Builder
	for _, t := range el.Child {
		if cd, ok := t.(*etree.CharData); ok {
			b.WriteString(cd.Data)
		}
	}
	return strings.TrimSpace(b.String())
}

func attrTime(el *etree.Element, name string) (time.Time, error) {
	s := el.SelectAttrValue(name, "")
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %s %q is not an xs:dateTime", ErrMalformed, name, clip(s))
	}
	return t, nil
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
