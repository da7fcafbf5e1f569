package workflow_test

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/idtx/idtx/workflow"
)

// largestInput is the largest subject a rule may read: MaxRuleValues
// values in all (the sub, the groups list and its elements), every group
// a string of MaxRuleString bytes differing from the others only at its
// end, so that every comparison reads it whole.
func largestInput() *workflow.Input {
	in := input()
	n := workflow.MaxRuleValues - 2 // sub and the list itself
	groups := make([]any, n)
	prefix := strings.Repeat("g", workflow.MaxRuleString-4)
	for i := range groups {
		groups[i] = prefix + string(rune('0'+i/1000%10)) + string(rune('0'+i/100%10)) + string(rune('0'+i/10%10)) + string(rune('0'+i%10))
	}
	in.Subject = map[string]any{"sub": "alice", "groups": groups}
	return in
}

// worstRules are the rules that cost the most CPU over a large claim:
// built-ins quadratic in their input (charged only after they return) and
// comprehensions whose step compares the whole subject (charged as one
// unit).
var worstRules = []string{
	`subject.groups.distinct().size() == 0`,
	`sets.contains(subject.groups, subject.groups.reverse())`,
	`sets.equivalent(subject.groups, subject.groups.reverse())`,
	`sets.intersects(subject.groups, ["none"])`,
	`!subject.groups.all(g, subject == subject)`,
	`subject.groups.exists(a, subject.groups.exists(b, a + b == "none"))`,
	`sets.equivalent(subject.groups.map(g, subject.groups), subject.groups.map(g, subject.groups).reverse())`,
	`subject.groups.sort() == subject.groups`,
}

// Claim sets entering a rule are bounded: one over the bounds is refused,
// never cut (a rule denying on a group must not pass because the group
// was cut off).
func TestRuleInputBounds(t *testing.T) {
	w := mustCompile(t, workflow.Spec{Name: "blocked", DenyIf: `"blocked" in subject.groups`, Message: "blocked"})
	many := make([]any, workflow.MaxRuleValues)
	for i := range many {
		many[i] = "g"
	}
	many[len(many)-1] = "blocked"
	for _, tc := range []struct {
		name    string
		subject map[string]any
		actor   map[string]any
		want    string
	}{
		{"60,000 groups", map[string]any{"sub": "mallory", "groups": make([]any, 60000)}, nil,
			"could not evaluate: subject holds more than 500 values; a rule reads at most 500"},
		{"a deny group past the bound", map[string]any{"sub": "mallory", "groups": many}, nil,
			"could not evaluate: subject holds more than 500 values; a rule reads at most 500"},
		{"a long group", map[string]any{"sub": "mallory", "groups": []any{"staff", strings.Repeat("x", workflow.MaxRuleString+1)}}, nil,
			"could not evaluate: subject.groups[1] is a string of 513 bytes; a rule reads strings of at most 512"},
		{"a long actor claim", map[string]any{"sub": "alice"}, map[string]any{"sub": strings.Repeat("x", 5000)},
			"could not evaluate: actor.sub is a string of 5000 bytes; a rule reads strings of at most 512"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := input()
			in.Subject, in.Actor = tc.subject, tc.actor
			v, err := w.Run(context.Background(), in)
			if !errors.Is(err, workflow.ErrEval) || err.Error() != tc.want {
				t.Fatalf("got %+v, %v; want %q", v, err, tc.want)
			}
		})
	}
	// The largest admissible input is read, and denied on its own merits.
	in := largestInput()
	in.Subject["groups"].([]any)[0] = "blocked"
	if v, err := w.Run(context.Background(), in); err != nil || v.Allow || v.Reason != "blocked" {
		t.Fatalf("largest input: %+v, %v", v, err)
	}
}

// A rule is interrupted at its budget, in the middle of a comprehension
// whose steps the cost limit charges as one unit each, and refused.
func TestRuleInterruptedAtBudget(t *testing.T) {
	w := mustCompile(t, workflow.Spec{Name: "slow", DenyIf: `!subject.groups.all(g, subject == subject)`, Message: "m"},
		workflow.WithEvalBudget(time.Nanosecond))
	_, err := w.Run(context.Background(), largestInput())
	want := "could not evaluate: deny_if: interrupted: evaluation exceeded its budget of 1ns"
	if !errors.Is(err, workflow.ErrEval) || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
	// A request whose context is done stops its rules too.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w = mustCompile(t, workflow.Spec{Name: "slow", DenyIf: `!subject.groups.all(g, subject == subject)`, Message: "m"})
	if _, err := w.Run(ctx, largestInput()); !errors.Is(err, workflow.ErrEval) || err.Error() != "could not evaluate: deny_if: interrupted: context canceled" {
		t.Fatalf("err = %v", err)
	}
}

// BenchmarkWorstRule is the CPU of each rule of worstRules over the
// largest admissible input, under the default budget and cost limit:
//
//	go test -run '^$' -bench WorstRule -benchtime 20x ./workflow/
func BenchmarkWorstRule(b *testing.B) {
	in := largestInput()
	for i, rule := range worstRules {
		w, err := workflow.Compile(workflow.Spec{Name: "worst", DenyIf: rule, Message: "m"})
		if err != nil {
			b.Fatalf("%s: %v", rule, err)
		}
		b.Run(string(rune('a'+i)), func(b *testing.B) {
			var last error
			start := cpuTime()
			for b.Loop() {
				_, last = w.Run(context.Background(), in)
			}
			b.ReportMetric(float64((cpuTime()-start).Microseconds())/1000/float64(b.N), "cpu-ms/op")
			b.Logf("%s: %v", rule, last)
		})
	}
}

// cpuTime is the CPU this process has used, user and system: the
// benchmark's figure that other processes on the machine do not inflate.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
