package workflow

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/ext"
)

// The variables a rule sees (docs/workflows.md). subject and actor are
// maps of claims, so has(subject.groups) tests for a claim; actor is an
// empty map when impersonating, so has(actor.sub) is false.
const (
	varSubject = "subject"
	varActor   = "actor"
	varClient  = "client"
	varService = "service"
	varScopes  = "scopes"
	varRequest = "request"
	varNow     = "now"
)

// env is the one CEL environment every rule is checked against; building
// it takes milliseconds, so it is built once.
var env = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable(varSubject, cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable(varActor, cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable(varClient, cel.StringType),
		cel.Variable(varService, cel.MapType(cel.StringType, cel.StringType)),
		cel.Variable(varScopes, cel.ListType(cel.StringType)),
		cel.Variable(varRequest, cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable(varNow, cel.TimestampType),
		cel.CrossTypeNumericComparisons(true),
		ext.Strings(),
		ext.Sets(),
		ext.Lists(),
	)
})

// compileExpr parses and type-checks src; a deny_if must be bool. What
// it reads of subject and of actor is added to reads.
func compileExpr(src string, wantBool bool, costLimit uint64, reads *claimReads) (cel.Program, error) {
	e, err := env()
	if err != nil {
		return nil, err
	}
	ast, iss := e.Compile(src)
	if iss.Err() != nil {
		msgs := make([]string, 0, len(iss.Errors()))
		for _, ce := range iss.Errors() {
			msgs = append(msgs, fmt.Sprintf("%d:%d: %s", ce.Location.Line(), ce.Location.Column()+1, ce.Message))
		}
		return nil, errors.New(strings.Join(msgs, "; "))
	}
	if wantBool && ast.OutputType() != cel.BoolType {
		return nil, fmt.Errorf("has type %s, want bool (compare explicitly, e.g. subject.admin == true)", ast.OutputType())
	}
	reads.subject.walk(ast.NativeRep().Expr())
	reads.actor.walk(ast.NativeRep().Expr())
	return e.Program(ast, cel.CostLimit(costLimit), cel.EvalOptions(cel.OptOptimize),
		cel.InterruptCheckFrequency(interruptCheckFrequency))
}

// claimReads is what a workflow's expressions read of the two claim
// sets a chained token may leave short: subject's and actor's.
type claimReads struct {
	subject, actor subjectReads
}

func newClaimReads() claimReads {
	return claimReads{subject: subjectReads{v: varSubject}, actor: subjectReads{v: varActor}}
}

// subjectReads is what expressions read of one claim-set variable (v:
// subject or actor): the claim names, and whether it is read in a way
// that names none (whole).
type subjectReads struct {
	v     string
	names map[string]bool
	whole bool
}

func (r *subjectReads) add(name string) {
	if r.names == nil {
		r.names = map[string]bool{}
	}
	r.names[name] = true
}

// isSubject reports whether e is the variable r reads itself.
func (r *subjectReads) isSubject(e celast.Expr) bool {
	return e.Kind() == celast.IdentKind && e.AsIdent() == r.v
}

// constString is e as a string literal.
func constString(e celast.Expr) (string, bool) {
	if e.Kind() != celast.LiteralKind {
		return "", false
	}
	s, ok := e.AsLiteral().(types.String)
	return string(s), ok
}

// walk records what e reads of subject: subject.x and has(subject.x),
// subject["x"], "x" in subject; any other use of subject (passed whole,
// indexed by a computed key, iterated) makes whole true. A comprehension
// variable named subject shadows nothing here: it too counts as whole,
// which only ever refuses more.
func (r *subjectReads) walk(e celast.Expr) {
	switch e.Kind() {
	case celast.IdentKind:
		if r.isSubject(e) {
			r.whole = true
		}
	case celast.SelectKind:
		sel := e.AsSelect()
		if r.isSubject(sel.Operand()) {
			r.add(sel.FieldName())
			return
		}
		r.walk(sel.Operand())
	case celast.CallKind:
		call := e.AsCall()
		args := call.Args()
		if len(args) == 2 && !call.IsMemberFunction() {
			switch call.FunctionName() {
			case operators.Index:
				if k, ok := constString(args[1]); ok && r.isSubject(args[0]) {
					r.add(k)
					return
				}
			case operators.In:
				if k, ok := constString(args[0]); ok && r.isSubject(args[1]) {
					r.add(k)
					return
				}
			}
		}
		if call.IsMemberFunction() {
			r.walk(call.Target())
		}
		for _, a := range args {
			r.walk(a)
		}
	case celast.ComprehensionKind:
		c := e.AsComprehension()
		for _, x := range []celast.Expr{c.IterRange(), c.AccuInit(), c.LoopCondition(), c.LoopStep(), c.Result()} {
			r.walk(x)
		}
	case celast.ListKind:
		for _, x := range e.AsList().Elements() {
			r.walk(x)
		}
	case celast.MapKind:
		for _, en := range e.AsMap().Entries() {
			m := en.AsMapEntry()
			r.walk(m.Key())
			r.walk(m.Value())
		}
	case celast.StructKind:
		for _, f := range e.AsStruct().Fields() {
			r.walk(f.AsStructField().Value())
		}
	}
}

// interruptCheckFrequency is how many comprehension iterations run between
// two looks at the evaluation's deadline. The cost limit alone is not
// enough: it is charged after a built-in returns, and a constant cost is
// charged for work that grows with the input (subject == subject inside
// subject.groups.all(...) is one unit however many groups there are).
const interruptCheckFrequency = 16

// Bounds on the claims a rule reads (docs/workflows.md). With them, and
// the deadline, the worst rule found (sets.equivalent, distinct, a
// comprehension comparing the whole subject on each step) answers within
// 100 ms of CPU: BenchmarkWorstRule.
const (
	// MaxRuleValues is how many values one claim set (subject, actor)
	// may hold, counting every element of every list and map in it.
	MaxRuleValues = 500
	// MaxRuleString is the longest string, in bytes, a claim may hold.
	MaxRuleString = 512
)

// checkClaims refuses a claim set a rule may not read: more than
// MaxRuleValues values, a string (a value, a key, a claim's name) longer
// than MaxRuleString, or nesting deeper than maxDepth. A set is refused, never cut: a rule that denies
// on a group must not pass because the group was cut off.
func checkClaims(name string, claims map[string]any) error {
	n := 0
	var walk func(path string, v any, depth int) error
	walk = func(path string, v any, depth int) error {
		if depth > maxDepth {
			return fmt.Errorf("%s is nested deeper than %d", path, maxDepth)
		}
		if n++; n > MaxRuleValues {
			return fmt.Errorf("%s holds more than %d values; a rule reads at most %d", name, MaxRuleValues, MaxRuleValues)
		}
		switch v := v.(type) {
		case string:
			if len(v) > MaxRuleString {
				return fmt.Errorf("%s is a string of %d bytes; a rule reads strings of at most %d", path, len(v), MaxRuleString)
			}
		case []any:
			for i, e := range v {
				if err := walk(fmt.Sprintf("%s[%d]", path, i), e, depth+1); err != nil {
					return err
				}
			}
		case []string:
			for i, e := range v {
				if err := walk(fmt.Sprintf("%s[%d]", path, i), e, depth+1); err != nil {
					return err
				}
			}
		case map[string]any:
			for _, k := range slices.Sorted(maps.Keys(v)) {
				if len(k) > MaxRuleString {
					return fmt.Errorf("%s has a key of %d bytes; a rule reads strings of at most %d", path, len(k), MaxRuleString)
				}
				if err := walk(path+"."+k, v[k], depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for _, k := range slices.Sorted(maps.Keys(claims)) {
		if len(k) > MaxRuleString { // a claim's name is a key too
			return fmt.Errorf("%s has a key of %d bytes; a rule reads strings of at most %d", name, len(k), MaxRuleString)
		}
		if err := walk(name+"."+k, claims[k], 1); err != nil {
			return err
		}
	}
	return nil
}

// activation hands the rule the input's fields as it reads them: nothing
// is converted for a variable the rule does not name.
type activation struct{ in *Input }

var emptyMap = map[string]any{}

func (a *activation) ResolveName(name string) (any, bool) {
	in := a.in
	switch name {
	case varSubject:
		if in.Subject == nil {
			return emptyMap, true
		}
		return in.Subject, true
	case varActor:
		if in.Actor == nil {
			return emptyMap, true
		}
		return in.Actor, true
	case varClient:
		return in.Client, true
	case varService:
		return map[string]string{"name": in.Service.Name, "audience": in.Service.Audience}, true
	case varScopes:
		return nonNil(in.Scopes), true
	case varRequest:
		return map[string]any{
			"audiences":            nonNil(in.Request.Audiences),
			"resources":            nonNil(in.Request.Resources),
			"requested_token_type": in.Request.RequestedTokenType,
			"mode":                 in.Request.Mode,
		}, true
	case varNow:
		return in.Now, true
	}
	return nil, false
}

func (a *activation) Parent() cel.Activation { return nil }

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// maxDepth bounds the nesting of a claim value.
const maxDepth = 16

// native turns a CEL value into what encoding/json writes as the same
// JSON: a claim must survive the trip into the token unchanged.
func native(v ref.Val, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("value nested deeper than %d", maxDepth)
	}
	switch v.Type() {
	case types.NullType:
		return nil, nil
	case types.BoolType, types.IntType, types.UintType, types.StringType:
		return v.Value(), nil
	case types.DoubleType:
		f := v.Value().(float64)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("%v is not a JSON number", f)
		}
		return f, nil
	case types.TimestampType:
		return v.Value().(time.Time).UTC().Format(time.RFC3339Nano), nil
	case types.DurationType:
		return v.Value().(time.Duration).String(), nil
	}
	switch t := v.(type) {
	case traits.Mapper:
		out := map[string]any{}
		for it := t.Iterator(); it.HasNext() == types.True; {
			k := it.Next()
			ks, ok := k.Value().(string)
			if !ok {
				return nil, fmt.Errorf("map key of type %s is not a string", k.Type().TypeName())
			}
			val, err := native(t.Get(k), depth+1)
			if err != nil {
				return nil, err
			}
			out[ks] = val
		}
		return out, nil
	case traits.Lister:
		out := []any{}
		for it := t.Iterator(); it.HasNext() == types.True; {
			val, err := native(it.Next(), depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, val)
		}
		return out, nil
	}
	return nil, fmt.Errorf("a value of type %s is not JSON", v.Type().TypeName())
}
