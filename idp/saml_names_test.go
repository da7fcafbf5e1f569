package idp_test

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/idtx/idtx/idp"
	"github.com/idtx/idtx/mockidp"
	"github.com/idtx/idtx/oauth"
)

// samlGroupsValidator is the mock SAML IDP's validator with the groups
// attribute mapped to a groups claim.
func samlGroupsValidator(t testing.TB) *idp.SAML {
	t.Helper()
	v, err := idp.NewSAML(idp.SAMLConfig{
		Name: "mock-saml", Issuer: mockidp.SAMLIssuer, Certificates: []*x509.Certificate{mockSAMLSigner(t).cert},
		Audiences: []string{"idtx-sts"}, ClockSkew: 30 * time.Second,
		Clock:  func() time.Time { return samlNow },
		Claims: map[string]string{"groups": "groups"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// setText replaces el's content with one text node.
func setText(el *etree.Element, s string) {
	for _, c := range append([]etree.Token(nil), el.Child...) {
		el.RemoveChild(c)
	}
	el.SetText(s)
}

// xmlCharRefs writes tab and CR in text as character references, as an
// IDP would to keep them through XML's line-end normalisation.
func xmlCharRefs(s string) string {
	return strings.NewReplacer("\t", "&#x9;", "\r", "&#xD;").Replace(s)
}

// SAML values are exactly the signed character data: a NameID, Issuer or
// mapped attribute value that begins or ends with whitespace (Unicode's
// included) is refused rather than trimmed into another name, and an
// element that must hold text but holds an element, a comment or a
// processing instruction is refused.
func TestSAMLNamesExactlyAsSigned(t *testing.T) {
	groups := mockidp.TokenOptions{Sub: "alice", Claims: map[string]any{"groups": []any{"admins", "staff"}}}
	nameID := func(a *etree.Element) *etree.Element { return a.FindElement("./Subject/NameID") }
	firstGroup := func(a *etree.Element) *etree.Element {
		return a.FindElement("./AttributeStatement/Attribute/AttributeValue")
	}
	for _, tt := range []struct {
		name   string
		opts   mockidp.TokenOptions
		mutate func(a *etree.Element)
		raw    func(xml string) string // applied to the signed XML
		want   string                  // the exact error; "" accepts
	}{
		{"ideographic space after the NameID", groups, func(a *etree.Element) { setText(nameID(a), "alice\u3000") }, nil,
			`malformed token: NameID "alice\u3000" begins or ends with whitespace; it is taken exactly as signed, never trimmed`},
		{"no-break space after the NameID", groups, func(a *etree.Element) { setText(nameID(a), "alice\u00a0") }, nil,
			`malformed token: NameID "alice\u00a0" begins or ends with whitespace; it is taken exactly as signed, never trimmed`},
		{"tab and CR around the NameID, as character references", groups, func(a *etree.Element) { setText(nameID(a), "\t admin \r") }, xmlCharRefs,
			`malformed token: NameID "\t admin \r" begins or ends with whitespace; it is taken exactly as signed, never trimmed`},
		{"plain spaces around the NameID", groups, func(a *etree.Element) { setText(nameID(a), " alice ") }, nil,
			`malformed token: NameID " alice " begins or ends with whitespace; it is taken exactly as signed, never trimmed`},
		{"an element inside the NameID", groups, func(a *etree.Element) {
			setText(nameID(a), "admin")
			nameID(a).CreateElement("X").SetText("@evil.example")
		}, nil, `malformed token: NameID holds an element (X); it must hold only text`},
		{"a processing instruction inside the NameID", groups, func(a *etree.Element) {
			setText(nameID(a), "admin")
			nameID(a).CreateProcInst("x", "y")
			nameID(a).CreateText("@evil.example")
		}, nil, `malformed token: NameID holds a processing instruction; it must hold only text`},
		{"a comment inside the NameID", groups, nil, func(xml string) string {
			return strings.Replace(xml, ">alice<", ">admin<!---->@evil.example<", 1)
		}, `malformed token: NameID holds a comment; it must hold only text`},
		{"no-break space after the Issuer", groups, func(a *etree.Element) { setText(a.SelectElement("Issuer"), mockidp.SAMLIssuer+"\u00a0") }, nil,
			`malformed token: Issuer "https://mock-idp.idtx.test/saml\u00a0" begins or ends with whitespace; it is taken exactly as signed, never trimmed`},
		{"no-break space after a mapped group", groups, func(a *etree.Element) { setText(firstGroup(a), "admins\u00a0") }, nil,
			`malformed token: attribute groups value "admins\u00a0" begins or ends with whitespace; it is taken exactly as signed, never trimmed`},
		{"an element inside a mapped group", groups, func(a *etree.Element) {
			setText(firstGroup(a), "admins")
			firstGroup(a).CreateElement("b").SetText("-not")
		}, nil, `attribute groups (claim groups): malformed token: AttributeValue holds an element (b); it must hold only text`},
		{"a comment inside a group", groups, nil, func(xml string) string {
			return strings.Replace(xml, ">admins<", ">adm<!---->ins<", 1)
		}, `malformed token: AttributeValue holds a comment; it must hold only text`},
		{"no-break space in an Audience is not XML whitespace", groups, func(a *etree.Element) {
			setText(a.FindElement("./Conditions/AudienceRestriction/Audience"), "idtx-sts\u00a0")
		}, nil, `invalid token: audience ["idtx-sts\u00a0"] names none of IDP mock-saml's audiences ["idtx-sts"]`},
		{"an element inside an Audience", groups, func(a *etree.Element) {
			a.FindElement("./Conditions/AudienceRestriction/Audience").CreateElement("x")
		}, nil, `malformed token: Audience holds an element (x); it must hold only text`},

		{"control: inner no-break space kept as signed", mockidp.TokenOptions{Sub: "al\u00a0ice"}, nil, nil, ""},
		{"control: an Audience's XML whitespace collapses (xs:anyURI)", groups, func(a *etree.Element) {
			setText(a.FindElement("./Conditions/AudienceRestriction/Audience"), "\n  idtx-sts\t")
		}, nil, ""},
		{"control: an unmapped attribute may hold elements (xs:anyType)", groups, func(a *etree.Element) {
			at := a.FindElement("./AttributeStatement").CreateElement("saml:Attribute")
			at.CreateAttr("Name", "urn:oid:1.3.6.1.4.1.5923.1.1.1.10")
			at.CreateElement("saml:AttributeValue").CreateElement("saml:NameID").SetText(" opaque ")
		}, nil, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			xml := xmlOf(t, signedAssertion(t, tt.opts, tt.mutate))
			if tt.raw != nil {
				xml = tt.raw(xml)
			}
			id, err := samlGroupsValidator(t).Validate(t.Context(), b64(xml), oauth.TokenTypeSAML2)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want == "":
				if id.Subject != tt.opts.Sub || id.Claims["sub"] != tt.opts.Sub {
					t.Fatalf("subject %q (sub %q), want exactly %q", id.Subject, id.Claims["sub"], tt.opts.Sub)
				}
			case err == nil:
				t.Fatalf("accepted as %q (claims %v), want %s", id.Subject, id.Claims, tt.want)
			case err.Error() != tt.want:
				t.Fatalf("got  %s\nwant %s", err, tt.want)
			}
		})
	}
}

// SAML 1.1 names its subject in each statement: the same rules hold.
func TestSAML1NamesExactlyAsSigned(t *testing.T) {
	for _, tt := range []struct{ name, sub, want string }{
		{"no-break space after the NameIdentifier", "alice\u00a0",
			`malformed token: NameIdentifier "alice\u00a0" begins or ends with whitespace; it is taken exactly as signed, never trimmed`},
		{"control", "alice", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := signedAssertion1(t, mockidp.TokenOptions{Sub: "alice"}, func(a *etree.Element) {
				for _, n := range a.FindElements(".//NameIdentifier") {
					setText(n, tt.sub)
				}
			})
			id, err := samlValidator(t, false).Validate(t.Context(), b64(xmlOf(t, a)), oauth.TokenTypeSAML1)
			switch {
			case tt.want == "" && (err != nil || id.Subject != tt.sub):
				t.Fatalf("got %v %+v", err, id)
			case tt.want != "" && (err == nil || err.Error() != tt.want):
				t.Fatalf("got  %v\nwant %s", err, tt.want)
			}
		})
	}
}

// A Response's Issuer is a name too: exact, never trimmed.
func TestSAMLResponseIssuerExactlyAsSigned(t *testing.T) {
	inner := xmlOf(t, signedAssertion(t, mockidp.TokenOptions{Sub: "alice"}, nil))
	resp := xmlOf(t, response(mockidp.SAMLIssuer+"\u3000", inner))
	_, err := samlValidator(t, false).Validate(t.Context(), b64(resp), oauth.TokenTypeSAML2)
	want := `malformed token: Issuer "https://mock-idp.idtx.test/saml\u3000" begins or ends with whitespace; it is taken exactly as signed, never trimmed`
	if err == nil || err.Error() != want {
		t.Fatalf("got  %v\nwant %s", err, want)
	}
}
