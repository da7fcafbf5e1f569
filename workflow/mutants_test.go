package workflow_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/idtx/idtx/workflow"
)

// These tests kill mutants of Compile's checks that the other tests let
// live: each asserts the whole error, so that a check which goes missing
// (or one that fires where it should not) changes it.

// Compile reports exactly the problems of a spec, and no others.
func TestCompileErrorsExact(t *testing.T) {
	const needs = "needs deny_if (with message), claims, or webhook (with secret)"
	const badURL = " is not an http(s) URL without user info or fragment"
	for _, tc := range []struct {
		name string
		spec workflow.Spec
		want string
	}{
		// A spec that is neither kind is still checked for the keys that
		// go only with the other kind.
		{"message alone", workflow.Spec{Name: "w", Message: "m"}, needs + "\nmessage: only goes with deny_if"},
		{"secret alone", workflow.Spec{Name: "w", Secret: "s"}, needs + "\nsecret, timeout: only go with webhook"},
		{"timeout alone", workflow.Spec{Name: "w", Timeout: time.Second}, needs + "\nsecret, timeout: only go with webhook"},
		{"timeout on CEL", workflow.Spec{Name: "w", DenyIf: "true", Message: "m", Timeout: time.Second}, "secret, timeout: only go with webhook"},
		{"empty claim name", workflow.Spec{Name: "w", Claims: map[string]string{"": `"x"`, "ok": `"y"`}}, "claims: a claim name is empty"},
		// Both kinds: one problem, not the webhook's own checks as well.
		{"both kinds, no secret", workflow.Spec{Name: "w", DenyIf: "true", Message: "m", Webhook: "https://x.test/hook"},
			"webhook: a workflow is either a CEL rule (deny_if, claims) or a webhook, not both"},
		{"unparsable URL", workflow.Spec{Name: "w", Webhook: "http://[::1", Secret: "s"}, `webhook: "http://[::1"` + badURL},
		{"ftp URL", workflow.Spec{Name: "w", Webhook: "ftp://x.test/hook", Secret: "s"}, `webhook: "ftp://x.test/hook"` + badURL},
		{"no host", workflow.Spec{Name: "w", Webhook: "https:///hook", Secret: "s"}, `webhook: "https:///hook"` + badURL},
		{"user info", workflow.Spec{Name: "w", Webhook: "https://u:p@x.test/hook", Secret: "s"}, `webhook: "https://u:p@x.test/hook"` + badURL},
		{"fragment", workflow.Spec{Name: "w", Webhook: "https://x.test/hook#f", Secret: "s"}, `webhook: "https://x.test/hook#f"` + badURL},
		{"negative timeout", workflow.Spec{Name: "w", Webhook: "https://x.test/hook", Secret: "s", Timeout: -time.Second}, "timeout: -1s is outside 0..30s"},
		{"timeout past the bound", workflow.Spec{Name: "w", Webhook: "https://x.test/hook", Secret: "s", Timeout: workflow.MaxTimeout + time.Nanosecond},
			"timeout: 30.000000001s is outside 0..30s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := workflow.Compile(tc.spec)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Compile = %v, %v; want the error %q", w, err, tc.want)
			}
		})
	}
}

// The bounds themselves are accepted: http as well as https, a timeout
// of exactly MaxTimeout.
func TestCompileWebhookBounds(t *testing.T) {
	for _, spec := range []workflow.Spec{
		{Name: "w", Webhook: "http://127.0.0.1:8080/hook", Secret: "s"},
		{Name: "w", Webhook: "https://x.test/hook", Secret: "s", Timeout: workflow.MaxTimeout},
	} {
		w, err := workflow.Compile(spec)
		if err != nil || !w.IsWebhook() {
			t.Errorf("Compile(%+v) = %v, %v; want a webhook", spec, w, err)
		}
	}
	if _, err := workflow.Compile(workflow.Spec{Name: strings.Repeat("n", 65), DenyIf: "true", Message: "m"}); err == nil ||
		err.Error() != `name: "`+strings.Repeat("n", 65)+`" is not a workflow name (letters, digits, '.', '_', '-'; at most 64)` {
		t.Errorf("a 65-byte name: %v", err)
	}
}

// nest puts leaf at depth d of a claim (the claim's own value is at depth
// 1), under members named "a".
func nest(d int, leaf any) any {
	v := leaf
	for range d - 1 {
		v = map[string]any{"a": v}
	}
	return v
}

// The bounds on what a rule reads hold at their edges, through every
// kind of value: nesting, the value count, string values in a []string,
// and keys (docs/workflows.md: "no string (value or key) longer than 512
// bytes").
func TestRuleInputEdges(t *testing.T) {
	w := mustCompile(t, workflow.Spec{Name: "w", DenyIf: `has(subject.blocked)`, Message: "blocked"})
	long := strings.Repeat("k", workflow.MaxRuleString+1)
	groups := func(n int) []any {
		g := make([]any, n)
		for i := range g {
			g[i] = "g"
		}
		return g
	}
	deep := "subject.x" + strings.Repeat(".a", 16)
	for _, tc := range []struct {
		name    string
		subject map[string]any
		want    string // "" for accepted
	}{
		{"depth 16", map[string]any{"x": nest(16, "v")}, ""},
		{"depth 17", map[string]any{"x": nest(17, "v")}, "could not evaluate: " + deep + " is nested deeper than 16"},
		{"depth 17 in a list", map[string]any{"x": nest(16, []any{"v"})}, "could not evaluate: " + deep[:len(deep)-2] + "[0] is nested deeper than 16"},
		{"depth 16 in a []string", map[string]any{"x": nest(15, []string{"v"})}, ""},
		{"depth 17 in a []string", map[string]any{"x": nest(16, []string{"v"})}, "could not evaluate: " + deep[:len(deep)-2] + "[0] is nested deeper than 16"},
		{"a long string in a []string", map[string]any{"x": []string{"ok", long}},
			"could not evaluate: subject.x[1] is a string of 513 bytes; a rule reads strings of at most 512"},
		{"500 values", map[string]any{"sub": "mallory", "groups": groups(498)}, ""},
		{"501 values", map[string]any{"sub": "mallory", "groups": groups(499)},
			"could not evaluate: subject holds more than 500 values; a rule reads at most 500"},
		{"a key of 512 bytes", map[string]any{"x": map[string]any{long[1:]: "v"}}, ""},
		{"a key of 513 bytes", map[string]any{"x": map[string]any{long: "v"}},
			"could not evaluate: subject.x has a key of 513 bytes; a rule reads strings of at most 512"},
		{"a claim name of 512 bytes", map[string]any{long[1:]: "v"}, ""},
		{"a claim name of 513 bytes", map[string]any{long: "v"},
			"could not evaluate: subject has a key of 513 bytes; a rule reads strings of at most 512"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := input()
			in.Subject = tc.subject
			v, err := w.Run(context.Background(), in)
			switch {
			case tc.want == "" && (err != nil || !v.Allow):
				t.Fatalf("got %+v, %v; want allowed", v, err)
			case tc.want != "" && (!errors.Is(err, workflow.ErrEval) || err.Error() != tc.want):
				t.Fatalf("got %+v, %v; want %q", v, err, tc.want)
			}
		})
	}
}

// A claim a rule sets is nested at most 16 deep, in lists or in maps: a
// value 16 deep is issued, one 17 deep refuses the exchange.
func TestClaimValueDepth(t *testing.T) {
	list := func(d int) string { return strings.Repeat("[", d) + `"v"` + strings.Repeat("]", d) }
	dict := func(d int) string { return strings.Repeat(`{"a": `, d) + `"v"` + strings.Repeat("}", d) }
	for _, nested := range []func(int) string{list, dict} {
		w := mustCompile(t, workflow.Spec{Name: "w", Claims: map[string]string{"x": nested(16)}})
		if v, err := w.Run(context.Background(), input()); err != nil || !v.Allow || v.Claims["x"] == nil {
			t.Fatalf("%s: %+v, %v; want the claim set", nested(16), v, err)
		}
		w = mustCompile(t, workflow.Spec{Name: "w", Claims: map[string]string{"x": nested(17)}})
		if v, err := w.Run(context.Background(), input()); !errors.Is(err, workflow.ErrEval) ||
			err.Error() != "could not evaluate: claims.x: value nested deeper than 16" {
			t.Fatalf("%s: %+v, %v; want refused", nested(17), v, err)
		}
	}
}

// A claim a rule sets must survive the trip into JSON unchanged: an
// infinity or a map with a key that is not a string refuses the exchange.
func TestClaimNotJSON(t *testing.T) {
	for expr, want := range map[string]string{
		`1.0 / 0.0`:  "could not evaluate: claims.x: +Inf is not a JSON number",
		`-1.0 / 0.0`: "could not evaluate: claims.x: -Inf is not a JSON number",
		`{1: "a"}`:   "could not evaluate: claims.x: map key of type int is not a string",
	} {
		w := mustCompile(t, workflow.Spec{Name: "w", Claims: map[string]string{"x": expr}})
		if v, err := w.Run(context.Background(), input()); !errors.Is(err, workflow.ErrEval) || err.Error() != want {
			t.Errorf("%s: %+v, %v; want %q", expr, v, err, want)
		}
	}
}
