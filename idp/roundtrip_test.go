package idp

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	xrv "github.com/mattermost/xml-roundtrip-validator"
)

// Documents that do and do not survive encoding/xml, in the manner of
// the 2020 encoding/xml advisories: empty and doubled prefixes on
// elements, end tags and attributes, and namespace declarations that a
// round trip drops. Today's encoding/xml refuses most of those as syntax
// errors; what still fails CheckToken itself is a name that is only a
// name after its prefix (a digit first) and a directive the encoder
// would not write.
var roundTripCases = append([]string{
	`<Root><Child p:1="v"/></Root>`,
	`<Root></Root>`,
	`<x:Root xmlns:x="urn:a"><x:Child a="1" x:b="2">text &amp; &#xD; more</x:Child></x:Root>`,
	`<?xml version="1.0" encoding="ISO-8859-1"?><Root/>`,
	`<Root><![CDATA[<b>"quoted"</b>]]><!-- comment --></Root>`,
	"<Root>\r\n\tline\r</Root>",
	`<a:b:c xmlns:a="urn:a"/>`,
	`<Root><p::Child></p::Child></Root>`,
	`<Root><Child ::name="v"/></Root>`,
	`<Root></p::Child></Root>`,
	`<Root p:="v"/>`,
	`<Root :="v"/>`,
	`<Root xmlns="urn:a" xmlns:="urn:b"></Root>`,
	`<Root xmlns:p="urn:a" p:xmlns="urn:b"/>`,
	"<Root>\n  <Child>\n    <p::Deep/>\n  </Child>\n</Root>",
	`<Root><! <<!-- -->!-- hidden --> tail></Root>`,
	`<Root attr="a&#x0;b"/>`,
	"<Root>\xff\xfe</Root>",
	`<Root><Unclosed></Root>`,
	`<!DOCTYPE Root [<!ENTITY e "x">]><Root>&e;</Root>`,
}, checkTokenRefuses...)

// checkTokenRefuses are documents that encoding/xml reads but whose
// tokens xml-roundtrip-validator's CheckToken refuses.
var checkTokenRefuses = []string{
	"<Root>\n  <p:0 xmlns:p=\"urn:a\"/>\n</Root>",
	`<Root></p:0></Root>`,
	`<Root><!">`,
}

// roundTrip must give xml-roundtrip-validator's verdict and message on
// every document, with the memo cold and warm.
func TestRoundTripAgreesWithValidate(t *testing.T) {
	docs := map[string][]byte{}
	for i, c := range roundTripCases {
		docs[string(rune('a'+i))] = []byte(c)
	}
	if dir, err := filepath.Abs(filepath.Join("..", "..", "shared", "corpora", "saml", "cases")); err == nil {
		files, _ := filepath.Glob(filepath.Join(dir, "*.b64"))
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if _, xml := Sniff(string(bytes.TrimSpace(data))); xml != nil {
				docs[filepath.Base(f)] = xml
			}
		}
		if len(files) == 0 {
			t.Logf("SAML corpus not found at %s: only the built-in cases run", dir)
		}
	}
	for _, doc := range checkTokenRefuses {
		if err := xrv.Validate(bytes.NewReader([]byte(doc))); err == nil || !strings.HasPrefix(err.Error(), "validator: in token") {
			t.Fatalf("%q: the library gives %v, not a CheckToken refusal: the case tests nothing", doc, err)
		}
	}
	refused := 0
	for pass := range 2 {
		for name, doc := range docs {
			want := xrv.Validate(bytes.NewReader(doc))
			got := roundTrip(doc)
			if (got == nil) != (want == nil) || (got != nil && got.Error() != want.Error()) {
				t.Errorf("pass %d, %s %q:\n got %v\nwant %v", pass, name, clip(string(doc)), got, want)
			}
			if pass == 0 && want != nil {
				refused++
			}
		}
	}
	if refused < 10 {
		t.Fatalf("only %d of the documents fail the round trip: the hostile cases are not hostile", refused)
	}
}

// The round-trip refusal, end to end with its position.
func TestRoundTripRefusal(t *testing.T) {
	err := roundTrip([]byte("<Root>\n  <p:0 xmlns:p=\"urn:a\"/>\n</Root>"))
	want := "validator: in token starting at 2:3: XML syntax error on line 1: invalid XML name: 0"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

// The memo starts again when full instead of growing.
func TestRoundTripMemoIsBounded(t *testing.T) {
	for i := range maxTokens + 10 {
		doc := []byte(`<Root id="` + string(rune(0x4e00+i)) + `"/>`)
		if err := roundTrip(doc); err != nil {
			t.Fatal(err)
		}
	}
	checkedTokens.mu.RLock()
	n := len(checkedTokens.keys)
	checkedTokens.mu.RUnlock()
	if n == 0 || n > maxTokens {
		t.Fatalf("memo holds %d keys; want 1..%d", n, maxTokens)
	}
}

// FuzzRoundTrip: roundTrip and the library agree on every input, and
// again once the input's tokens are remembered.
func FuzzRoundTrip(f *testing.F) {
	for _, c := range roundTripCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		want := xrv.Validate(bytes.NewReader(doc))
		for range 2 {
			got := roundTrip(doc)
			if (got == nil) != (want == nil) || (got != nil && got.Error() != want.Error()) {
				t.Fatalf("%q:\n got %v\nwant %v", doc, got, want)
			}
		}
	})
}

// Exchanges run roundTrip concurrently, sharing the memo: verdicts hold,
// and -race sees no race.
func TestRoundTripConcurrent(t *testing.T) {
	want := make([]error, len(roundTripCases))
	for i, c := range roundTripCases {
		want[i] = xrv.Validate(strings.NewReader(c))
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8*len(roundTripCases))
	for g := range 8 {
		wg.Go(func() {
			for j := range 20 * len(roundTripCases) {
				i := (j + g) % len(roundTripCases)
				got := roundTrip([]byte(roundTripCases[i]))
				if (got == nil) != (want[i] == nil) {
					errs <- roundTripCases[i] + ": " + fmt.Sprint(got)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
