package workflow_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/idtx/idtx/workflow"
)

// FuzzWorkflow compiles arbitrary deny_if and claims expressions and runs
// what compiles on a fixed input. Compiling never panics; a rule that
// compiled either decides or fails with ErrEval (a missing key, a cost
// over the limit), never another error, and never mints a reserved claim.
func FuzzWorkflow(f *testing.F) {
	for _, seed := range [][2]string{
		{`has(subject.groups) && "blocked" in subject.groups`, `subject.email.split("@")[1]`},
		{`subject.sub == "mallory"`, `string(now)`},
		{`size(scopes) > 2 || request.mode == "delegation"`, `service.name + ":" + client`},
		{`[1,2,3].all(x, x > 0)`, `{"a": [1, 2.5, true, null]}`},
		{`has(actor.sub)`, `subject.nested.deep`},
		{`1 / 0 == 1`, `[0].map(x, [x,x,x,x,x,x,x,x].map(y, [y,y,y,y,y,y,y,y].map(z, z)))`},
	} {
		f.Add(seed[0], seed[1], "dept")
	}
	in := &workflow.Input{
		Subject: map[string]any{"sub": "alice", "email": "alice@example.com", "groups": []any{"eng"}, "nested": map[string]any{"deep": 1.5}},
		Actor:   map[string]any{},
		Client:  "demo-client",
		Service: workflow.Service{Name: "billing-api", Audience: "billing-api"},
		Scopes:  []string{"billing:read"},
		Request: workflow.Request{Audiences: []string{"billing-api"}, RequestedTokenType: "urn:ietf:params:oauth:token-type:access_token", Mode: "impersonation"},
		Now:     time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	f.Fuzz(func(t *testing.T, denyIf, claim, name string) {
		spec := workflow.Spec{Name: "fuzz", Claims: map[string]string{name: claim}}
		if denyIf != "" {
			spec.DenyIf, spec.Message = denyIf, "denied"
		}
		w, err := workflow.Compile(spec, workflow.WithCostLimit(10_000))
		if err != nil {
			return
		}
		if workflow.Reserved(name) {
			t.Fatalf("compiled a rule that sets reserved claim %q", name)
		}
		v, err := w.Run(context.Background(), in)
		if err != nil {
			if !errors.Is(err, workflow.ErrEval) {
				t.Fatalf("error %v is not ErrEval", err)
			}
			return
		}
		for k := range v.Claims {
			if workflow.Reserved(k) {
				t.Fatalf("minted reserved claim %q", k)
			}
		}
	})
}
