package idp

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/beevik/etree"
)

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
