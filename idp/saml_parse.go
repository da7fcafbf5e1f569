package idp

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/beevik/etree"
)

// document is a SAML token decoded, round-trip checked and parsed.
type document struct {
	doc       *etree.Document
	root      *etree.Element
	version   int
	assertion *etree.Element // the one assertion, unverified
}

// parseSAML runs the first steps of the pipeline: size cap, decoding
// (never inflating), UTF-8 only, the xml-roundtrip-validator check, no
// DOCTYPE, nothing but the root element outside the prolog and epilog's
// whitespace, comments and processing instructions, and exactly one
// assertion in the whole document.
func parseSAML(token string) (*document, error) {
	if len(token) > MaxSAMLBytes {
		return nil, fmt.Errorf("%w: SAML token is longer than %d bytes", ErrMalformed, MaxSAMLBytes)
	}
	format, xml := Sniff(token)
	if format != FormatSAML2 && format != FormatSAML1 {
		if enc := wideBOM(rawXML(token)); enc != "" {
			return nil, fmt.Errorf("%w: the document starts with a %s byte order mark; only UTF-8 is accepted", ErrMalformed, enc)
		}
		return nil, fmt.Errorf("%w: not a SAML assertion or response (raw XML, base64 or base64url)", ErrMalformed)
	}
	xml, err := checkEncoding(xml)
	if err != nil {
		return nil, err
	}
	if err := roundTrip(xml); err != nil {
		return nil, fmt.Errorf("%w: XML does not survive a round trip: %w", ErrMalformed, err)
	}
	if bytes.Contains(xml, []byte("<!DOCTYPE")) || bytes.Contains(xml, []byte("<!ENTITY")) {
		return nil, fmt.Errorf("%w: a DOCTYPE is refused", ErrMalformed)
	}
	doc := etree.NewDocument()
	doc.ReadSettings.Permissive = false
	if err := doc.ReadFromBytes(xml); err != nil {
		return nil, fmt.Errorf("%w: XML: %w", ErrMalformed, err)
	}
	for _, t := range doc.Child {
		if d, ok := t.(*etree.Directive); ok && strings.HasPrefix(strings.ToUpper(strings.TrimSpace(d.Data)), "DOCTYPE") {
			return nil, fmt.Errorf("%w: a DOCTYPE is refused", ErrMalformed)
		}
	}
	if err := checkOutsideRoot(doc); err != nil {
		return nil, err
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
	if err := checkTextElements(d.assertion, assertionNS); err != nil {
		return nil, err
	}
	return d, nil
}

// textElements are the assertion's elements that hold only text.
var textElements = map[string]bool{"Issuer": true, "NameID": true, "NameIdentifier": true, "Audience": true, "ConfirmationMethod": true}

// checkTextElements refuses a comment or processing instruction in an
// element of the assertion that holds only text (and in an
// AttributeValue), here, before the signature is checked: exclusive
// canonicalisation drops comments, so the element the signature check
// returns no longer shows one, while a reader that stops at the comment
// sees a shorter name (CVE-2017-11427, CVE-2018-7340). Refusing on the
// unverified document only ever refuses more.
func checkTextElements(el *etree.Element, ns string) error {
	for _, c := range el.ChildElements() {
		if c.NamespaceURI() == ns && textElements[c.Tag] {
			if _, err := text(c); err != nil {
				return err
			}
			continue
		}
		if c.NamespaceURI() == ns && c.Tag == "AttributeValue" {
			for _, t := range c.Child {
				switch t.(type) {
				case *etree.Comment, *etree.ProcInst:
					_, err := text(c)
					return err
				}
			}
		}
		if err := checkTextElements(c, ns); err != nil {
			return err
		}
	}
	return nil
}

// issuer is the unverified issuer of the assertion, to pick the IDP.
func (d *document) issuer() string {
	if d.version == 1 {
		return d.assertion.SelectAttrValue("Issuer", "")
	}
	if is := childNS(d.assertion, "Issuer", NamespaceSAML2Assertion); len(is) == 1 {
		return charData(is[0]) // checked when the validated assertion is read
	}
	return ""
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
		if a.Issuer, err = nameText(issuers[0]); err != nil {
			return nil, err
		}
		subjects := childNS(el, "Subject", ns)
		if len(subjects) != 1 {
			return bad("the assertion has %d Subject elements; exactly one is required", len(subjects))
		}
		ids := childNS(subjects[0], "NameID", ns)
		if len(ids) != 1 {
			return bad("the Subject has %d NameID elements; exactly one is required", len(ids))
		}
		if a.Subject, err = nameText(ids[0]); err != nil {
			return nil, err
		}
		for _, sc := range childNS(subjects[0], "SubjectConfirmation", ns) {
			c := confirmation{method: sc.SelectAttrValue("Method", "")}
			scds := childNS(sc, "SubjectConfirmationData", ns)
			switch {
			case len(scds) > 1:
				return bad("a SubjectConfirmation has %d SubjectConfirmationData elements; at most one is allowed", len(scds))
			case len(scds) == 1:
				if c.notBefore, err = attrTime(scds[0], "NotBefore"); err != nil {
					return nil, err
				}
				if c.notOnOrAfter, err = attrTime(scds[0], "NotOnOrAfter"); err != nil {
					return nil, err
				}
				c.recipient = scds[0].SelectAttrValue("Recipient", "")
			}
			a.confirmations = append(a.confirmations, c)
			if c.method == bearerSAML2 && !c.notOnOrAfter.IsZero() && (a.BearerNotOnOrAfter.IsZero() || c.notOnOrAfter.Before(a.BearerNotOnOrAfter)) {
				a.BearerNotOnOrAfter = c.notOnOrAfter
			}
		}
		if err := a.readAudiences(conditions[0], "AudienceRestriction", ns); err != nil {
			return nil, err
		}
		for _, st := range childNS(el, "AttributeStatement", ns) {
			for _, at := range childNS(st, "Attribute", ns) {
				a.readAttribute(at, at.SelectAttrValue("Name", ""), ns)
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
				// SAML 1.1 Core §2.4.2: a SubjectConfirmation lists one
				// or more ConfirmationMethods; any one confirms.
				c := confirmation{statement: st.Tag}
				for _, sc := range childNS(subj, "SubjectConfirmation", ns) {
					for _, m := range childNS(sc, "ConfirmationMethod", ns) {
						method, err := uriText(m)
						if err != nil {
							return nil, err
						}
						if c.method != bearerSAML1 {
							c.method = method
						}
					}
				}
				a.confirmations = append(a.confirmations, c)
				ids := childNS(subj, "NameIdentifier", ns)
				if len(ids) != 1 {
					return bad("a Subject has %d NameIdentifier elements; exactly one is required", len(ids))
				}
				if s, err := nameText(ids[0]); err != nil {
					return nil, err
				} else if a.Subject == "" {
					a.Subject = s
				} else if s != a.Subject {
					return bad("the statements name different subjects")
				}
			}
			if st.Tag == "AttributeStatement" {
				for _, at := range childNS(st, "Attribute", ns) {
					a.readAttribute(at, at.SelectAttrValue("AttributeName", ""), ns)
				}
			}
		}
		if err := a.readAudiences(conditions[0], "AudienceRestrictionCondition", ns); err != nil {
			return nil, err
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

// readAudiences reads each audience restriction of conditions: tag is
// AudienceRestriction (SAML 2.0) or AudienceRestrictionCondition (1.1).
func (a *Assertion) readAudiences(conditions *etree.Element, tag, ns string) error {
	for _, ar := range childNS(conditions, tag, ns) {
		var set []string
		for _, au := range childNS(ar, "Audience", ns) {
			s, err := uriText(au)
			if err != nil {
				return err
			}
			set = append(set, s)
		}
		a.Audiences = append(a.Audiences, set...)
		a.audienceSets = append(a.audienceSets, set)
	}
	return nil
}

// readAttribute reads the values of the Attribute at, named name. An
// AttributeValue is xs:anyType: one that holds more than text (an
// eduPersonTargetedID's NameID) is kept as its text for inspect and
// noted, and a mapped claim refuses it (SAML.identity).
func (a *Assertion) readAttribute(at *etree.Element, name, ns string) {
	for _, av := range childNS(at, "AttributeValue", ns) {
		s, err := text(av)
		if err != nil {
			if a.attributeErrs == nil {
				a.attributeErrs = map[string]error{}
			}
			if a.attributeErrs[name] == nil {
				a.attributeErrs[name] = err
			}
			s = charData(av)
		}
		a.Attributes[name] = append(a.Attributes[name], s)
	}
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

// SAML values are taken exactly as signed. strings.TrimSpace once made a
// signed NameID "alice\u3000", "alice\u00a0" or "&#x9; admin &#xD;" read
// as alice or admin: another account, which then inherits the real one's
// consents (keyed on the IDP and the user), and a group "admins\u00a0"
// matched "admins" in workflows. And a NameID holding an element
// ("admin<X>@evil.example</X>") was read without the element's text.

// text is el's character data (CDATA sections included), exactly: no
// trimming. el must hold only text: a child element, comment or
// processing instruction is refused, since readers disagree on what text
// such an element has ("alice@x.com<!---->.evil.com" reads as
// alice@x.com where a parser stops at the comment, CVE-2017-11427).
func text(el *etree.Element) (string, error) {
	var b strings.Builder
	for _, t := range el.Child {
		var what string
		switch t := t.(type) {
		case *etree.CharData:
			b.WriteString(t.Data)
			continue
		case *etree.Element:
			what = "an element (" + clip(t.FullTag()) + ")"
		case *etree.Comment:
			what = "a comment"
		case *etree.ProcInst:
			what = "a processing instruction"
		default:
			what = "a declaration"
		}
		return "", fmt.Errorf("%w: %s holds %s; it must hold only text", ErrMalformed, el.Tag, what)
	}
	return b.String(), nil
}

// nameText is the text of an element that names someone (NameID,
// NameIdentifier, Issuer: SAML Core's NameIDType, an xs:string, whose
// whitespace is preserved): exactly as signed, and refused when it begins
// or ends with whitespace, Unicode's included, rather than trimmed into
// another name.
func nameText(el *etree.Element) (string, error) {
	s, err := text(el)
	if err != nil {
		return "", err
	}
	if err := checkEdges(el.Tag, s); err != nil {
		return "", err
	}
	return s, nil
}

// checkEdges refuses a value used as an identity (a name, a claim) that
// begins or ends with whitespace.
func checkEdges(what, s string) error {
	first, _ := utf8.DecodeRuneInString(s)
	last, _ := utf8.DecodeLastRuneInString(s)
	if s != "" && (unicode.IsSpace(first) || unicode.IsSpace(last)) {
		return fmt.Errorf("%w: %s %q begins or ends with whitespace; it is taken exactly as signed, never trimmed", ErrMalformed, what, clip(s))
	}
	return nil
}

// uriText is the text of an xs:anyURI element (Audience, SAML 1.1's
// ConfirmationMethod), whitespace collapsed as XML Schema Part 2 §3.2.17
// fixes for anyURI: only XML's own whitespace (space, tab, CR, LF), never
// Unicode's.
func uriText(el *etree.Element) (string, error) {
	s, err := text(el)
	if err != nil {
		return "", err
	}
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' || r == '\r' || r == '\n' }), " "), nil
}

// charData joins el's text nodes, whatever else it holds: for base64
// content (X509Certificate) whose whitespace is dropped anyway.
func charData(el *etree.Element) string {
	var b strings.Builder
	for _, t := range el.Child {
		if cd, ok := t.(*etree.CharData); ok {
			b.WriteString(cd.Data)
		}
	}
	return b.String()
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

// utf8BOM is U+FEFF encoded in UTF-8 (XML 1.0 Appendix F.1).
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// checkEncoding holds the document to UTF-8 (XML 1.0 §4.3.3): an encoding
// declaration, if any, names UTF-8 or US-ASCII (then every byte is ASCII),
// and a byte order mark, if any, is UTF-8's, which it returns the document
// without. A declaration that disagrees with the bytes is how one parser
// in a chain reads other characters than the one that checked the
// signature.
func checkEncoding(xml []byte) ([]byte, error) {
	bom := bytes.HasPrefix(xml, utf8BOM)
	xml = bytes.TrimPrefix(xml, utf8BOM)
	enc, err := declaredEncoding(xml)
	switch {
	case err != nil:
		return nil, err
	case enc == "" || strings.EqualFold(enc, "UTF-8"):
		return xml, nil
	case strings.EqualFold(enc, "US-ASCII") && bom:
		return nil, fmt.Errorf("%w: the XML declaration names US-ASCII, but the document starts with a UTF-8 byte order mark", ErrMalformed)
	case strings.EqualFold(enc, "US-ASCII"):
		for i, b := range xml {
			if b >= 0x80 {
				return nil, fmt.Errorf("%w: the XML declaration names US-ASCII, but byte %d is not ASCII", ErrMalformed, i)
			}
		}
		return xml, nil
	}
	return nil, fmt.Errorf("%w: the XML declaration names encoding %q; only UTF-8 (or US-ASCII) is accepted", ErrMalformed, clip(enc))
}

// declaredEncoding is the encoding pseudo-attribute of xml's declaration,
// or "" without a declaration or without one. The declaration is read by
// XML 1.0 §2.8's grammar (version, then optionally encoding, then
// optionally standalone, each once): encoding/xml reads the first
// "encoding=" it finds, and a declaration two readers read differently is
// refused rather than guessed at.
func declaredEncoding(xml []byte) (string, error) {
	if len(xml) < 6 || !bytes.HasPrefix(xml, []byte("<?xml")) || !isXMLSpace(xml[5]) {
		return "", nil
	}
	end := bytes.Index(xml, []byte("?>"))
	if end < 0 {
		return "", fmt.Errorf("%w: the XML declaration is not closed", ErrMalformed)
	}
	bad := fmt.Errorf("%w: the XML declaration is not version, encoding and standalone in that order (XML 1.0 §2.8)", ErrMalformed)
	rest := string(xml[5:end])
	var encoding string
	names := []string{"version", "encoding", "standalone"}
	for {
		trimmed := strings.TrimLeft(rest, " \t\r\n")
		if trimmed == "" {
			break
		}
		if len(trimmed) == len(rest) { // pseudo-attributes are separated by space
			return "", bad
		}
		name, value, ok := strings.Cut(trimmed, "=")
		name = strings.TrimRight(name, " \t\r\n")
		i := slices.Index(names, name)
		if !ok || i < 0 || (i > 0 && names[0] == "version") {
			return "", bad
		}
		value = strings.TrimLeft(value, " \t\r\n")
		if value == "" || (value[0] != '"' && value[0] != '\'') {
			return "", bad
		}
		v, after, ok := strings.Cut(value[1:], value[:1])
		if !ok {
			return "", bad
		}
		if name == "encoding" {
			encoding = v
		}
		names, rest = names[i+1:], after
	}
	if len(names) == 3 { // no version
		return "", bad
	}
	return encoding, nil
}

func isXMLSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\r' || b == '\n' }

// wideBOM names the UTF-16 or UTF-32 byte order mark xml starts with, or
// "" (XML 1.0 Appendix F.1).
func wideBOM(xml []byte) string {
	for _, b := range []struct {
		name string
		mark []byte
	}{
		{"UTF-32", []byte{0x00, 0x00, 0xFE, 0xFF}}, {"UTF-32", []byte{0xFF, 0xFE, 0x00, 0x00}},
		{"UTF-16", []byte{0xFE, 0xFF}}, {"UTF-16", []byte{0xFF, 0xFE}},
	} {
		if bytes.HasPrefix(xml, b.mark) {
			return b.name
		}
	}
	return ""
}

// rawXML is token as raw bytes or decoded base64, for a refusal message.
func rawXML(token string) []byte {
	if b := DecodeBase64(token); b != nil {
		return b
	}
	return []byte(token)
}

// checkOutsideRoot refuses anything but whitespace, comments and
// processing instructions before or after the root element (XML 1.0 §2.1
// and §2.8: a document is one element, with a prolog and Misc after it).
// Parsers disagree on what trails a document: a second root element, or
// text, is read by some and dropped by others.
func checkOutsideRoot(doc *etree.Document) error {
	roots := 0
	for i, t := range doc.Child {
		where := "before"
		if roots > 0 {
			where = "after"
		}
		switch t := t.(type) {
		case *etree.Element:
			if roots++; roots > 1 {
				return fmt.Errorf("%w: element %s after the root element; a document has one root", ErrMalformed, clip(t.FullTag()))
			}
		case *etree.CharData:
			if strings.Trim(t.Data, " \t\r\n") != "" {
				return fmt.Errorf("%w: text %s the root element; only whitespace, comments and processing instructions may be there", ErrMalformed, where)
			}
		case *etree.ProcInst:
			if i > 0 && strings.EqualFold(t.Target, "xml") {
				return fmt.Errorf("%w: an XML declaration that does not open the document (XML 1.0 §2.8)", ErrMalformed)
			}
		case *etree.Comment:
		default: // a directive: <!DOCTYPE is refused above, nothing else is XML
			return fmt.Errorf("%w: a <! declaration %s the root element; only whitespace, comments and processing instructions may be there", ErrMalformed, where)
		}
	}
	return nil
}
