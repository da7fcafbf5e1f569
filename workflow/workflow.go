// Package workflow runs the business rules an STS applies after consent,
// before it issues a token: CEL rules that deny an exchange or add claims,
// and webhooks that decide remotely. It is its own package because a rule
// language and a signed callback are a concept of their own, and it
// imports nothing of idtx's so that config can compile rules at load time
// and the engine can run them. docs/workflows.md is the user's guide.
//
// Verdicts and failures, all fail closed:
//
//   - a deny_if that is true, or a webhook answering allow: false, is a
//     Verdict with Allow false;
//   - a rule that cannot be evaluated (a missing key such as subject.groups
//     without has(), a claim value that is not JSON, the cost limit
//     exceeded, its time budget run out, claims over MaxRuleValues or
//     MaxRuleString) is an error wrapping ErrEval: the exchange is refused;
//   - a webhook that times out, answers other than 2xx, answers something
//     malformed or sets a reserved claim is an error wrapping ErrUnavailable:
//     the exchange is refused as temporarily unavailable, never allowed.
package workflow

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types/ref"
)

// Defaults and limits.
const (
	// DefaultTimeout bounds a webhook call when the config sets none.
	DefaultTimeout = 2 * time.Second
	// MaxTimeout is the longest a config may let a webhook hold an exchange.
	MaxTimeout = 30 * time.Second
	// DefaultCostLimit is the CEL cost (roughly, operations) one expression
	// may spend per evaluation, so that a rule over a huge claim (a list of
	// 100,000 groups) cannot hold the server.
	DefaultCostLimit = 100_000
	// EvalBudget bounds the time one expression may take to evaluate.
	EvalBudget = 50 * time.Millisecond
	// ReplayWindow is how old a signature timestamp a receiver should
	// accept (docs/workflows.md).
	ReplayWindow = 5 * time.Minute
)

// Failure categories, for errors.Is.
var (
	// ErrEval is a rule that could not be evaluated.
	ErrEval = errors.New("could not evaluate")
	// ErrUnavailable is a webhook that did not give a usable answer.
	ErrUnavailable = errors.New("webhook unavailable")
)

// reserved are the claims the STS sets itself (RFC 7519 §4.1, RFC 8693
// §4, RFC 9068 §2.2, RFC 7800 §3.1): a workflow that could set them could
// rename the subject, widen the audience or scope, extend the lifetime or
// grant delegation (may_act). groups, roles, entitlements (RFC 9068
// §2.2.3.1) and carried are the user's IDP's, carried to the next hop
// and judged there as the IDP's: a workflow that could set them could
// put a user in a group her IDP never named.
var reserved = []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "act", "scope", "client_id", "idp", "may_act", "cnf",
	"groups", "roles", "entitlements", "carried"}

// Reserved reports whether claim is one a workflow may not set, in any
// case: encoding/json (and so golang-jwt's RegisteredClaims) matches member
// names by Unicode case folding, so a "Sub" or "ſcope" beside "sub" or
// "scope" would be read as the subject or the scope by a Go resource
// server. strings.EqualFold folds as encoding/json does.
func Reserved(claim string) bool {
	return slices.ContainsFunc(reserved, func(r string) bool { return strings.EqualFold(r, claim) })
}

// Spec is one workflow as configured: a CEL rule (deny_if with message,
// claims, or both) or a webhook (webhook, secret, timeout).
type Spec struct {
	Name    string
	DenyIf  string
	Message string
	Claims  map[string]string
	Webhook string
	Secret  string
	Timeout time.Duration // 0: DefaultTimeout
}

// Workflow is a compiled, type-checked workflow, safe for concurrent use.
type Workflow struct {
	name    string
	message string
	deny    cel.Program
	claims  []claimProgram // sorted by name
	hook    *webhook
	budget  time.Duration // per expression evaluation
	reads   claimReads    // what its expressions read of subject and actor
}

type claimProgram struct {
	name string
	prg  cel.Program
}

// Option tunes Compile.
type Option func(*options)

type options struct {
	costLimit uint64
	budget    time.Duration
}

// WithCostLimit sets the CEL cost limit per expression evaluation.
func WithCostLimit(limit uint64) Option { return func(o *options) { o.costLimit = limit } }

// WithEvalBudget sets the time one expression evaluation may take
// (EvalBudget by default).
func WithEvalBudget(d time.Duration) Option { return func(o *options) { o.budget = d } }

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// KeyError is a problem with one key of a Spec, as the config writes it:
// Key (deny_if, claims), and Name, the member of a mapping key (the dept
// of claims.dept) or "".
type KeyError struct {
	Key, Name string
	Err       error
}

func (e *KeyError) Error() string {
	if e.Name != "" {
		return e.Key + "." + e.Name + ": " + e.Err.Error()
	}
	return e.Key + ": " + e.Err.Error()
}

func (e *KeyError) Unwrap() error { return e.Err }

// Compile checks and compiles spec. Every problem is reported, each
// naming the key it concerns ("claims.dept: 1:9: undeclared reference to
// 'x'"); the error joins them (errors.Join), so a caller can list them
// one by one.
func Compile(spec Spec, opts ...Option) (*Workflow, error) {
	o := options{costLimit: DefaultCostLimit, budget: EvalBudget}
	for _, opt := range opts {
		opt(&o)
	}
	w := &Workflow{name: spec.Name, message: spec.Message, budget: o.budget, reads: newClaimReads()}
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	// at is a problem with one key, kept as a value so that the config
	// can place it on its line.
	at := func(key, name, format string, args ...any) {
		errs = append(errs, &KeyError{Key: key, Name: name, Err: fmt.Errorf(format, args...)})
	}

	if !namePattern.MatchString(spec.Name) {
		at("name", "", "%q is not a workflow name (letters, digits, '.', '_', '-'; at most 64)", spec.Name)
	}
	isCEL := spec.DenyIf != "" || len(spec.Claims) > 0
	isHook := spec.Webhook != ""
	switch {
	case isCEL && isHook:
		at("webhook", "", "a workflow is either a CEL rule (deny_if, claims) or a webhook, not both")
	case !isCEL && !isHook:
		add("needs deny_if (with message), claims, or webhook (with secret)")
	}
	if isCEL || !isHook {
		if spec.DenyIf != "" && spec.Message == "" {
			at("message", "", "required with deny_if (it is the refusal's reason)")
		}
		if spec.DenyIf == "" && spec.Message != "" {
			at("message", "", "only goes with deny_if")
		}
		if spec.Secret != "" || spec.Timeout != 0 {
			add("secret, timeout: only go with webhook")
		}
	}
	if spec.DenyIf != "" {
		prg, err := compileExpr(spec.DenyIf, true, o.costLimit, &w.reads)
		if err != nil {
			at("deny_if", "", "%w", err)
		}
		w.deny = prg
	}
	for _, name := range slices.Sorted(maps.Keys(spec.Claims)) {
		switch {
		case name == "":
			at("claims", "", "a claim name is empty")
			continue
		case Reserved(name):
			at("claims", name, "%q is reserved: the STS sets it (reserved: %s)", name, strings.Join(reserved, " "))
			continue
		}
		prg, err := compileExpr(spec.Claims[name], false, o.costLimit, &w.reads)
		if err != nil {
			at("claims", name, "%w", err)
			continue
		}
		w.claims = append(w.claims, claimProgram{name: name, prg: prg})
	}
	if isHook && !isCEL {
		if u, err := url.Parse(spec.Webhook); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Fragment != "" {
			at("webhook", "", "%q is not an http(s) URL without user info or fragment", spec.Webhook)
		}
		if spec.Secret == "" {
			at("secret", "", "required with webhook (it signs X-Idtx-Signature)")
		}
		timeout := spec.Timeout
		if timeout == 0 {
			timeout = DefaultTimeout
		}
		if timeout < 0 || timeout > MaxTimeout {
			at("timeout", "", "%s is outside 0..%s", spec.Timeout, MaxTimeout)
		}
		w.hook = &webhook{url: spec.Webhook, secret: []byte(spec.Secret), timeout: timeout, client: defaultClient}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return w, nil
}

// Name is the workflow's configured name.
func (w *Workflow) Name() string { return w.name }

// IsWebhook reports whether the workflow calls out over HTTP.
func (w *Workflow) IsWebhook() bool { return w.hook != nil }

// SubjectClaims is what the workflow's CEL expressions read of subject:
// the claim names they select, test with has(), index with a constant
// or test with "name" in subject, sorted; and whole, true when an
// expression reads subject otherwise (as a whole, or by a computed key),
// so that which claims it needs cannot be told. A webhook reads nothing
// here: what it reads of the input is its own.
func (w *Workflow) SubjectClaims() (names []string, whole bool) {
	return slices.Sorted(maps.Keys(w.reads.subject.names)), w.reads.subject.whole
}

// ActorClaims is what the workflow's CEL expressions read of actor, as
// SubjectClaims is of subject: an actor token this STS issued carries
// only some of its user's claims too.
func (w *Workflow) ActorClaims() (names []string, whole bool) {
	return slices.Sorted(maps.Keys(w.reads.actor.names)), w.reads.actor.whole
}

// Service is the service variable: the service being exchanged for.
type Service struct {
	Name     string `json:"name"`
	Audience string `json:"audience"`
}

// Request is the request variable: what the client asked for.
type Request struct {
	Audiences          []string `json:"audiences"`
	Resources          []string `json:"resources"`
	RequestedTokenType string   `json:"requested_token_type"`
	Mode               string   `json:"mode"` // impersonation or delegation
}

// Input is what a workflow sees of one exchange. Its maps and slices are
// read, never changed.
type Input struct {
	Subject map[string]any // the subject token's verified claims
	Actor   map[string]any // the actor token's claims; nil or empty when impersonating
	Client  string         // the authenticated client's id
	Service Service
	Scopes  []string // granted
	Request Request
	Now     time.Time
}

// Verdict is a workflow's decision on one exchange.
type Verdict struct {
	Allow bool
	// Reason is why it denied: the deny_if message or the webhook's reason.
	Reason string
	// Claims are added to the issued token; never a reserved name.
	Claims map[string]any
}

// Run decides on in. A denial is a Verdict with Allow false, not an error;
// an error wraps ErrEval or ErrUnavailable and always means refuse.
func (w *Workflow) Run(ctx context.Context, in *Input) (Verdict, error) {
	if w.hook != nil {
		return w.hook.call(ctx, w.name, in)
	}
	for _, c := range []struct {
		name   string
		claims map[string]any
	}{{varSubject, in.Subject}, {varActor, in.Actor}} {
		if err := checkClaims(c.name, c.claims); err != nil {
			return Verdict{}, fmt.Errorf("%w: %w", ErrEval, err)
		}
	}
	act := &activation{in: in}
	if w.deny != nil {
		out, err := w.eval(ctx, w.deny, act)
		if err != nil {
			return Verdict{}, fmt.Errorf("%w: deny_if: %w", ErrEval, err)
		}
		deny, ok := out.Value().(bool)
		if !ok { // the checker proved it bool; a guard, not a path
			return Verdict{}, fmt.Errorf("%w: deny_if: %s is not a bool", ErrEval, out.Type().TypeName())
		}
		if deny {
			return Verdict{Allow: false, Reason: w.message}, nil
		}
	}
	v := Verdict{Allow: true}
	if len(w.claims) > 0 {
		v.Claims = make(map[string]any, len(w.claims))
		for _, c := range w.claims {
			out, err := w.eval(ctx, c.prg, act)
			if err != nil {
				return Verdict{}, fmt.Errorf("%w: claims.%s: %w", ErrEval, c.name, err)
			}
			val, err := native(out, 0)
			if err != nil {
				return Verdict{}, fmt.Errorf("%w: claims.%s: %w", ErrEval, c.name, err)
			}
			v.Claims[c.name] = val
		}
	}
	return v, nil
}

// eval runs one expression under its time budget: comprehensions look at
// the deadline as they iterate (cel.InterruptCheckFrequency), so a rule
// that would run on is interrupted, and refused, rather than holding the
// server; the cost limit still applies.
func (w *Workflow) eval(ctx context.Context, prg cel.Program, act *activation) (ref.Val, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, w.budget, errBudget)
	defer cancel()
	out, _, err := prg.ContextEval(ctx, act)
	switch {
	case err == nil:
		return out, nil
	case errors.Is(err, errBudget):
		return nil, fmt.Errorf("interrupted: evaluation exceeded its budget of %s", w.budget)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return nil, fmt.Errorf("interrupted: %w", context.Cause(ctx))
	}
	return nil, err
}

// errBudget is the cause of an evaluation's deadline.
var errBudget = errors.New("rule budget exceeded")
