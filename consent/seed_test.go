package consent_test

import (
	"strings"
	"testing"

	"github.com/idtx/idtx/consent"
)

func TestParseSeed(t *testing.T) {
	list, err := consent.ParseSeed([]byte(`
- idp: mock
  user: alice
  service: billing-api
  scopes: [billing:read]
`))
	if err != nil || len(list) != 1 || list[0].IDP != "mock" {
		t.Fatalf("ParseSeed = %+v, %v", list, err)
	}
	for name, c := range map[string]struct{ seed, err string }{
		"no idp":       {"- {user: alice, service: billing-api, scopes: [x]}", "entry 1 needs idp, user, service and scopes"},
		"typo in idp":  {"- {ipd: mock, user: alice, service: billing-api, scopes: [x]}", "field ipd not found"},
		"legacy field": {"- {idp: mock, legacy: true, user: alice, service: billing-api, scopes: [x]}", "field legacy not found"},
		"json":         {`[{"idp": "mock", "user": "alice", "service": "s"}]`, "entry 1 needs idp, user, service and scopes"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := consent.ParseSeed([]byte(c.seed)); err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("err = %v, want %q", err, c.err)
			}
		})
	}
}
