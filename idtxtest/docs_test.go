package idtxtest_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/idtx/idtx/mockidp"
)

// TestTestingDoc holds docs/testing.md to the code: every failure
// scenario with its exact refusal, and every fault.
func TestTestingDoc(t *testing.T) {
	data, err := os.ReadFile("../docs/testing.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	times := regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`)
	for _, c := range brokenTokenCases {
		if want := "`" + times.ReplaceAllString(c.description, "T") + "`"; !strings.Contains(doc, want) {
			t.Errorf("docs/testing.md lacks the refusal of %s %s: %s", c.format, c.kind, want)
		}
	}
	for _, b := range mockidp.Breaks {
		if !strings.Contains(doc, "| `"+string(b.Kind)+"` | "+strings.Join(b.Formats, ", ")+" |") {
			t.Errorf("docs/testing.md has no row for failure scenario %s (%v)", b.Kind, b.Formats)
		}
	}
	for _, f := range mockidp.FaultHelp {
		if !strings.Contains(doc, "| `"+f.Spec+"` |") {
			t.Errorf("docs/testing.md has no row for fault %s", f.Spec)
		}
	}
}
