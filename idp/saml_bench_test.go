package idp_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"testing"

	"github.com/beevik/etree"
	xrv "github.com/mattermost/xml-roundtrip-validator"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/idtx/idtx/idp"
	"github.com/idtx/idtx/mockidp"
)

// BenchmarkSAMLValidate is the whole SAML pipeline on a mock assertion;
// the Library benchmarks below are its parts that idtx does not write,
// measured in the same run:
//
//	go test -run '^$' -bench SAML -cpu 1 ./idp
func BenchmarkSAMLValidate(b *testing.B) {
	tok, v := benchSAML(b)
	for b.Loop() {
		if _, err := v.Validate(context.Background(), tok, idp.TokenTypeSAML2); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSAMLLibraryRoundTrip is xml-roundtrip-validator alone.
func BenchmarkSAMLLibraryRoundTrip(b *testing.B) {
	tok, _ := benchSAML(b)
	_, xml := idp.Sniff(tok)
	for b.Loop() {
		if err := xrv.Validate(bytes.NewReader(xml)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSAMLLibraryParseAndVerify is etree parsing plus goxmldsig's
// signature validation alone.
func BenchmarkSAMLLibraryParseAndVerify(b *testing.B) {
	tok, _ := benchSAML(b)
	_, xml := idp.Sniff(tok)
	store := &dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{mockSAMLSigner(b).cert}}
	for b.Loop() {
		doc := etree.NewDocument()
		if err := doc.ReadFromBytes(xml); err != nil {
			b.Fatal(err)
		}
		ctx := dsig.NewDefaultValidationContext(store)
		ctx.Clock = dsig.NewFakeClockAt(samlNow)
		if _, err := ctx.Validate(doc.Root()); err != nil {
			b.Fatal(err)
		}
	}
}

func benchSAML(b *testing.B) (string, *idp.SAML) {
	tok, err := mockidp.SAML(mockidp.TokenOptions{Sub: "alice", Now: samlNow}, 2)
	if err != nil {
		b.Fatal(err)
	}
	return tok, samlValidator(b, false)
}
