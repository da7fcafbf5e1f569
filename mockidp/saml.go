package mockidp

import (
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/idtx/idtx/fixtures"
	"github.com/idtx/idtx/idp"
)

// The mock SAML IDP's names (fixtures/mock.yaml; the serve --mock banner lists them).
const (
	SAMLName   = "mock-saml"
	SAMLIssuer = "https://mock-idp.idtx.test/saml"
)

type samlKey struct {
	key  crypto.Signer
	cert *x509.Certificate
}

var samlSigner = sync.OnceValues(func() (*samlKey, error) {
	keyPEM, err := fixtures.FS.ReadFile(fixtures.MockSAMLKey)
	if err != nil {
		return nil, err
	}
	key, err := idp.ParsePrivateKey(keyPEM)
	if err != nil {
		return nil, err
	}
	certPEM, err := fixtures.FS.ReadFile(fixtures.MockSAMLCert)
	if err != nil {
		return nil, err
	}
	certs, err := idp.ParseCertificates(certPEM)
	if err != nil {
		return nil, err
	}
	return &samlKey{key: key, cert: certs[0]}, nil
})

// SAML signs a mock SAML assertion (version 2 or 1 for SAML 1.1) with the
// fixture key, RSA-SHA256 over exclusive c14n, and returns it base64url
// encoded as RFC 8693 §3 sends it. --claim values become attributes; a
// JSON list becomes several values.
func SAML(o TokenOptions, version int) (string, error) {
	xml, err := SAMLXML(o, version)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(xml), nil
}

// SAMLXML is the signed assertion as XML.
func SAMLXML(o TokenOptions, version int) ([]byte, error) {
	k, err := samlSigner()
	if err != nil {
		return nil, fmt.Errorf("mock saml key: %w", err)
	}
	if err := CheckBreaks(o.Breaks, formatSAML); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	if o.breaks(BreakExpired) {
		o.Now = o.Now.Add(-o.TTL - breakShift)
	}
	if o.breaks(BreakWrongAudience) {
		o.Aud = WrongAudience
	}
	issuer := SAMLIssuer
	if o.Issuer != "" {
		issuer = o.Issuer
	}
	ts := func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }
	attrs := map[string][]string{}
	if o.Scope != "" {
		attrs["scope"] = strings.Fields(o.Scope)
	}
	for name, v := range o.Claims {
		attrs[name] = attributeValues(v)
	}
	names := make([]string, 0, len(attrs))
	for n := range attrs {
		names = append(names, n)
	}
	slices.Sort(names)

	doc := etree.NewDocument()
	var a *etree.Element
	ctx, err := dsig.NewSigningContext(k.key, [][]byte{k.cert.Raw})
	if err != nil {
		return nil, err
	}
	if err := ctx.SetSignatureMethod(dsig.RSASHA256SignatureMethod); err != nil {
		return nil, err
	}
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	id := "_" + randomID()
	if version == 1 {
		a = doc.CreateElement("saml:Assertion")
		a.CreateAttr("xmlns:saml", idp.NamespaceSAML1Assertion)
		a.CreateAttr("MajorVersion", "1")
		a.CreateAttr("MinorVersion", "1")
		a.CreateAttr("AssertionID", id)
		a.CreateAttr("Issuer", issuer)
		a.CreateAttr("IssueInstant", ts(o.Now))
		c := a.CreateElement("saml:Conditions")
		c.CreateAttr("NotBefore", ts(o.Now))
		c.CreateAttr("NotOnOrAfter", ts(o.Now.Add(o.TTL)))
		c.CreateElement("saml:AudienceRestrictionCondition").CreateElement("saml:Audience").SetText(o.Aud)
		subject := func(parent *etree.Element) {
			s := parent.CreateElement("saml:Subject")
			s.CreateElement("saml:NameIdentifier").SetText(o.Sub)
			s.CreateElement("saml:SubjectConfirmation").CreateElement("saml:ConfirmationMethod").SetText("urn:oasis:names:tc:SAML:1.0:cm:bearer")
		}
		st := a.CreateElement("saml:AuthenticationStatement")
		st.CreateAttr("AuthenticationMethod", "urn:oasis:names:tc:SAML:1.0:am:unspecified")
		st.CreateAttr("AuthenticationInstant", ts(o.Now))
		subject(st)
		if len(names) > 0 {
			as := a.CreateElement("saml:AttributeStatement")
			subject(as)
			for _, n := range names {
				at := as.CreateElement("saml:Attribute")
				at.CreateAttr("AttributeName", n)
				at.CreateAttr("AttributeNamespace", "urn:idtx:mock")
				for _, v := range attrs[n] {
					at.CreateElement("saml:AttributeValue").SetText(v)
				}
			}
		}
		ctx.IdAttribute = "AssertionID"
	} else {
		a = doc.CreateElement("saml:Assertion")
		a.CreateAttr("xmlns:saml", idp.NamespaceSAML2Assertion)
		a.CreateAttr("ID", id)
		a.CreateAttr("IssueInstant", ts(o.Now))
		a.CreateAttr("Version", "2.0")
		a.CreateElement("saml:Issuer").SetText(issuer)
		s := a.CreateElement("saml:Subject")
		nid := s.CreateElement("saml:NameID")
		nid.CreateAttr("Format", "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified")
		nid.SetText(o.Sub)
		sc := s.CreateElement("saml:SubjectConfirmation")
		sc.CreateAttr("Method", "urn:oasis:names:tc:SAML:2.0:cm:bearer")
		sc.CreateElement("saml:SubjectConfirmationData").CreateAttr("NotOnOrAfter", ts(o.Now.Add(o.TTL)))
		c := a.CreateElement("saml:Conditions")
		c.CreateAttr("NotBefore", ts(o.Now))
		c.CreateAttr("NotOnOrAfter", ts(o.Now.Add(o.TTL)))
		c.CreateElement("saml:AudienceRestriction").CreateElement("saml:Audience").SetText(o.Aud)
		an := a.CreateElement("saml:AuthnStatement")
		an.CreateAttr("AuthnInstant", ts(o.Now))
		an.CreateElement("saml:AuthnContext").CreateElement("saml:AuthnContextClassRef").SetText("urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified")
		if len(names) > 0 {
			as := a.CreateElement("saml:AttributeStatement")
			for _, n := range names {
				at := as.CreateElement("saml:Attribute")
				at.CreateAttr("Name", n)
				for _, v := range attrs[n] {
					at.CreateElement("saml:AttributeValue").SetText(v)
				}
			}
		}
	}
	sig, err := ctx.ConstructSignature(a, true)
	if err != nil {
		return nil, fmt.Errorf("sign assertion: %w", err)
	}
	if version == 2 {
		a.InsertChildAt(1, sig) // SAML 2.0 Core §2.3.3: the Signature follows the Issuer
	} else {
		a.AddChild(sig)
	}
	if err := breakSAML(doc, o); err != nil {
		return nil, err
	}
	return doc.WriteToBytes()
}

func attributeValues(v any) []string {
	if list, ok := v.([]any); ok {
		out := make([]string, 0, len(list))
		for _, x := range list {
			out = append(out, scalarString(x))
		}
		return out
	}
	return []string{scalarString(v)}
}

func scalarString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// samlMetadata is the mock SAML IDP's metadata (SAML 2.0 Metadata §2.4.3).
func samlMetadata(w http.ResponseWriter, _ *http.Request) {
	k, err := samlSigner()
	if err != nil {
		http.Error(w, "mock saml key unavailable", http.StatusInternalServerError)
		return
	}
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	ed := doc.CreateElement("md:EntityDescriptor")
	ed.CreateAttr("xmlns:md", "urn:oasis:names:tc:SAML:2.0:metadata")
	ed.CreateAttr("xmlns:ds", "http://www.w3.org/2000/09/xmldsig#")
	ed.CreateAttr("entityID", SAMLIssuer)
	sso := ed.CreateElement("md:IDPSSODescriptor")
	sso.CreateAttr("protocolSupportEnumeration", "urn:oasis:names:tc:SAML:2.0:protocol")
	kd := sso.CreateElement("md:KeyDescriptor")
	kd.CreateAttr("use", "signing")
	kd.CreateElement("ds:KeyInfo").CreateElement("ds:X509Data").CreateElement("ds:X509Certificate").
		SetText(base64.StdEncoding.EncodeToString(k.cert.Raw))
	doc.Indent(2)
	w.Header().Set("Content-Type", "application/samlmetadata+xml")
	doc.WriteTo(w)
}

// CertificatePEM is the mock SAML IDP's certificate.
func CertificatePEM() []byte {
	k, err := samlSigner()
	if err != nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: k.cert.Raw})
}
