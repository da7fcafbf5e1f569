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

// Every SAML row of SECURITY.md, built from the mock IDP's signed output.
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
		{"comment injection that extends NameID", strings.Replace(good, "alice@x.com<", "alice@x.com<!---->.evil.com<", 1), "", "signature of the Assertion does not verify"},
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
		{"SAML 2.0 presented as saml1", good, idp.TokenTypeSAML1, "the document is SAML 2.0, presented as saml1"},
		{"deflated (not inflated)", "fZBNT8MwDIbv+xVR7m2ywpBgrS", "", "not a SAML assertion"},
		{"too large", strings.Repeat("A", idp.MaxSAMLBytes+1), "", "longer than 16384 bytes"},
	}
	v := samlValidator(t, false)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tokenType := tt.tokenType
			if tokenType == "" {
				tokenType = idp.TokenTypeSAML2
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
		_, err := v.Validate(t.Context(), b64(xmlOf(t, response("https://evil.test", good))), idp.TokenTypeSAML2)
		if err == nil || !strings.Contains(err.Error(), `Response Issuer "https://evil.test" is not`) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("SHA-1 with allow_sha1", func(t *testing.T) {
		if _, err := samlValidator(t, true).Validate(t.Context(), b64(sha1Signed), idp.TokenTypeSAML2); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("comments inside NameID: the full text", func(t *testing.T) {
		for _, in := range []string{"alice@x.com<!-- c -->", "alice@<!-- c -->x.com"} {
			tok := strings.Replace(good, "alice@x.com", in, 1)
			id, err := v.Validate(t.Context(), b64(tok), idp.TokenTypeSAML2)
			if err != nil || id.Subject != "alice@x.com" {
				t.Fatalf("%s: %v %+v", in, err, id)
			}
		}
	})
	t.Run("raw XML and base64url are accepted too", func(t *testing.T) {
		for _, tok := range []string{good, base64.RawURLEncoding.EncodeToString([]byte(good))} {
			if _, err := v.Validate(t.Context(), tok, idp.TokenTypeSAML2); err != nil {
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
		id, err := v.Validate(context.Background(), token, idp.TokenTypeSAML2)
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
		if _, err := v.Validate(t.Context(), tok(samlNow), idp.TokenTypeSAML2); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("clock skew: 20s early is accepted with 30s, refused with 10s", func(t *testing.T) {
		early := tok(samlNow.Add(20 * time.Second))
		for skew, want := range map[time.Duration]string{30 * time.Second: "", 10 * time.Second: "not valid before"} {
			v, _ := idp.NewSAML(idp.SAMLConfig{Name: "s", Issuer: mockidp.SAMLIssuer, Certificates: []*x509.Certificate{mock.cert},
				Audiences: []string{"idtx-sts"}, ClockSkew: skew, Clock: func() time.Time { return samlNow }})
			_, err := v.Validate(t.Context(), early, idp.TokenTypeSAML2)
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
			Name: "corp", Type: config.IDPTypeSAML, Issuer: mockidp.SAMLIssuer, MetadataFile: "md.xml",
			Audiences: []string{"idtx-sts"}, ClockSkew: 30 * time.Second,
		}}, idp.Options{Clock: func() time.Time { return samlNow }, ReadFile: func(string) ([]byte, error) { return md, nil }})
	}
	reg, err := build(metadata(mockidp.SAMLIssuer))
	if err != nil {
		t.Fatal(err)
	}
	a := unsignedAssertion(t, mockidp.TokenOptions{Sub: "alice"})
	mockSAMLSigner(t).sign(t, a, false)
	if id, err := reg.Validate(t.Context(), b64(xmlOf(t, a)), idp.TokenTypeSAML2); err != nil || id.IDP != "corp" {
		t.Fatalf("%v %+v", err, id)
	}
	if _, err := build(metadata("https://other.example/saml")); err == nil || !strings.Contains(err.Error(), `metadata_file names entityID "https://other.example/saml", not the issuer`) {
		t.Fatalf("entityID mismatch: %v", err)
	}
}
