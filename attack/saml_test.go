package attack

import (
	"crypto"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/idtx/idtx/mockidp"
)

const (
	nsAssertion = "urn:oasis:names:tc:SAML:2.0:assertion"
	nsProtocol  = "urn:oasis:names:tc:SAML:2.0:protocol"
	cmBearer    = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
	cmHolderKey = "urn:oasis:names:tc:SAML:2.0:cm:holder-of-key"
	statusOK    = "urn:oasis:names:tc:SAML:2.0:status:Success"
)

// samlOptions shape a SAML 2.0 assertion; the zero value is a valid
// corp-saml assertion for alice, valid for an hour from now.
type samlOptions struct {
	issuer       string
	sub          string
	audiences    [][]string // one AudienceRestriction per list; nil: [[idtx-sts]]
	noAudience   bool
	issueInstant time.Time
	notBefore    time.Time
	notOnOrAfter time.Time
	methods      []string // SubjectConfirmation methods; nil: bearer
	// noConfirmationExpiry leaves NotOnOrAfter out of
	// SubjectConfirmationData.
	noConfirmationExpiry bool
}

func xsTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// samlAssertion builds an unsigned SAML 2.0 assertion.
func samlAssertion(o samlOptions) *etree.Element {
	now := time.Now()
	if o.issuer == "" {
		o.issuer = corpSAMLIssuer
	}
	if o.sub == "" {
		o.sub = "alice"
	}
	if o.audiences == nil && !o.noAudience {
		o.audiences = [][]string{{stsAudience}}
	}
	if o.issueInstant.IsZero() {
		o.issueInstant = now
	}
	if o.notBefore.IsZero() {
		o.notBefore = now.Add(-time.Minute)
	}
	if o.notOnOrAfter.IsZero() {
		o.notOnOrAfter = now.Add(time.Hour)
	}
	if o.methods == nil {
		o.methods = []string{cmBearer}
	}
	doc := etree.NewDocument()
	a := doc.CreateElement("saml:Assertion")
	a.CreateAttr("xmlns:saml", nsAssertion)
	a.CreateAttr("ID", "_"+randomID())
	a.CreateAttr("IssueInstant", xsTime(o.issueInstant))
	a.CreateAttr("Version", "2.0")
	a.CreateElement("saml:Issuer").SetText(o.issuer)
	s := a.CreateElement("saml:Subject")
	s.CreateElement("saml:NameID").SetText(o.sub)
	for _, m := range o.methods {
		sc := s.CreateElement("saml:SubjectConfirmation")
		sc.CreateAttr("Method", m)
		scd := sc.CreateElement("saml:SubjectConfirmationData")
		if !o.noConfirmationExpiry {
			scd.CreateAttr("NotOnOrAfter", xsTime(o.notOnOrAfter))
		}
	}
	c := a.CreateElement("saml:Conditions")
	c.CreateAttr("NotBefore", xsTime(o.notBefore))
	c.CreateAttr("NotOnOrAfter", xsTime(o.notOnOrAfter))
	for _, list := range o.audiences {
		ar := c.CreateElement("saml:AudienceRestriction")
		for _, aud := range list {
			ar.CreateElement("saml:Audience").SetText(aud)
		}
	}
	an := a.CreateElement("saml:AuthnStatement")
	an.CreateAttr("AuthnInstant", xsTime(o.issueInstant))
	an.CreateElement("saml:AuthnContext").CreateElement("saml:AuthnContextClassRef").SetText("urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified")
	return a
}

// sign puts an enveloped RSA-SHA256 signature on el, after its Issuer
// (SAML 2.0 Core §5.4.1), with the signer's certificate in KeyInfo.
func (s samlSigner) sign(t testing.TB, el *etree.Element) *etree.Element {
	t.Helper()
	return s.signWith(t, el, crypto.SHA256, dsig.RSASHA256SignatureMethod)
}

func (s samlSigner) signWith(t testing.TB, el *etree.Element, hash crypto.Hash, method string) *etree.Element {
	t.Helper()
	ctx, err := dsig.NewSigningContext(s.key, [][]byte{s.cert.Raw})
	if err != nil {
		t.Fatal(err)
	}
	ctx.Hash = hash
	if err := ctx.SetSignatureMethod(method); err != nil {
		t.Fatal(err)
	}
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	sig, err := ctx.ConstructSignature(el, true)
	if err != nil {
		t.Fatal(err)
	}
	el.InsertChildAt(1, sig)
	return el
}

// samlResponse wraps assertions in a SAML 2.0 Response.
func samlResponse(status string, assertions ...*etree.Element) *etree.Element {
	doc := etree.NewDocument()
	r := doc.CreateElement("samlp:Response")
	r.CreateAttr("xmlns:samlp", nsProtocol)
	r.CreateAttr("xmlns:saml", nsAssertion)
	r.CreateAttr("ID", "_"+randomID())
	r.CreateAttr("Version", "2.0")
	r.CreateAttr("IssueInstant", xsTime(time.Now()))
	r.CreateElement("saml:Issuer").SetText(corpSAMLIssuer)
	r.CreateElement("samlp:Status").CreateElement("samlp:StatusCode").CreateAttr("Value", status)
	for _, a := range assertions {
		r.AddChild(a)
	}
	return r
}

// xmlString serialises el as a document.
func xmlString(t testing.TB, el *etree.Element) string {
	t.Helper()
	doc := etree.NewDocument()
	doc.SetRoot(el)
	s, err := doc.WriteToString()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// parseXML reads a document and returns its root.
func parseXML(t testing.TB, xml []byte) *etree.Element {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(xml); err != nil {
		t.Fatal(err)
	}
	return doc.Root()
}

// mockSigned is an assertion for sub signed by the mock SAML IDP.
func mockSigned(t testing.TB, sub string) *etree.Element {
	t.Helper()
	raw, err := mockidp.SAMLXML(mockidp.TokenOptions{Sub: sub, Now: time.Now()}, 2)
	if err != nil {
		t.Fatal(err)
	}
	return parseXML(t, raw)
}

// samlReq exchanges a SAML 2.0 document, base64url encoded (RFC 8693 §3).
func samlReq(xml string, kv ...string) *request {
	return subjectReq(base64.RawURLEncoding.EncodeToString([]byte(xml)), append([]string{"subject_token_type", tokenTypeSAML2}, kv...)...)
}

// samlRow is a row whose SAML document is made by doc.
func samlRow(name string, doc func(t testing.TB, e *env) string, reason string) row {
	return row{
		name:       name,
		build:      func(t testing.TB, e *env) *request { return samlReq(doc(t, e)) },
		wantStatus: http.StatusBadRequest, wantCode: "invalid_request", wantReason: reason,
	}
}

// signed is a corp-saml assertion made with o, signed.
func signed(o samlOptions) func(testing.TB, *env) string {
	return func(t testing.TB, e *env) string { return xmlString(t, e.saml.sign(t, samlAssertion(o))) }
}

// samlRows are the SAML attacks (On Breaking SAML, CVE-2017-11427,
// CVE-2020-29509..11, CVE-2022-41912) and the SAML 2.0 Core §2.5
// conditions.
func samlRows() []row {
	now := time.Now()
	return []row{
		{
			name:       "control: a signed corp-saml assertion is exchanged",
			build:      func(t testing.TB, e *env) *request { return samlReq(signed(samlOptions{})(t, e)) },
			wantStatus: http.StatusOK, check: claimIs("idp", "corp-saml"),
		},
		{
			name:       "control: a mock-signed assertion is exchanged",
			build:      func(t testing.TB, e *env) *request { return samlReq(xmlString(t, mockSigned(t, "alice"))) },
			wantStatus: http.StatusOK, check: claimIs("sub", "alice"),
		},
		samlRow("XSW1: evil assertion beside the signed one in a Response", func(t testing.TB, e *env) string {
			good := mockSigned(t, "alice")
			evil := good.Copy()
			evil.RemoveChild(evil.SelectElement("Signature"))
			evil.SelectElement("Subject").SelectElement("NameID").SetText("admin")
			r := samlResponse(statusOK, evil, good)
			r.SelectElement("Issuer").SetText(mockidp.SAMLIssuer)
			return xmlString(t, r)
		}, "the document holds 2 assertions; exactly one is accepted"),
		samlRow("XSW2: signed assertion hidden inside the evil one", func(t testing.TB, e *env) string {
			good := mockSigned(t, "alice")
			evil := good.Copy()
			evil.RemoveChild(evil.SelectElement("Signature"))
			evil.SelectElement("Subject").SelectElement("NameID").SetText("admin")
			evil.CreateElement("saml:Advice").AddChild(good)
			return xmlString(t, evil)
		}, "the document holds 2 assertions; exactly one is accepted"),
		samlRow("XSW3: signed assertion inside the signature's Object", func(t testing.TB, e *env) string {
			good := mockSigned(t, "alice")
			evil := good.Copy()
			evil.SelectElement("Subject").SelectElement("NameID").SetText("admin")
			sig := evil.SelectElement("Signature")
			obj := sig.CreateElement("ds:Object")
			good.RemoveChild(good.SelectElement("Signature"))
			obj.AddChild(good)
			return xmlString(t, evil)
		}, "the document holds 2 assertions; exactly one is accepted"),
		samlRow("XSW: evil assertion in Response Extensions", func(t testing.TB, e *env) string {
			good := mockSigned(t, "alice")
			evil := good.Copy()
			evil.RemoveChild(evil.SelectElement("Signature"))
			evil.SelectElement("Subject").SelectElement("NameID").SetText("admin")
			r := samlResponse(statusOK, good)
			r.SelectElement("Issuer").SetText(mockidp.SAMLIssuer)
			ext := etree.NewElement("samlp:Extensions")
			ext.AddChild(evil)
			r.InsertChildAt(1, ext)
			return xmlString(t, r)
		}, "the document holds 2 assertions; exactly one is accepted"),
		samlRow("signed assertion with the NameID changed", func(t testing.TB, e *env) string {
			good := mockSigned(t, "alice")
			good.SelectElement("Subject").SelectElement("NameID").SetText("admin")
			return xmlString(t, good)
		}, "signature of the Assertion does not verify with IDP mock-saml's certificate"),
		{
			name: "comment injection in NameID is refused",
			build: func(t testing.TB, e *env) *request {
				a := e.saml.sign(t, samlAssertion(samlOptions{sub: "admin@corp.test.evil.test"}))
				// Exclusive c14n drops comments, so the signature still
				// holds; a reader stopping at the comment would see
				// admin@corp.test (CVE-2017-11427): refused, not read.
				nameID := a.SelectElement("Subject").SelectElement("NameID")
				nameID.SetText("")
				nameID.RemoveChildAt(0)
				nameID.AddChild(etree.NewText("admin@corp.test"))
				nameID.AddChild(etree.NewComment(""))
				nameID.AddChild(etree.NewText(".evil.test"))
				return samlReq(xmlString(t, a))
			},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_request", wantReason: "malformed token: NameID holds a comment; it must hold only text",
		},
		samlRow("DOCTYPE with an entity", func(t testing.TB, e *env) string {
			a := signed(samlOptions{})(t, e)
			return `<!DOCTYPE saml:Assertion [<!ENTITY who "admin">]>` + a
		}, "a DOCTYPE is refused"),
		samlRow("unsigned assertion", func(t testing.TB, e *env) string {
			return xmlString(t, samlAssertion(samlOptions{}))
		}, "neither the assertion nor the response is signed"),
		samlRow("unsigned assertion in an unsigned Response", func(t testing.TB, e *env) string {
			return xmlString(t, samlResponse(statusOK, samlAssertion(samlOptions{})))
		}, "neither the assertion nor the response is signed"),
		samlRow("assertion changed inside a signed Response", func(t testing.TB, e *env) string {
			r := e.saml.sign(t, samlResponse(statusOK, samlAssertion(samlOptions{})))
			r.FindElement("./Assertion/Subject/NameID").SetText("admin")
			return xmlString(t, r)
		}, "signature of the Response does not verify"),
		samlRow("signed assertion in a Response signed by a foreign key", func(t testing.TB, e *env) string {
			return xmlString(t, e.foreignSAML.sign(t, samlResponse(statusOK, e.saml.sign(t, samlAssertion(samlOptions{})))))
		}, "the certificate in the signature of the Response is not one of IDP corp-saml's certificates"),
		samlRow("signed assertion in a Response whose signature is broken", func(t testing.TB, e *env) string {
			r := e.saml.sign(t, samlResponse(statusOK, e.saml.sign(t, samlAssertion(samlOptions{}))))
			r.CreateAttr("Destination", "https://sp.evil.test/acs")
			return xmlString(t, r)
		}, "signature of the Response does not verify"),
		samlRow("XML that does not survive a round trip", func(t testing.TB, e *env) string {
			a := signed(samlOptions{})(t, e)
			return strings.Replace(a, "</saml:Assertion>", `<saml:Advice><p:0 xmlns:p="urn:a"/></saml:Advice></saml:Assertion>`, 1)
		}, "XML does not survive a round trip"),
		samlRow("certificate embedded in the signature", func(t testing.TB, e *env) string {
			return xmlString(t, e.foreignSAML.sign(t, samlAssertion(samlOptions{})))
		}, "the certificate in the signature of the Assertion is not one of IDP corp-saml's certificates"),
		samlRow("SHA-1 signature", func(t testing.TB, e *env) string {
			return xmlString(t, e.saml.signWith(t, samlAssertion(samlOptions{}), crypto.SHA1, dsig.RSASHA1SignatureMethod))
		}, "is SHA-1, refused unless IDP corp-saml sets allow_sha1"),
		samlRow("missing AudienceRestriction", signed(samlOptions{noAudience: true}), "no AudienceRestriction"),
		samlRow("audience of another service", signed(samlOptions{audiences: [][]string{{"https://sp.evil.test"}}}), "names none of IDP corp-saml's audiences"),
		samlRow("expired", signed(samlOptions{notBefore: now.Add(-2 * time.Hour), notOnOrAfter: now.Add(-time.Hour)}), "expired at"),
		samlRow("not yet valid", signed(samlOptions{notBefore: now.Add(time.Hour), notOnOrAfter: now.Add(2 * time.Hour)}), "not valid before"),
		samlRow("untrusted issuer", func(t testing.TB, e *env) string {
			return xmlString(t, e.foreignSAML.sign(t, samlAssertion(samlOptions{issuer: "https://evil.test/saml"})))
		}, `SAML Issuer "https://evil.test/saml" is not a trusted IDP`),
		samlRow("issuer mix-up: corp-saml's signature under the mock's Issuer", func(t testing.TB, e *env) string {
			return xmlString(t, e.saml.sign(t, samlAssertion(samlOptions{issuer: mockidp.SAMLIssuer})))
		}, "is not one of IDP mock-saml's certificates"),
		{
			name: "SAML 2.0 presented as SAML 1.1",
			build: func(t testing.TB, e *env) *request {
				return samlReq(signed(samlOptions{})(t, e), "subject_token_type", tokenTypeSAML1)
			},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_request", wantReason: "the document is SAML 2.0, presented as saml1",
		},
		samlRow("huge assertion", func(t testing.TB, e *env) string {
			a := samlAssertion(samlOptions{})
			a.CreateElement("saml:Advice").SetText(strings.Repeat("x", 20<<10))
			return xmlString(t, e.saml.sign(t, a))
		}, "subject_token is longer than 16384 bytes"),
		// Bearer assertions for this STS (issue 8 item 6).
		samlRow("holder-of-key confirmation only", signed(samlOptions{methods: []string{cmHolderKey}}),
			`the Subject has no bearer SubjectConfirmation (`+cmBearer+`; found ["`+cmHolderKey+`"]): holder-of-key and sender-vouches are refused`),
		samlRow("bearer confirmation without NotOnOrAfter", signed(samlOptions{noConfirmationExpiry: true}),
			"the bearer SubjectConfirmationData has no NotOnOrAfter (SAML 2.0 Profiles §4.1.4.2)"),
		samlRow("Response whose Status is not Success", func(t testing.TB, e *env) string {
			return xmlString(t, e.saml.sign(t, samlResponse("urn:oasis:names:tc:SAML:2.0:status:Requester", samlAssertion(samlOptions{}))))
		}, `the Response's StatusCode is "urn:oasis:names:tc:SAML:2.0:status:Requester", not Success: the IDP did not authenticate the subject`),
		samlRow("two AudienceRestrictions, one for another SP", signed(samlOptions{audiences: [][]string{{stsAudience}, {"https://sp.evil.test"}}}),
			`AudienceRestriction 2 of 2 (audience ["https://sp.evil.test"]) names none of IDP corp-saml's audiences ["idtx-sts"]; each must (SAML 2.0 Core §2.5.1.4)`),
		samlRow("IssueInstant in the future", signed(samlOptions{issueInstant: now.Add(time.Hour)}),
			"IssueInstant "+xsTime(now.Add(time.Hour))+" is in the future (now "),
		samlRow("trailing element after the root", func(t testing.TB, e *env) string {
			return signed(samlOptions{})(t, e) + `<saml:Assertion xmlns:saml="` + nsAssertion + `"/>`
		}, "element saml:Assertion after the root element; a document has one root"),
		samlRow("XML declaration naming another encoding", func(t testing.TB, e *env) string {
			return `<?xml version="1.0" encoding="UTF-16"?>` + signed(samlOptions{})(t, e)
		}, `the XML declaration names encoding "UTF-16"; only UTF-8 (or US-ASCII) is accepted`),
	}
}

// TestSAMLAttacks sends every SAML attack to a running server.
func TestSAMLAttacks(t *testing.T) {
	runRows(t, newEnv(t), samlRows())
}
