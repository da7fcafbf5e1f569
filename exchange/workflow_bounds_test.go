package exchange_test

import (
	"net/http"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/idtx/idtx/store"
	"github.com/idtx/idtx/workflow"
)

// A subject with more groups than a rule may read is refused by the
// service's CEL workflow, not cut and judged on what is left: the deny
// group past the bound would otherwise go unseen.
func TestWorkflowClaimBounds(t *testing.T) {
	e := newEnvWith(t, store.NewMemory(), withWorkflows("no-interns, tag-dept", celWorkflows))
	groups := make([]string, workflow.MaxRuleValues)
	for i := range groups {
		groups[i] = "staff"
	}
	groups[len(groups)-1] = "interns"
	r := e.post("/token", e.form(e.subject(jwt.MapClaims{"groups": groups, "email": "alice@corp.example"}), "audience", "billing-api"))
	want := "workflow no-interns: could not evaluate: subject holds more than 500 values; a rule reads at most 500"
	expectError(t, r, http.StatusBadRequest, "invalid_request", want)
	if r.str("error_description") != want {
		t.Errorf("description = %q", r.str("error_description"))
	}
}
