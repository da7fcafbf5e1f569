package idp_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"testing"
	"time"

	"github.com/beevik/etree"
	xrv "github.com/mattermost/xml-roundtrip-validator"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/idtx/idtx/idp"
	"github.com/idtx/idtx/mockidp"
	"github.com/idtx/idtx/oauth"
)

// BenchmarkSAMLValidate is the whole SAML pipeline on a mock assertion;
// the Library benchmarks below are its parts that idtx does not write,
// measured in the same run:
//
//	go test -run '^$' -bench SAML -cpu 1 ./idp
//
// Each op validates a different assertion, as an STS sees them: the pool
// is larger than the round-trip memo holds of per-assertion tokens (IDs,
// instants, digests), so only what all of one IDP's assertions share is
// remembered from one op to the next.
func BenchmarkSAMLValidate(b *testing.B) {
	pool := samlPool(b, samlPoolSize)
	v := samlValidator(b, false)
	i := 0
	for b.Loop() {
		if _, err := v.Validate(context.Background(), pool[i%len(pool)], oauth.TokenTypeSAML2); err != nil {
			b.Fatal(err)
		}
		i++
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
	return samlPool(b, 1)[0], samlValidator(b, false)
}

// samlPoolSize distinct mock assertions carry ~7,000 tokens of their own
// (7 of each one's 59), more than the round-trip memo keeps: it starts
// again long before an assertion comes round a second time.
const samlPoolSize = 1024

// samlPool is n distinct signed mock assertions for alice, each with its
// own ID, instants, digest and signature.
func samlPool(b *testing.B, n int) []string {
	pool := make([]string, n)
	for i := range pool {
		tok, err := mockidp.SAML(mockidp.TokenOptions{Sub: "alice", Now: samlNow.Add(-time.Duration(i) * time.Second)}, 2)
		if err != nil {
			b.Fatal(err)
		}
		pool[i] = tok
	}
	return pool
}
