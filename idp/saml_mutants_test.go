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

// Tests that kill mutants of the SAML checks which the rest of the suite
// let live: each sends the input the check exists for and asserts the
// exact refusal.

// samlValidatorAt is samlValidator with its clock at now.
func samlValidatorAt(t *testing.T, now time.Time, allowSHA1 bool) *idp.SAML {
	t.Helper()
	v, err := idp.NewSAML(idp.SAMLConfig{
		Name: "mock-saml", Issuer: mockidp.SAMLIssuer, Certificates: []*x509.Certificate{mockSAMLSigner(t).cert},
		Audiences: []string{"idtx-sts"}, AllowSHA1: allowSHA1, ClockSkew: 30 * time.Second,
		Clock: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// NotOnOrAfter is exclusive (SAML 2.0 Core §2.5.1.2): with the skew, an
// assertion is refused from NotOnOrAfter + skew on, and taken a second
// before. The Conditions' and the bearer confirmation's are checked apart.
func TestSAMLNotOnOrAfterBoundary(t *testing.T) {
	const skew = 30 * time.Second
	at := func(d time.Duration) string { return samlNow.Add(d).UTC().Format(time.RFC3339) }
	conditions := xmlOf(t, signedAssertion(t, mockidp.TokenOptions{Sub: "alice"}, nil)) // both NotOnOrAfter samlNow+1h
	bearer := xmlOf(t, signedAssertion(t, mockidp.TokenOptions{Sub: "alice"}, func(a *etree.Element) {
		bearerData(a).CreateAttr("NotOnOrAfter", at(10*time.Minute))
	}))
	for _, tt := range []struct {
		name, token string
		now         time.Time
		want        string
	}{
		{"Conditions: a second before NotOnOrAfter + skew", conditions, samlNow.Add(time.Hour + skew - time.Second), ""},
		{"Conditions: at NotOnOrAfter + skew", conditions, samlNow.Add(time.Hour + skew),
			"invalid token: expired at 2026-05-06T08:08:09Z (now 2026-05-06T08:08:39Z)"},
		{"bearer: a second before NotOnOrAfter + skew", bearer, samlNow.Add(10*time.Minute + skew - time.Second), ""},
		{"bearer: at NotOnOrAfter + skew", bearer, samlNow.Add(10*time.Minute + skew),
			"invalid token: bearer confirmation expired at 2026-05-06T07:18:09Z (now 2026-05-06T07:18:39Z)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			id, err := samlValidatorAt(t, tt.now, false).Validate(t.Context(), b64(tt.token), oauth.TokenTypeSAML2)
			if tt.want == "" {
				if err != nil || id.Subject != "alice" {
					t.Fatalf("valid assertion refused: %v", err)
				}
				return
			}
			if err == nil || err.Error() != tt.want {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}

// A DOCTYPE (or an entity declaration) anywhere in the document is
// refused, not only one before the root element: encoding/xml hands a
// nested one to etree as a directive, which nothing else looks at.
func TestSAMLNestedDOCTYPE(t *testing.T) {
	mock := mockSAMLSigner(t)
	good := xmlOf(t, signedAssertion(t, mockidp.TokenOptions{Sub: "alice"}, nil))
	signedResponse := func(extra string) string {
		r := response(mockidp.SAMLIssuer, good)
		mock.sign(t, r, false)
		s := xmlOf(t, r)
		return strings.Replace(s, "</samlp:Status>", "</samlp:Status>"+extra, 1)
	}
	v := samlValidator(t, false)
	if _, err := v.Validate(t.Context(), b64(signedResponse("")), oauth.TokenTypeSAML2); err != nil {
		t.Fatalf("control: %v", err)
	}
	for _, extra := range []string{`<!DOCTYPE x>`, `<!DOCTYPE saml:Assertion [<!ENTITY who "admin">]>`, `<!ENTITY who "admin">`} {
		t.Run(extra, func(t *testing.T) {
			_, err := v.Validate(t.Context(), b64(signedResponse(extra)), oauth.TokenTypeSAML2)
			const want = "malformed token: a DOCTYPE is refused"
			if err == nil || err.Error() != want {
				t.Fatalf("got %v, want %q", err, want)
			}
		})
	}
}

// The signature algorithm is held to the allow-list on its own: an
// rsa-sha1 SignatureMethod is refused without allow_sha1 even when the
// digest is SHA-256 (the SHA-1 case elsewhere fails on the digest first).
func TestSAMLSHA1SignatureWithSHA256Digest(t *testing.T) {
	a := signedAssertion(t, mockidp.TokenOptions{Sub: "alice"}, nil)
	a.FindElement("./Signature/SignedInfo/SignatureMethod").CreateAttr("Algorithm", "http://www.w3.org/2000/09/xmldsig#rsa-sha1")
	if got := a.FindElement("./Signature/SignedInfo/Reference/DigestMethod").SelectAttrValue("Algorithm", ""); got != "http://www.w3.org/2001/04/xmlenc#sha256" {
		t.Fatalf("digest %s, want SHA-256", got)
	}
	token := b64(xmlOf(t, a))
	_, err := samlValidator(t, false).Validate(t.Context(), token, oauth.TokenTypeSAML2)
	const want = "invalid token: signature algorithm http://www.w3.org/2000/09/xmldsig#rsa-sha1 is SHA-1, refused unless IDP mock-saml sets allow_sha1"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
	// Control: with allow_sha1 the algorithms pass and the signature is
	// what fails (it was made with RSA-SHA256), so the refusal above is
	// the allow-list's.
	_, err = samlValidator(t, true).Validate(t.Context(), token, oauth.TokenTypeSAML2)
	if err == nil || !strings.HasPrefix(err.Error(), "invalid token: signature of the Assertion does not verify with IDP mock-saml's certificate") {
		t.Fatalf("allow_sha1: got %v", err)
	}
}

// When the Response carries the signature, the assertion is read from the
// copy goxmldsig validated, never from the document: swapping the
// document's assertion for another after parsing changes nothing.
func TestSAMLSignedResponseReadsTheValidatedCopy(t *testing.T) {
	mock := mockSAMLSigner(t)
	r := response(mockidp.SAMLIssuer, xmlOf(t, unsignedAssertion(t, mockidp.TokenOptions{Sub: "alice"})))
	mock.sign(t, r, false)
	token := b64(xmlOf(t, r))
	v := samlValidator(t, false)
	swapped := false
	id, err := idp.ValidateSAMLSwapped(v, token, func(a *etree.Element) *etree.Element {
		evil := a.Copy()
		evil.CreateAttr("xmlns:saml", idp.NamespaceSAML2Assertion)
		evil.FindElement("./Subject/NameID").SetText("admin")
		swapped = true
		return evil
	})
	if !swapped || err != nil || id.Subject != "alice" {
		t.Fatalf("got %v %+v, want alice from the signed Response", err, id)
	}
}

// max_age is held with the same skew as NotOnOrAfter: an assertion issued
// max_age + skew ago is refused, a second younger is taken.
func TestSAMLMaxAgeBoundary(t *testing.T) {
	const skew, maxAge = 30 * time.Second, 5 * time.Minute
	token := b64(xmlOf(t, signedAssertion(t, mockidp.TokenOptions{Sub: "alice"}, nil))) // IssueInstant samlNow
	validator := func(now time.Time) *idp.SAML {
		v, err := idp.NewSAML(idp.SAMLConfig{Name: "mock-saml", Issuer: mockidp.SAMLIssuer, Certificates: []*x509.Certificate{mockSAMLSigner(t).cert},
			Audiences: []string{"idtx-sts"}, MaxAge: maxAge, ClockSkew: skew, Clock: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if id, err := validator(samlNow.Add(maxAge+skew-time.Second)).Validate(t.Context(), token, oauth.TokenTypeSAML2); err != nil || id.Subject != "alice" {
		t.Fatalf("a second under max_age + skew: %v", err)
	}
	_, err := validator(samlNow.Add(maxAge+skew)).Validate(t.Context(), token, oauth.TokenTypeSAML2)
	const want = "invalid token: issued at 2026-05-06T07:08:09Z, older than IDP mock-saml's max_age 5m0s (now 2026-05-06T07:13:39Z)"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
}

// Of several bearer confirmations that pass, the earliest NotOnOrAfter
// bounds the token, whichever comes first in the document.
func TestSAMLEarliestPassingBearer(t *testing.T) {
	at := func(d time.Duration) string { return samlNow.Add(d).UTC().Format(time.RFC3339) }
	for _, order := range [][2]time.Duration{{20 * time.Minute, 10 * time.Minute}, {10 * time.Minute, 20 * time.Minute}} {
		a := signedAssertion(t, mockidp.TokenOptions{Sub: "alice"}, func(a *etree.Element) {
			bearerData(a).CreateAttr("NotOnOrAfter", at(order[0]))
			addConfirmation(a, "urn:oasis:names:tc:SAML:2.0:cm:bearer").CreateElement("saml:SubjectConfirmationData").CreateAttr("NotOnOrAfter", at(order[1]))
		})
		id, err := samlValidator(t, false).Validate(t.Context(), b64(xmlOf(t, a)), oauth.TokenTypeSAML2)
		if err != nil {
			t.Fatal(err)
		}
		if want := samlNow.Add(10 * time.Minute); !id.Expiry.Equal(want) {
			t.Fatalf("bearers %v: expiry %s, want %s", order, id.Expiry, want)
		}
	}
}
