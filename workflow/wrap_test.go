package workflow_test

import (
	"context"
	"errors"
	"testing"

	"github.com/idtx/idtx/workflow"
)

// A rule stopped by its request's context wraps both ErrEval and the
// context's cause, and says so in the same words as before.
func TestEvalErrorWrapsCause(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w := mustCompile(t, workflow.Spec{Name: "slow", DenyIf: `!subject.groups.all(g, subject == subject)`, Message: "m"})
	_, err := w.Run(ctx, largestInput())
	if !errors.Is(err, workflow.ErrEval) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v: want ErrEval wrapping context.Canceled", err)
	}
	if want := "could not evaluate: deny_if: interrupted: context canceled"; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
}
