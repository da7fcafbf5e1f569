package docs_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/idtx/idtx/config"
)

// Every config snippet of ci.md (a yaml block) is a valid config once the
// service and client it leaves out are added: a CI recipe that does not
// load is worse than none.
func TestCIRecipesLoad(t *testing.T) {
	doc, err := os.ReadFile("ci.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(doc), -1)
	if len(blocks) < 4 {
		t.Fatalf("ci.md has %d yaml blocks; the page or its parsing broke", len(blocks))
	}
	for _, b := range blocks {
		snippet := b[1]
		cfg := "issuer: https://sts.example.com\n" + snippet
		if !strings.Contains(snippet, "services:") {
			cfg += "services:\n  - name: orders-api\n    scopes: {orders:read: {}, orders:write: {}}\n"
		}
		if !strings.Contains(snippet, "workflows:") {
			cfg += "workflows: []\n"
		}
		if _, err := config.Parse([]byte(cfg), "", func(string) ([]byte, error) { return nil, os.ErrNotExist }); err != nil {
			t.Errorf("ci.md snippet does not load:\n%s\n%v", snippet, err)
		}
	}
}
