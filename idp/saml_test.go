package idp_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/fixtures"
	"github.com/idtx/idtx/idp"
	"github.com/idtx/idtx/mockidp"
	"github.com/idtx/idtx/oauth"
)

var samlNow = time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)

// signer is a SAML signing key with its certificate.
type samlSigner struct {
	key  crypto.Signer
	cert *x509.Certificate
}

func mockSAMLSigner(t testing.TB) samlSigner {
	t.Helper()
	k, _ := fixtures.FS.ReadFile(fixtures.MockSAMLKey)
	c, _ := fixtures.FS.ReadFile(fixtures.MockSAMLCert)
	key, err := idp.ParsePrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := idp.ParseCertificates(c)
	if err != nil {
		t.Fatal(err)
	}
	return samlSigner{key, certs[0]}
}

func foreignSAMLSigner(t testing.TB) samlSigner {
	t.Helper()
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "evil"},
		NotBefore: samlNow.Add(-time.Hour), NotAfter: samlNow.Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	cert, _ := x509.ParseCertificate(der)
	return samlSigner{key, cert}
}

// sign puts an enveloped signature on el (after its Issuer, for SAML 2.0).
func (s samlSigner) sign(t testing.TB, el *etree.Element, sha1 bool) {
	t.Helper()
	ctx, err := dsig.NewSigningContext(s.key, [][]byte{s.cert.Raw})
	if err != nil {
		t.Fatal(err)
	}
	if sha1 {
		ctx.Hash = crypto.SHA1
		ctx.SetSignatureMethod(dsig.RSASHA1SignatureMethod)
	} else {
		ctx.SetSignatureMethod(dsig.RSASHA256SignatureMethod)
	}
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if el.SelectAttr("AssertionID") != nil {
		ctx.IdAttribute = "AssertionID"
	}
	sig, err := ctx.ConstructSignature(el, true)
	if err != nil {
		t.Fatal(err)
	}
	el.InsertChildAt(1, sig)
}

// unsignedAssertion is a mock SAML 2.0 assertion with its signature
// removed, ready to be changed and signed again.
func unsignedAssertion(t testing.TB, o mockidp.TokenOptions) *etree.Element {
	t.Helper()
	if o.Now.IsZero() {
		o.Now = samlNow
	}
	raw, err := mockidp.SAMLXML(o, 2)
	if err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		t.Fatal(err)
	}
	a := doc.Root()
	a.RemoveChild(a.SelectElement("Signature"))
	return a
}

func xmlOf(t testing.TB, el *etree.Element) string {
	t.Helper()
	doc := etree.NewDocument()
	doc.SetRoot(el.Copy())
	s, err := doc.WriteToString()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// response wraps assertions (as XML strings) in a SAML 2.0 Response.
func response(issuer string, inner ...string) *etree.Element {
	doc := etree.NewDocument()
	xml := `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_resp1" Version="2.0" IssueInstant="2026-05-06T07:08:09Z">`
	if issuer != "" {
		xml += `<saml:Issuer>` + issuer + `</saml:Issuer>`
	}
	xml += `<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>` + strings.Join(inner, "") + `</samlp:Response>`
	if err := doc.ReadFromString(xml); err != nil {
		panic(err)
	}
	return doc.Root()
}

func samlValidator(t testing.TB, allowSHA1 bool) *idp.SAML {
	t.Helper()
	v, err := idp.NewSAML(idp.SAMLConfig{
		Name: "mock-saml", Issuer: mockidp.SAMLIssuer, Certificates: []*x509.Certificate{mockSAMLSigner(t).cert},
		Audiences: []string{"idtx-sts"}, AllowSHA1: allowSHA1, ClockSkew: 30 * time.Second,
		Clock: func() time.Time { return samlNow },
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// Every SAML row of docs/security.md, built from the mock IDP's signed output.
func TestSAMLAttacks(t *testing.T) {
	mock := mockSAMLSigner(t)
	signed := func(mutate func(a *etree.Element)) *etree.Element {
		a := unsignedAssertion(t, mockidp.TokenOptions{Sub: "alice@x.com"})
		if mutate != nil {
			mutate(a)
		}
		mock.sign(t, a, false)
		return a
	}
	good := xmlOf(t, signed(nil))
	evil := strings.Replace(strings.Replace(good, "alice@x.com", "admin@x.com", 1), `ID="_`, `ID="_evil`, 1)

	signedResponse := func(inner string) string {
		r := response(mockidp.SAMLIssuer, inner)
		mock.sign(t, r, false)
		return xmlOf(t, r)
	}
	tamperedResponse := func() string {
		s := signedResponse(xmlOf(t, unsignedAssertion(t, mockidp.TokenOptions{Sub: "alice@x.com"})))
		return strings.Replace(s, "alice@x.com", "admin@x.com", 1)
	}()
	foreign := foreignSAMLSigner(t)
	foreignSigned := func() string {
		a := unsignedAssertion(t, mockidp.TokenOptions{Sub: "alice@x.com"})
		foreign.sign(t, a, false)
		return xmlOf(t, a)
	}()
	sha1Signed := func() string {
		a := unsignedAssertion(t, mockidp.TokenOptions{Sub: "alice@x.com"})
		mock.sign(t, a, true)
		return xmlOf(t, a)
	}()
	noAudience := xmlOf(t, signed(func(a *etree.Element) {
		c := a.SelectElement("Conditions")
		c.RemoveChild(c.SelectElement("AudienceRestriction"))
	}))
	twoNameIDs := xmlOf(t, signed(func(a *etree.Element) {
		s := a.SelectElement("Subject")
		s.InsertChildAt(0, s.SelectElement("NameID").Copy())
	}))

	// A second signature referencing the assertion, hidden below it, and
	// the enveloped one moved below: goxmldsig would pick the first it
	// finds, so the one whose algorithms are checked must be the only one.
	doubleSigned := func() string {
		a := signed(nil)
		a.SelectElement("Subject").AddChild(a.SelectElement("Signature").Copy())
		return xmlOf(t, a)
	}()
	decoyEnveloped := func() string {
		a := signed(nil)
		sig := a.SelectElement("Signature")
		a.SelectElement("Subject").AddChild(sig.Copy())
		sig.FindElement("./SignedInfo/Reference").CreateAttr("URI", "#_elsewhere")
		return xmlOf(t, a)
	}()
	nestedSignature := func() string {
		a := signed(nil)
		sig := a.SelectElement("Signature")
		a.RemoveChild(sig)
		a.SelectElement("Subject").AddChild(sig)
		return xmlOf(t, a)
	}()

	tests := []struct {
		name, token, tokenType, want string
	}{
		{"two signatures reference the assertion", doubleSigned, "", "2 signatures reference the Assertion; exactly one is accepted"},
		{"the signature is not enveloped", nestedSignature, "", "neither the assertion nor the response is signed"},
		{"the enveloped signature is a decoy", decoyEnveloped, "", "the signature referencing the Assertion is not its enveloped signature"},
		{"XSW: evil assertion beside the signed one", xmlOf(t, response(mockidp.SAMLIssuer, evil, good)), "", "the document holds 2 assertions"},
		{"XSW: signed assertion hidden in the evil one", strings.Replace(evil, "</saml:Subject>", "</saml:Subject><saml:Advice>"+good+"</saml:Advice>", 1), "", "the document holds 2 assertions"},
		{"XSW: signed assertion inside Extensions", xmlOf(t, response(mockidp.SAMLIssuer, `<samlp:Extensions>`+good+`</samlp:Extensions>`, evil)), "", "the document holds 2 assertions"},
		{"XSW: renamed copy, signature kept", strings.Replace(good, "alice@x.com", "admin@x.com", 1), "", "Signature could not be verified"},
		{"comment injection that extends NameID", strings.Replace(good, "alice@x.com<", "alice@x.com<!---->.evil.com<", 1), "", "malformed token: NameID holds a comment; it must hold only text"},
		{"a token encoding/xml would not write back", strings.Replace(good, "</saml:Subject>", `<p:0 xmlns:p="urn:x"/></saml:Subject>`, 1), "", "XML does not survive a round trip: validator: in token starting at 1:"},
		{"DOCTYPE", `<!DOCTYPE saml:Assertion [<!ENTITY who "admin">]>` + good, "", "DOCTYPE is refused"},
		{"two assertions in a signed response", signedResponse(good + good), "", "the document holds 2 assertions"},
		{"unsigned assertion in an unsigned response", xmlOf(t, response(mockidp.SAMLIssuer, xmlOf(t, unsignedAssertion(t, mockidp.TokenOptions{})))), "", "neither the assertion nor the response is signed"},
		{"assertion changed inside a signed response", tamperedResponse, "", "signature of the Response does not verify"},
		{"signed assertion in a response with a broken signature", func() string {
			s := signedResponse(good)
			return strings.Replace(s, `<samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/>`, `<samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/><samlp:StatusMessage>x</samlp:StatusMessage>`, 1)
		}(), "", "signature of the Response does not verify"},
		{"certificate embedded by the attacker", foreignSigned, "", "the certificate in the signature of the Assertion is not one of IDP mock-saml's certificates (SHA-256 "},
		{"two KeyInfo elements", func() string {
			a := signed(nil)
			sig := a.SelectElement("Signature")
			sig.AddChild(sig.SelectElement("KeyInfo").Copy())
			return xmlOf(t, a)
		}(), "", "the signature of the Assertion has 2 KeyInfo elements"},
		{"a KeyInfo in another namespace", func() string {
			a := signed(nil)
			ki := a.FindElement("./Signature/KeyInfo")
			ki.Space = "x"
			ki.CreateAttr("xmlns:x", "urn:x")
			return xmlOf(t, a)
		}(), "", "the signature of the Assertion has a KeyInfo outside the XML-DSig namespace"},
		{"a certificate that is not base64", func() string {
			a := signed(nil)
			a.FindElement("./Signature/KeyInfo/X509Data/X509Certificate").SetText("not*base64")
			return xmlOf(t, a)
		}(), "", "the certificate in the signature of the Assertion is not base64"},
		{"control: no KeyInfo, one configured certificate", func() string {
			a := signed(nil)
			sig := a.SelectElement("Signature")
			sig.RemoveChild(sig.SelectElement("KeyInfo"))
			return xmlOf(t, a)
		}(), "", ""},
		{"no KeyInfo, and a signature by another key", func() string {
			a := unsignedAssertion(t, mockidp.TokenOptions{Sub: "alice@x.com"})
			foreign.sign(t, a, false)
			sig := a.SelectElement("Signature")
			sig.RemoveChild(sig.SelectElement("KeyInfo"))
			return xmlOf(t, a)
		}(), "", "signature of the Assertion does not verify with IDP mock-saml's certificate: crypto/rsa: verification error"},
		{"SHA-1 without allow_sha1", sha1Signed, "", "SHA-1, refused unless IDP mock-saml sets allow_sha1"},
		{"expired", xmlOf(t, func() *etree.Element {
			a := unsignedAssertion(t, mockidp.TokenOptions{Now: samlNow.Add(-2 * time.Hour)})
			mock.sign(t, a, false)
			return a
		}()), "", "expired at 2026-05-06T06:08:09Z (now 2026-05-06T07:08:09Z)"},
		{"not yet valid", xmlOf(t, func() *etree.Element {
			a := unsignedAssertion(t, mockidp.TokenOptions{Now: samlNow.Add(5 * time.Minute)})
			mock.sign(t, a, false)
			return a
		}()), "", "not valid before 2026-05-06T07:13:09Z"},
		{"wrong audience", xmlOf(t, func() *etree.Element {
			a := unsignedAssertion(t, mockidp.TokenOptions{Aud: "billing-api"})
			mock.sign(t, a, false)
			return a
		}()), "", `audience ["billing-api"] names none of IDP mock-saml's audiences ["idtx-sts"]`},
		{"missing AudienceRestriction", noAudience, "", "no AudienceRestriction"},
		{"two NameIDs", twoNameIDs, "", "the Subject has 2 NameID elements"},
		{"control: a signed response around the signed assertion", signedResponse(good), "", ""},
		{"SAML 2.0 presented as saml1", good, oauth.TokenTypeSAML1, "the document is SAML 2.0, presented as saml1"},
		{"deflated (not inflated)", "fZBNT8MwDIbv+xVR7m2ywpBgrS", "", "not a SAML assertion"},
		{"too large", strings.Repeat("A", idp.MaxSAMLBytes+1), "", "longer than 16384 bytes"},
	}
	v := samlValidator(t, false)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tokenType := tt.tokenType
			if tokenType == "" {
				tokenType = oauth.TokenTypeSAML2
			}
			id, err := v.Validate(t.Context(), b64(tt.token), tokenType)
			if tt.want == "" { // a control: this one is valid
				if err != nil {
					t.Fatalf("valid input refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v (identity %+v), want an error containing %q", err, id, tt.want)
			}
		})
	}

	t.Run("response issuer must be the IDP's", func(t *testing.T) {
		_, err := v.Validate(t.Context(), b64(xmlOf(t, response("https://evil.test", good))), oauth.TokenTypeSAML2)
		if err == nil || !strings.Contains(err.Error(), `Response Issuer "https://evil.test" is not`) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("SHA-1 with allow_sha1", func(t *testing.T) {
		if _, err := samlValidator(t, true).Validate(t.Context(), b64(sha1Signed), oauth.TokenTypeSAML2); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("comments inside NameID: refused", func(t *testing.T) {
		for _, in := range []string{"alice@x.com<!-- c -->", "alice@<!-- c -->x.com"} {
			tok := strings.Replace(good, "alice@x.com", in, 1)
			id, err := v.Validate(t.Context(), b64(tok), oauth.TokenTypeSAML2)
			if err == nil || err.Error() != "malformed token: NameID holds a comment; it must hold only text" {
				t.Fatalf("%s: %v %+v", in, err, id)
			}
		}
	})
	t.Run("raw XML and base64url are accepted too", func(t *testing.T) {
		for _, tok := range []string{good, base64.RawURLEncoding.EncodeToString([]byte(good))} {
			if _, err := v.Validate(t.Context(), tok, oauth.TokenTypeSAML2); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// FuzzSAML is differential: whatever the validator accepts, the subject it
// reports is the NameID of the element the signature covers, as
// encoding/xml (a different parser) reads it, comments left out. Run it
// with -fuzzminimizetime 100x: minimising each ~4 KB input it finds
// interesting for the default 60 s leaves the run counting no executions.
func FuzzSAML(f *testing.F) {
	mock := mockSAMLSigner(f)
	a := unsignedAssertion(f, mockidp.TokenOptions{Sub: "alice@x.com"})
	mock.sign(f, a, false)
	good := xmlOf(f, a)
	f.Add(good)
	f.Add(strings.Replace(good, "alice@x.com", "alice@<!---->x.com", 1))
	f.Add(xmlOf(f, response(mockidp.SAMLIssuer, good)))
	f.Add(xmlOf(f, response(mockidp.SAMLIssuer, good, good)))
	v := samlValidator(f, false)
	f.Fuzz(func(t *testing.T, token string) {
		id, err := v.Validate(context.Background(), token, oauth.TokenTypeSAML2)
		if err != nil {
			return
		}
		want := signedNameID(t, token)
		if id.Subject != want {
			t.Fatalf("accepted subject %q, but the signed element's NameID is %q", id.Subject, want)
		}
	})
}

// signedNameID reads, with encoding/xml, the NameID inside the element
// whose ID the signature's Reference names.
func signedNameID(t *testing.T, token string) string {
	_, raw := idp.Sniff(token)
	var ref string
	for _, m := range []string{`URI="#`} {
		if i := bytes.Index(raw, []byte(m)); i >= 0 {
			rest := raw[i+len(m):]
			ref = string(rest[:bytes.IndexByte(rest, '"')])
		}
	}
	dec := xml.NewDecoder(bytes.NewReader(raw))
	depth, inSigned, inNameID := 0, 0, false
	var text strings.Builder
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		switch el := tok.(type) {
		case xml.StartElement:
			depth++
			for _, at := range el.Attr {
				if at.Name.Local == "ID" && at.Value == ref && inSigned == 0 {
					inSigned = depth
				}
			}
			if inSigned > 0 && el.Name.Local == "NameID" {
				inNameID = true
			}
		case xml.EndElement:
			if el.Name.Local == "NameID" {
				inNameID = false
			}
			if depth == inSigned {
				inSigned = 0
			}
			depth--
		case xml.CharData:
			if inNameID {
				text.Write(el)
			}
		}
	}
	return strings.TrimSpace(text.String())
}

func TestSAMLCertificatesAndSkew(t *testing.T) {
	mock := mockSAMLSigner(t)
	foreign := foreignSAMLSigner(t)
	tok := func(now time.Time) string {
		a := unsignedAssertion(t, mockidp.TokenOptions{Sub: "alice", Now: now})
		mock.sign(t, a, false)
		return b64(xmlOf(t, a))
	}
	t.Run("rotation: the signing certificate is any of several", func(t *testing.T) {
		v, _ := idp.NewSAML(idp.SAMLConfig{Name: "r", Issuer: mockidp.SAMLIssuer, Certificates: []*x509.Certificate{foreign.cert, mock.cert},
			Audiences: []string{"idtx-sts"}, Clock: func() time.Time { return samlNow }})
		if _, err := v.Validate(t.Context(), tok(samlNow), oauth.TokenTypeSAML2); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("clock skew: 20s early is accepted with 30s, refused with 10s", func(t *testing.T) {
		early := tok(samlNow.Add(20 * time.Second))
		for skew, want := range map[time.Duration]string{30 * time.Second: "", 10 * time.Second: "not valid before"} {
			v, _ := idp.NewSAML(idp.SAMLConfig{Name: "s", Issuer: mockidp.SAMLIssuer, Certificates: []*x509.Certificate{mock.cert},
				Audiences: []string{"idtx-sts"}, ClockSkew: skew, Clock: func() time.Time { return samlNow }})
			_, err := v.Validate(t.Context(), early, oauth.TokenTypeSAML2)
			if (want == "" && err != nil) || (want != "" && (err == nil || !strings.Contains(err.Error(), want))) {
				t.Errorf("skew %s: %v, want %q", skew, err, want)
			}
		}
	})
}

func TestSAMLFromConfig(t *testing.T) {
	metadata := func(entityID string) []byte {
		cert := base64.StdEncoding.EncodeToString(mockSAMLSigner(t).cert.Raw)
		return []byte(`<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="` + entityID + `">
<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
<md:KeyDescriptor use="encryption"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>` + base64.StdEncoding.EncodeToString(foreignSAMLSigner(t).cert.Raw) + `</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>` + cert + `</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
</md:IDPSSODescriptor></md:EntityDescriptor>`)
	}
	build := func(md []byte) (*idp.Registry, error) {
		return idp.FromConfig(t.Context(), []config.IDP{{
			Name: "corp", Type: config.IDPTypeSAML, Issuer: mockidp.SAMLIssuer, Spec: &idp.SAMLSpec{MetadataFile: "md.xml"},
			Audiences: []string{"idtx-sts"}, ClockSkew: 30 * time.Second,
		}}, idp.Options{Clock: func() time.Time { return samlNow }, ReadFile: func(string) ([]byte, error) { return md, nil }})
	}
	reg, err := build(metadata(mockidp.SAMLIssuer))
	if err != nil {
		t.Fatal(err)
	}
	a := unsignedAssertion(t, mockidp.TokenOptions{Sub: "alice"})
	mockSAMLSigner(t).sign(t, a, false)
	if id, err := reg.Validate(t.Context(), b64(xmlOf(t, a)), oauth.TokenTypeSAML2); err != nil || id.IDP != "corp" {
		t.Fatalf("%v %+v", err, id)
	}
	if _, err := build(metadata("https://other.example/saml")); err == nil || !strings.Contains(err.Error(), `metadata_file names entityID "https://other.example/saml", not the issuer`) {
		t.Fatalf("entityID mismatch: %v", err)
	}
}

// signedAssertion is a mock SAML 2.0 assertion issued at o.Now (samlNow by
// default), changed by mutate and signed again with the mock's key.
func signedAssertion(t testing.TB, o mockidp.TokenOptions, mutate func(a *etree.Element)) *etree.Element {
	t.Helper()
	a := unsignedAssertion(t, o)
	if mutate != nil {
		mutate(a)
	}
	mockSAMLSigner(t).sign(t, a, false)
	return a
}

// signedAssertion1 is the same for SAML 1.1.
func signedAssertion1(t testing.TB, o mockidp.TokenOptions, mutate func(a *etree.Element)) *etree.Element {
	t.Helper()
	if o.Now.IsZero() {
		o.Now = samlNow
	}
	raw, err := mockidp.SAMLXML(o, 1)
	if err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		t.Fatal(err)
	}
	a := doc.Root()
	a.RemoveChild(a.SelectElement("Signature"))
	if mutate != nil {
		mutate(a)
	}
	mockSAMLSigner(t).sign(t, a, false)
	return a
}

// responseWith wraps an assertion in a SAML 2.0 Response with the given
// extra attributes and top-level StatusCode.
func responseWith(t testing.TB, attrs, status, inner string) *etree.Element {
	t.Helper()
	doc := etree.NewDocument()
	err := doc.ReadFromString(`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_resp1" Version="2.0" IssueInstant="2026-05-06T07:08:09Z"` + attrs + `>` +
		`<saml:Issuer>` + mockidp.SAMLIssuer + `</saml:Issuer>` + status + inner + `</samlp:Response>`)
	if err != nil {
		t.Fatal(err)
	}
	return doc.Root()
}

const (
	success2  = `<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>`
	recipient = "https://sts.example/token"
)

func bearerData(a *etree.Element) *etree.Element {
	return a.FindElement("./Subject/SubjectConfirmation/SubjectConfirmationData")
}

func addConfirmation(a *etree.Element, method string) *etree.Element {
	sc := a.SelectElement("Subject").CreateElement("saml:SubjectConfirmation")
	sc.CreateAttr("Method", method)
	return sc
}

// SAML subject tokens are bearer assertions for this STS: each case sends
// one that is not, and expects the exact refusal.
func TestSAMLBearerAssertionsForThisSTS(t *testing.T) {
	const (
		hok = "urn:oasis:names:tc:SAML:2.0:cm:holder-of-key"
		sv  = "urn:oasis:names:tc:SAML:2.0:cm:sender-vouches"
	)
	mock := mockSAMLSigner(t)
	at := func(d time.Duration) string { return samlNow.Add(d).UTC().Format(time.RFC3339) }
	assertion := func(mutate func(a *etree.Element)) string {
		return xmlOf(t, signedAssertion(t, mockidp.TokenOptions{Sub: "alice"}, mutate))
	}
	good := assertion(nil)
	signedResponse := func(attrs, status, inner string) string {
		r := responseWith(t, attrs, status, inner)
		mock.sign(t, r, false)
		return xmlOf(t, r)
	}
	withRecipient := func(a *etree.Element) { bearerData(a).CreateAttr("Recipient", recipient) }
	saml1 := func(mutate func(a *etree.Element)) string {
		return xmlOf(t, signedAssertion1(t, mockidp.TokenOptions{Sub: "alice", Claims: map[string]any{"groups": "staff"}}, mutate))
	}
	response1 := func(attrs, status, inner string) string {
		return `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:1.0:protocol" ResponseID="_r1" MajorVersion="1" MinorVersion="1" IssueInstant="2026-05-06T07:08:09Z"` + attrs + `>` +
			`<samlp:Status><samlp:StatusCode Value="` + status + `"/></samlp:Status>` + inner + `</samlp:Response>`
	}
	utf16 := func(s string) string {
		b := []byte{0xFF, 0xFE}
		for _, r := range s {
			b = append(b, byte(r), byte(r>>8))
		}
		return string(b)
	}
	nonASCII := `<?xml version="1.0" encoding="US-ASCII"?>` + xmlOf(t, signedAssertion(t, mockidp.TokenOptions{Sub: "alicé"}, nil))

	plain := idp.SAMLConfig{}
	strict := idp.SAMLConfig{Recipients: []string{recipient}}
	aged := idp.SAMLConfig{MaxAge: 5 * time.Minute}
	twoNames := idp.SAMLConfig{Audiences: []string{"idtx-sts", "sts-alias"}}

	tests := []struct {
		name      string
		cfg       idp.SAMLConfig
		token     string
		tokenType string
		want      string // the exact refusal; "" for a control that is accepted
	}{
		// A bearer confirmation is required (SAML 2.0 Profiles §4.1.4.2).
		{"control: bearer", plain, good, "", ""},
		{"holder-of-key alone", plain, assertion(func(a *etree.Element) {
			a.FindElement("./Subject/SubjectConfirmation").CreateAttr("Method", hok)
		}), "", `invalid token: the Subject has no bearer SubjectConfirmation (urn:oasis:names:tc:SAML:2.0:cm:bearer; found ["urn:oasis:names:tc:SAML:2.0:cm:holder-of-key"]): holder-of-key and sender-vouches are refused`},
		{"sender-vouches alone", plain, assertion(func(a *etree.Element) {
			a.FindElement("./Subject/SubjectConfirmation").CreateAttr("Method", sv)
		}), "", `invalid token: the Subject has no bearer SubjectConfirmation (urn:oasis:names:tc:SAML:2.0:cm:bearer; found ["urn:oasis:names:tc:SAML:2.0:cm:sender-vouches"]): holder-of-key and sender-vouches are refused`},
		{"no SubjectConfirmation", plain, assertion(func(a *etree.Element) {
			s := a.SelectElement("Subject")
			s.RemoveChild(s.SelectElement("SubjectConfirmation"))
		}), "", `invalid token: the Subject has no bearer SubjectConfirmation (urn:oasis:names:tc:SAML:2.0:cm:bearer; found []): holder-of-key and sender-vouches are refused`},
		{"bearer without SubjectConfirmationData", plain, assertion(func(a *etree.Element) {
			sc := a.FindElement("./Subject/SubjectConfirmation")
			sc.RemoveChild(sc.SelectElement("SubjectConfirmationData"))
		}), "", "invalid token: the bearer SubjectConfirmationData has no NotOnOrAfter (SAML 2.0 Profiles §4.1.4.2)"},
		{"bearer without NotOnOrAfter", plain, assertion(func(a *etree.Element) { bearerData(a).RemoveAttr("NotOnOrAfter") }), "",
			"invalid token: the bearer SubjectConfirmationData has no NotOnOrAfter (SAML 2.0 Profiles §4.1.4.2)"},
		{"bearer expired, Conditions not", plain, assertion(func(a *etree.Element) { bearerData(a).CreateAttr("NotOnOrAfter", at(-time.Minute)) }), "",
			"invalid token: bearer confirmation expired at 2026-05-06T07:07:09Z (now 2026-05-06T07:08:09Z)"},
		{"bearer expired 20s ago: within the skew", plain, assertion(func(a *etree.Element) { bearerData(a).CreateAttr("NotOnOrAfter", at(-20*time.Second)) }), "", ""},
		{"bearer NotBefore ahead", plain, assertion(func(a *etree.Element) { bearerData(a).CreateAttr("NotBefore", at(time.Minute)) }), "",
			"invalid token: the bearer SubjectConfirmationData is not valid before 2026-05-06T07:09:09Z (now 2026-05-06T07:08:09Z); a bearer confirmation has no NotBefore (SAML 2.0 Profiles §4.1.4.2)"},
		{"control: bearer NotBefore past", plain, assertion(func(a *etree.Element) { bearerData(a).CreateAttr("NotBefore", at(-time.Minute)) }), "", ""},
		{"control: bearer NotBefore 20s ahead, within the skew", plain, assertion(func(a *etree.Element) { bearerData(a).CreateAttr("NotBefore", at(20*time.Second)) }), "", ""},
		{"holder-of-key beside an expired bearer", plain, assertion(func(a *etree.Element) {
			bearerData(a).CreateAttr("NotOnOrAfter", at(-time.Minute))
			addConfirmation(a, hok)
		}), "", "invalid token: bearer confirmation expired at 2026-05-06T07:07:09Z (now 2026-05-06T07:08:09Z)"},
		{"control: holder-of-key beside a valid bearer", plain, assertion(func(a *etree.Element) { addConfirmation(a, hok) }), "", ""},
		{"control: an expired bearer beside a valid one", plain, assertion(func(a *etree.Element) {
			bearerData(a).CreateAttr("NotOnOrAfter", at(-time.Minute))
			addConfirmation(a, "urn:oasis:names:tc:SAML:2.0:cm:bearer").CreateElement("saml:SubjectConfirmationData").CreateAttr("NotOnOrAfter", at(time.Minute))
		}), "", ""},
		{"two SubjectConfirmationData in one confirmation", plain, assertion(func(a *etree.Element) {
			sc := a.FindElement("./Subject/SubjectConfirmation")
			sc.AddChild(sc.SelectElement("SubjectConfirmationData").Copy())
		}), "", "malformed token: a SubjectConfirmation has 2 SubjectConfirmationData elements; at most one is allowed"},

		// recipients: the bearer Recipient is then required and checked.
		{"control: recipients set, Recipient listed", strict, assertion(withRecipient), "", ""},
		{"recipients set, no Recipient", strict, good, "",
			`invalid token: the bearer SubjectConfirmationData has no Recipient; IDP mock-saml requires one of its recipients ["https://sts.example/token"]`},
		{"recipients set, another Recipient", strict, assertion(func(a *etree.Element) { bearerData(a).CreateAttr("Recipient", "https://sp.example/acs") }), "",
			`invalid token: bearer SubjectConfirmationData Recipient "https://sp.example/acs" is not one of IDP mock-saml's recipients ["https://sts.example/token"]`},
		{"control: no recipients, any Recipient", plain, assertion(func(a *etree.Element) { bearerData(a).CreateAttr("Recipient", "https://sp.example/acs") }), "", ""},

		// Several AudienceRestrictions are intersected (SAML 2.0 Core §2.5.1.4).
		{"a second AudienceRestriction without this STS", plain, assertion(func(a *etree.Element) {
			a.SelectElement("Conditions").CreateElement("saml:AudienceRestriction").CreateElement("saml:Audience").SetText("billing-api")
		}), "", `invalid token: AudienceRestriction 2 of 2 (audience ["billing-api"]) names none of IDP mock-saml's audiences ["idtx-sts"]; each must (SAML 2.0 Core §2.5.1.4)`},
		{"an empty second AudienceRestriction", plain, assertion(func(a *etree.Element) {
			a.SelectElement("Conditions").CreateElement("saml:AudienceRestriction")
		}), "", `invalid token: AudienceRestriction 2 of 2 (audience []) names none of IDP mock-saml's audiences ["idtx-sts"]; each must (SAML 2.0 Core §2.5.1.4)`},
		{"control: this STS in both AudienceRestrictions", plain, assertion(func(a *etree.Element) {
			ar := a.SelectElement("Conditions").CreateElement("saml:AudienceRestriction")
			ar.CreateElement("saml:Audience").SetText("billing-api")
			ar.CreateElement("saml:Audience").SetText("idtx-sts")
		}), "", ""},
		{"each restriction names another of the STS's audiences", twoNames, assertion(func(a *etree.Element) {
			a.SelectElement("Conditions").CreateElement("saml:AudienceRestriction").CreateElement("saml:Audience").SetText("sts-alias")
			a.SelectElement("Conditions").CreateElement("saml:AudienceRestriction").CreateElement("saml:Audience").SetText("idtx-sts")
			c := a.SelectElement("Conditions")
			c.RemoveChild(c.SelectElement("AudienceRestriction")) // the mock's, naming idtx-sts
		}), "", `invalid token: no one of IDP mock-saml's audiences ["idtx-sts" "sts-alias"] is in every AudienceRestriction (SAML 2.0 Core §2.5.1.4: the assertion is for their intersection)`},

		// The Response: Status, Destination, IssueInstant.
		{"control: signed Response, Success", strict, signedResponse(` Destination="`+recipient+`"`, success2, assertion(withRecipient)), "", ""},
		{"signed Response, status Requester", plain, signedResponse("", `<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Requester"/></samlp:Status>`, good), "",
			`invalid token: the Response's StatusCode is "urn:oasis:names:tc:SAML:2.0:status:Requester", not Success: the IDP did not authenticate the subject`},
		{"unsigned Response around a signed assertion, status Responder", plain, xmlOf(t, responseWith(t, "", `<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Responder"><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:StatusCode></samlp:Status>`, good)), "",
			`invalid token: the Response's StatusCode is "urn:oasis:names:tc:SAML:2.0:status:Responder", not Success: the IDP did not authenticate the subject`},
		{"Response without Status", plain, signedResponse("", "", good), "", "malformed token: the Response has 0 Status elements; exactly one is required"},
		{"Response with two StatusCodes", plain, signedResponse("", `<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Requester"/><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>`, good), "",
			"malformed token: the Response Status has 2 StatusCode elements; exactly one is required"},
		{"recipients set, Destination not listed", strict, signedResponse(` Destination="https://sp.example/acs"`, success2, assertion(withRecipient)), "",
			`invalid token: Response Destination "https://sp.example/acs" is not one of IDP mock-saml's recipients ["https://sts.example/token"]`},
		{"control: recipients set, no Destination", strict, signedResponse("", success2, assertion(withRecipient)), "", ""},
		{"control: no recipients, any Destination", plain, signedResponse(` Destination="https://sp.example/acs"`, success2, good), "", ""},
		{"Response IssueInstant ahead", plain, strings.Replace(xmlOf(t, responseWith(t, "", success2, good)), `IssueInstant="2026-05-06T07:08:09Z"`, `IssueInstant="2026-05-06T07:09:09Z"`, 1), "",
			"invalid token: Response IssueInstant 2026-05-06T07:09:09Z is in the future (now 2026-05-06T07:08:09Z, allowed lead 30s)"},

		// The assertion's IssueInstant and max_age.
		// The lead allowed is the skew, or the lag the IDP itself declared by
		// dating NotBefore before IssueInstant (Okta: five minutes), at most 5m.
		{"IssueInstant ahead, NotBefore the same instant", plain, assertion(func(a *etree.Element) {
			a.CreateAttr("IssueInstant", at(time.Minute))
			a.FindElement("saml:Conditions").CreateAttr("NotBefore", at(time.Minute))
		}), "", "invalid token: not valid before 2026-05-06T07:09:09Z (now 2026-05-06T07:08:09Z)"},
		{"IssueInstant 2m ahead, NotBefore 20s ahead: 1m40s declared", plain, assertion(func(a *etree.Element) {
			a.CreateAttr("IssueInstant", at(2*time.Minute))
			a.FindElement("saml:Conditions").CreateAttr("NotBefore", at(20*time.Second))
		}), "", "invalid token: IssueInstant 2026-05-06T07:10:09Z is in the future (now 2026-05-06T07:08:09Z, allowed lead 1m40s)"},
		{"IssueInstant ahead, no NotBefore", plain, assertion(func(a *etree.Element) {
			a.CreateAttr("IssueInstant", at(time.Minute))
			a.FindElement("saml:Conditions").RemoveAttr("NotBefore")
		}), "", "invalid token: IssueInstant 2026-05-06T07:09:09Z is in the future (now 2026-05-06T07:08:09Z, allowed lead 30s)"},
		{"control: Okta-style, IssueInstant 4m15s ahead, NotBefore 5m before it", plain, assertion(func(a *etree.Element) {
			a.CreateAttr("IssueInstant", at(4*time.Minute+15*time.Second))
			a.FindElement("saml:Conditions").CreateAttr("NotBefore", at(-45*time.Second))
		}), "", ""},
		{"IssueInstant 6m ahead, NotBefore 10m before it: the lead is capped at 5m", plain, assertion(func(a *etree.Element) {
			a.CreateAttr("IssueInstant", at(6*time.Minute))
			a.FindElement("saml:Conditions").CreateAttr("NotBefore", at(-4*time.Minute))
		}), "", "invalid token: IssueInstant 2026-05-06T07:14:09Z is in the future (now 2026-05-06T07:08:09Z, allowed lead 5m0s)"},
		{"control: IssueInstant 20s ahead, within the skew", plain, assertion(func(a *etree.Element) { a.CreateAttr("IssueInstant", at(20*time.Second)) }), "", ""},
		{"no IssueInstant", plain, assertion(func(a *etree.Element) { a.RemoveAttr("IssueInstant") }), "", "malformed token: the assertion has no IssueInstant"},
		{"older than max_age", aged, xmlOf(t, signedAssertion(t, mockidp.TokenOptions{Sub: "alice", Now: samlNow.Add(-10 * time.Minute)}, nil)), "",
			"invalid token: issued at 2026-05-06T06:58:09Z, older than IDP mock-saml's max_age 5m0s (now 2026-05-06T07:08:09Z)"},
		{"control: younger than max_age", aged, xmlOf(t, signedAssertion(t, mockidp.TokenOptions{Sub: "alice", Now: samlNow.Add(-4 * time.Minute)}, nil)), "", ""},

		// The document: one root, UTF-8.
		{"an element after the root", plain, good + `<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"/>`, "",
			"malformed token: element saml:Assertion after the root element; a document has one root"},
		{"text after the root", plain, good + "\nadmin", "", "malformed token: text after the root element; only whitespace, comments and processing instructions may be there"},
		{"CDATA after the root", plain, good + "<![CDATA[admin]]>", "", "malformed token: text after the root element; only whitespace, comments and processing instructions may be there"},
		{"a second XML declaration after the root", plain, good + `<?xml version="1.0"?>`, "", "malformed token: an XML declaration that does not open the document (XML 1.0 §2.8)"},
		{"control: whitespace, a comment and a PI after the root", plain, good + "\n<!-- end -->\n<?idtx note?>\n", "", ""},
		{"control: a UTF-8 declaration", plain, `<?xml version="1.0" encoding="UTF-8"?>` + "\n" + good, "", ""},
		{"control: a US-ASCII declaration over ASCII", plain, `<?xml version='1.0' encoding='us-ascii'?>` + good, "", ""},
		{"a US-ASCII declaration over UTF-8", plain, nonASCII, "", fmt.Sprintf("malformed token: the XML declaration names US-ASCII, but byte %d is not ASCII", strings.IndexByte(nonASCII, 0xC3))},
		{"an ISO-8859-1 declaration", plain, `<?xml version="1.0" encoding="ISO-8859-1"?>` + good, "",
			`malformed token: the XML declaration names encoding "ISO-8859-1"; only UTF-8 (or US-ASCII) is accepted`},
		{"a UTF-16 declaration over UTF-8 bytes", plain, `<?xml version="1.0" encoding="UTF-16"?>` + good, "",
			`malformed token: the XML declaration names encoding "UTF-16"; only UTF-8 (or US-ASCII) is accepted`},
		{"two encodings in the declaration", plain, `<?xml version="1.0" encoding ="UTF-8" encoding="ISO-8859-1"?>` + good, "",
			"malformed token: the XML declaration is not version, encoding and standalone in that order (XML 1.0 §2.8)"},
		{"encoding before version", plain, `<?xml encoding="UTF-8" version="1.0"?>` + good, "",
			"malformed token: the XML declaration is not version, encoding and standalone in that order (XML 1.0 §2.8)"},
		{"pseudo-attributes run together", plain, `<?xml version="1.0"encoding="ISO-8859-1"?>` + good, "",
			"malformed token: the XML declaration is not version, encoding and standalone in that order (XML 1.0 §2.8)"},
		{"control: a full declaration", plain, `<?xml version = '1.0' encoding = "utf-8" standalone="no" ?>` + good, "", ""},
		{"control: a UTF-8 byte order mark", plain, "\uFEFF" + `<?xml version="1.0" encoding="UTF-8"?>` + good, "", ""},
		{"a UTF-8 byte order mark under a US-ASCII declaration", plain, "\uFEFF" + `<?xml version="1.0" encoding="US-ASCII"?>` + good, "",
			"malformed token: the XML declaration names US-ASCII, but the document starts with a UTF-8 byte order mark"},
		{"a UTF-16 document", plain, utf16(`<?xml version="1.0" encoding="UTF-16"?>` + good), "",
			"malformed token: the document starts with a UTF-16 byte order mark; only UTF-8 is accepted"},

		// SAML 1.1: every Subject bearer, Status a QName, Recipient.
		{"control: SAML 1.1 bearer", plain, saml1(nil), oauth.TokenTypeSAML1, ""},
		{"SAML 1.1 sender-vouches in one statement", plain, saml1(func(a *etree.Element) {
			a.FindElement("./AttributeStatement/Subject/SubjectConfirmation/ConfirmationMethod").SetText("urn:oasis:names:tc:SAML:1.0:cm:sender-vouches")
		}), oauth.TokenTypeSAML1, `invalid token: the Subject of the AttributeStatement has no bearer ConfirmationMethod (urn:oasis:names:tc:SAML:1.0:cm:bearer; found "urn:oasis:names:tc:SAML:1.0:cm:sender-vouches"): holder-of-key and sender-vouches are refused`},
		{"control: SAML 1.1 holder-of-key and bearer listed", plain, saml1(func(a *etree.Element) {
			for _, sc := range a.FindElements(".//SubjectConfirmation") {
				sc.InsertChildAt(0, sc.SelectElement("ConfirmationMethod").Copy())
				sc.SelectElement("ConfirmationMethod").SetText("urn:oasis:names:tc:SAML:1.0:cm:holder-of-key")
			}
		}), oauth.TokenTypeSAML1, ""},
		{"SAML 1.1 without SubjectConfirmation", plain, saml1(func(a *etree.Element) {
			s := a.FindElement("./AuthenticationStatement/Subject")
			s.RemoveChild(s.SelectElement("SubjectConfirmation"))
		}), oauth.TokenTypeSAML1, `invalid token: the Subject of the AuthenticationStatement has no bearer ConfirmationMethod (urn:oasis:names:tc:SAML:1.0:cm:bearer; found ""): holder-of-key and sender-vouches are refused`},
		{"control: SAML 1.1 Response, samlp:Success", strict, response1(` Recipient="`+recipient+`"`, "samlp:Success", saml1(nil)), oauth.TokenTypeSAML1, ""},
		{"SAML 1.1 Response, samlp:Requester", plain, response1("", "samlp:Requester", saml1(nil)), oauth.TokenTypeSAML1,
			`invalid token: the Response's StatusCode is "samlp:Requester", not Success: the IDP did not authenticate the subject`},
		{"SAML 1.1 Response, Success in another namespace", plain, response1(` xmlns:x="urn:x"`, "x:Success", saml1(nil)), oauth.TokenTypeSAML1,
			`invalid token: the Response's StatusCode is "x:Success", not Success: the IDP did not authenticate the subject`},
		{"SAML 1.1 Response, Recipient not listed", strict, response1(` Recipient="https://sp.example/acs"`, "samlp:Success", saml1(nil)), oauth.TokenTypeSAML1,
			`invalid token: Response Destination "https://sp.example/acs" is not one of IDP mock-saml's recipients ["https://sts.example/token"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Name, cfg.Issuer, cfg.Certificates = "mock-saml", mockidp.SAMLIssuer, []*x509.Certificate{mock.cert}
			if cfg.Audiences == nil {
				cfg.Audiences = []string{"idtx-sts"}
			}
			cfg.ClockSkew, cfg.Clock = 30*time.Second, func() time.Time { return samlNow }
			v, err := idp.NewSAML(cfg)
			if err != nil {
				t.Fatal(err)
			}
			tokenType := tt.tokenType
			if tokenType == "" {
				tokenType = oauth.TokenTypeSAML2
			}
			id, err := v.Validate(t.Context(), b64(tt.token), tokenType)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("valid input refused: %v", err)
			case tt.want == "":
				if id.Subject != "alice" {
					t.Fatalf("subject %q", id.Subject)
				}
			case err == nil:
				t.Fatalf("accepted (identity %+v), want %q", id, tt.want)
			case err.Error() != tt.want:
				t.Fatalf("got  %v\nwant %s", err, tt.want)
			}
		})
	}
}

// The subject token expires with the earliest of Conditions NotOnOrAfter,
// the bearer confirmation that passed, and IssueInstant plus max_age.
func TestSAMLExpiry(t *testing.T) {
	at := func(d time.Duration) string { return samlNow.Add(d).UTC().Format(time.RFC3339) }
	for _, tt := range []struct {
		name   string
		maxAge time.Duration
		mutate func(a *etree.Element)
		want   time.Time
	}{
		{"Conditions", 0, func(a *etree.Element) { bearerData(a).CreateAttr("NotOnOrAfter", at(2*time.Hour)) }, samlNow.Add(time.Hour)},
		{"bearer", 0, func(a *etree.Element) { bearerData(a).CreateAttr("NotOnOrAfter", at(10*time.Minute)) }, samlNow.Add(10 * time.Minute)},
		{"the bearer that passed", 0, func(a *etree.Element) {
			bearerData(a).CreateAttr("NotOnOrAfter", at(-time.Minute))
			addConfirmation(a, "urn:oasis:names:tc:SAML:2.0:cm:bearer").CreateElement("saml:SubjectConfirmationData").CreateAttr("NotOnOrAfter", at(20*time.Minute))
		}, samlNow.Add(20 * time.Minute)},
		{"max_age", 5 * time.Minute, nil, samlNow.Add(5 * time.Minute)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v, err := idp.NewSAML(idp.SAMLConfig{Name: "mock-saml", Issuer: mockidp.SAMLIssuer, Certificates: []*x509.Certificate{mockSAMLSigner(t).cert},
				Audiences: []string{"idtx-sts"}, MaxAge: tt.maxAge, ClockSkew: 30 * time.Second, Clock: func() time.Time { return samlNow }})
			if err != nil {
				t.Fatal(err)
			}
			id, err := v.Validate(t.Context(), b64(xmlOf(t, signedAssertion(t, mockidp.TokenOptions{Sub: "alice"}, tt.mutate))), oauth.TokenTypeSAML2)
			if err != nil {
				t.Fatal(err)
			}
			if !id.Expiry.Equal(tt.want) || id.Claims["exp"] != tt.want.Unix() {
				t.Fatalf("expiry %s (exp %v), want %s", id.Expiry, id.Claims["exp"], tt.want)
			}
		})
	}
}

// recipients and max_age reach the validator from the config.
func TestSAMLRecipientsAndMaxAgeFromConfig(t *testing.T) {
	cert := mockidp.CertificatePEM()
	reg, err := idp.FromConfig(t.Context(), []config.IDP{{
		Name: "corp", Type: config.IDPTypeSAML, Issuer: mockidp.SAMLIssuer,
		Spec:      &idp.SAMLSpec{CertificateFile: "c.pem", Recipients: []string{recipient}, MaxAge: 5 * time.Minute},
		Audiences: []string{"idtx-sts"}, ClockSkew: 30 * time.Second,
	}}, idp.Options{Clock: func() time.Time { return samlNow }, ReadFile: func(string) ([]byte, error) { return cert, nil }})
	if err != nil {
		t.Fatal(err)
	}
	withRecipient := func(a *etree.Element) { bearerData(a).CreateAttr("Recipient", recipient) }
	for _, tt := range []struct {
		name, token, want string
	}{
		{"control", xmlOf(t, signedAssertion(t, mockidp.TokenOptions{Sub: "alice"}, withRecipient)), ""},
		{"no Recipient", xmlOf(t, signedAssertion(t, mockidp.TokenOptions{Sub: "alice"}, nil)),
			`invalid token: the bearer SubjectConfirmationData has no Recipient; IDP corp requires one of its recipients ["https://sts.example/token"]`},
		{"too old", xmlOf(t, signedAssertion(t, mockidp.TokenOptions{Sub: "alice", Now: samlNow.Add(-6 * time.Minute)}, withRecipient)),
			"invalid token: issued at 2026-05-06T07:02:09Z, older than IDP corp's max_age 5m0s (now 2026-05-06T07:08:09Z)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := reg.Validate(t.Context(), b64(tt.token), oauth.TokenTypeSAML2)
			if got := fmt.Sprint(err); (tt.want == "" && err != nil) || (tt.want != "" && got != tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}
