package stsclient_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestClientDeps: the client pulls in none of the STS's storage, metrics
// or XML signature code, and no package of the STS itself.
func TestClientDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/idtx/idtx/stsclient").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	forbidden := []string{
		"modernc.org/sqlite",
		"github.com/prometheus/",
		"github.com/russellhaering/goxmldsig",
		"github.com/jackc/pgx",
		"github.com/idtx/idtx/exchange",
		"github.com/idtx/idtx/idp",
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if strings.HasPrefix(pkg, f) {
				t.Errorf("stsclient depends on %s (%s): the client must not pull in the STS", pkg, f)
			}
		}
	}
}
