package exchange

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/idp"
	"github.com/idtx/idtx/oauth"
	"github.com/idtx/idtx/secret"
	"github.com/idtx/idtx/store"
)

// Status is a step's outcome.
type Status string

// Step outcomes.
const (
	Pass Status = "pass"
	Fail Status = "fail"
	Skip Status = "skip"
)

// The steps of the flowchart, in the order they run (docs/flowchart.md).
const (
	StepRequest   = "request"
	StepClient    = "client"
	StepTarget    = "target"
	StepSubject   = "subject"
	StepActor     = "actor"
	StepScope     = "scope"
	StepConsent   = "consent"
	StepWorkflows = "workflows"
	StepIssue     = "issue"
)

// flowchart is the one list of the steps, in the order they run: every
// walk, the server's, explain's and walk's, runs it, and StepNames reads
// it.
var flowchart = [...]Step{
	{StepRequest, (*Engine).stepRequest},
	{StepClient, (*Engine).stepClient},
	{StepTarget, (*Engine).stepTarget},
	{StepSubject, (*Engine).stepSubject},
	{StepActor, (*Engine).stepActor},
	{StepScope, (*Engine).stepScope},
	{StepConsent, (*Engine).stepConsent},
	{StepWorkflows, (*Engine).stepWorkflows},
	{StepIssue, (*Engine).stepIssue},
}

// StepNames lists the nine steps in the order they run.
func StepNames() []string {
	names := make([]string, len(flowchart))
	for i, s := range flowchart {
		names[i] = s.Name
	}
	return names
}

// Evidence keys the steps record. Evidence holds names, times, key ids and
// scope sets, never a token, a secret or a signature.
const (
	EvidenceSubjectTokenType = "subject_token_type"
	EvidenceMode             = "mode"
	EvidenceClientID         = "client_id"
	EvidenceMethod           = "method"
	EvidenceServices         = "services"
	EvidenceIDP              = "idp"
	EvidenceIssuer           = "iss"
	EvidenceSubject          = "sub"
	EvidenceExpiry           = "exp"
	EvidenceAct              = "act"
	EvidenceActDepth         = "act_depth"
	EvidenceCarried          = "carried" // the identity claims a chained subject token carries
	EvidenceActor            = "actor"
	EvidenceActorIDP         = "actor_idp"
	EvidenceScope            = "scope"
	EvidenceUser             = "user"
	EvidenceJTI              = "jti"
	EvidenceKeyID            = "kid"

	// Detail evidence, recorded only when Request.Detail is set (explain,
	// walk, a server with traces on).
	EvidenceMatched        = "matched"          // why the token went to this IDP
	EvidenceAlgorithm      = "alg"              // JWT alg, or the SAML SignatureMethod
	EvidenceIntrospected   = "introspected_at"  // the introspection endpoint that vouched
	EvidenceNow            = "now"              // the walk's clock, RFC 3339
	EvidenceExpiresIn      = "expires_in"       // exp - now, e.g. 59m0s
	EvidenceNotBefore      = "nbf"              // when the token has one
	EvidenceIssuedAt       = "iat"              // when the token has one
	EvidenceSkew           = "skew"             // clock skew the time checks allowed
	EvidenceRequested      = "requested"        // scopes requested ("" if none: defaults)
	EvidenceDefaults       = "defaults"         // the targets' default scopes, when none were requested
	EvidenceSubjectScopes  = "subject_scopes"   // the subject's scopes, when they limit the grant
	EvidenceAllowedPrefix  = "allowed."         // + service: the scopes it offers
	EvidenceFoundPrefix    = "consent_found."   // + service: scopes with a stored consent
	EvidenceMissingPrefix  = "consent_missing." // + service: scopes without one
	EvidenceWorkflowPrefix = "workflow."        // + workflow name: its verdict
	EvidenceClaimPrefix    = "claim."           // + claim name: a claim of the minted token
)

// Categories of a failed token validation: which of idp's error
// categories the underlying error wraps, so that an untrusted issuer and
// a bad signature are told apart though both answer invalid_request.
const (
	CategoryUntrustedIssuer = "untrusted_issuer"
	CategoryInvalidToken    = "invalid_token"
	CategoryMalformedToken  = "malformed_token"
	CategoryIDPUnavailable  = "idp_unavailable"
)

// Category names the idp error category err wraps, or "".
func Category(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, idp.ErrUntrusted):
		return CategoryUntrustedIssuer
	case errors.Is(err, idp.ErrInvalid):
		return CategoryInvalidToken
	case errors.Is(err, idp.ErrMalformed):
		return CategoryMalformedToken
	case errors.Is(err, idp.ErrUnavailable):
		return CategoryIDPUnavailable
	}
	return ""
}

// Outcome is what one step concluded, and why.
type Outcome struct {
	Status   Status            `json:"outcome"`
	Reason   string            `json:"reason"`
	Evidence map[string]string `json:"evidence,omitempty"`
	// Category is the idp error category of a failed token validation.
	Category string `json:"category,omitempty"`
	// Err is the OAuth error to answer with, for a failure.
	Err *oauth.Error `json:"-"`
	// Cause is the underlying error of a failure, when there is one (the
	// idp validation error, a store error); never sent to a client.
	Cause error `json:"-"`
}

// Entry is one step's record in a trace.
type Entry struct {
	N    int    `json:"n"` // 1-based position in the flowchart
	Step string `json:"step"`
	Outcome
}

// Trace records each step of one exchange, in order, up to the first
// failure.
type Trace []Entry

// Step is one box of the flowchart (docs/flowchart.md).
type Step struct {
	Name string
	run  func(e *Engine, ctx context.Context, s *State) Outcome
}

// stepObserver sees each step's outcome and its duration, and may turn a
// pass into a failure (the Handler's rate limit after the client step).
// It belongs to one run, never to the engine, which the server, explain
// and walk share.
type stepObserver func(name string, s *State, o Outcome, took time.Duration) Outcome

// Request is a token request as it arrived: the form and the credentials
// of the HTTP Basic header. The request step types it into State.
type Request struct {
	Form url.Values
	// Basic holds HTTP Basic credentials, if the header was sent.
	Basic *BasicAuth
	// ParseErr is a failure to read the request at all (size, media type).
	ParseErr *oauth.Error
	// Detail asks the steps for rich evidence (the Evidence* keys marked
	// detail): explain, walk and a server keeping traces set it; the hot
	// path leaves it off and pays nothing for it.
	Detail bool
}

// BasicAuth is a client_secret_basic credential (RFC 6749 §2.3.1).
type BasicAuth struct{ ID, Secret string }

// State is what the steps of one exchange have established so far.
type State struct {
	Req *Request
	Now time.Time

	// Set by the request step.
	SubjectToken, SubjectTokenType string
	ActorToken, ActorTokenType     string
	RequestedTokenType             string
	Audiences, Resources           []string
	RequestedScopes                []string

	Client     *Client    // set by the client step
	AuthMethod string     // how the client authenticated
	Services   []*Service // set by the target step
	Subject    *idp.Identity
	Actor      *idp.Identity
	Scopes     []string // granted, set by the scope step
	// Claims are the extra claims workflows added, set by the workflows
	// step; never a reserved claim.
	Claims map[string]any
	Result *oauth.Result // set by the issue step

	// subjectChain is the act chain of a subject token the STS issued,
	// newest actor first; nil for any other subject.
	subjectChain []actor
	// carried is what a subject token the STS issued carries of the
	// user's identity claims (its carried claim); nil for any other.
	carried []string
	// actorCarried is the same of an actor token the STS issued.
	actorCarried []string
}

// Mode is impersonation, or delegation when an actor token is present
// (RFC 8693 §1.1).
func (s *State) Mode() string {
	if s.ActorToken != "" {
		return config.ModeDelegation
	}
	return config.ModeImpersonation
}

// Engine runs the flowchart over a loaded configuration.
type Engine struct {
	issuer   string
	clients  map[string]*Client
	services []*Service
	targets  map[string]*Service // audience or resource → service
	registry *idp.Registry
	self     *idp.JWT
	store    store.Store
	signer   *Signer
	now      func() time.Time
	replay   store.ReplayCache
	pool     *secret.Pool
	dummy    *secret.Params // verified for unknown client ids

	requireMayAct bool // config require_may_act
	maxDepth      int  // config max_delegation_depth

	limits  *limits  // config rate_limit, max_in_flight; applied by the Handler
	metrics *Metrics // set by Build; the Handler makes one if nil
}

// Options are the engine's dependencies, injected so tests control them.
type Options struct {
	Registry *idp.Registry
	Store    store.Store
	Signer   *Signer
	Clock    func() time.Time
	// HashPool verifies hashed client secrets (default secret.NewPool(0, 0)).
	HashPool *secret.Pool
	// Replay records client assertion jti values (default a
	// store.MemoryReplayCache on Clock).
	Replay store.ReplayCache
}

// NewEngine builds an engine for cfg. cfg.Issuer must be set.
func NewEngine(cfg *config.Config, opts Options) (*Engine, error) {
	if cfg.Issuer == "" {
		return nil, fmt.Errorf("engine: no issuer")
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	e := &Engine{
		issuer:   cfg.Issuer,
		clients:  map[string]*Client{},
		targets:  map[string]*Service{},
		registry: opts.Registry,
		store:    opts.Store,
		signer:   opts.Signer,
		now:      opts.Clock,
		replay:   opts.Replay,
		pool:     opts.HashPool,

		requireMayAct: cfg.RequireMayAct,
		maxDepth:      cfg.MaxDelegationDepth,
	}
	if e.maxDepth == 0 { // a Config not built by config.Parse
		e.maxDepth = config.DefaultMaxDelegationDepth
	}
	if e.replay == nil {
		e.replay = store.NewMemoryReplayCache(e.now, 0)
	}
	if e.pool == nil {
		e.pool = secret.NewPool(0, 0)
	}
	var err error
	if e.limits, err = newLimits(cfg); err != nil {
		return nil, err
	}
	var audiences []string
	for i := range cfg.Services {
		s := newService(&cfg.Services[i])
		e.services = append(e.services, s)
		e.targets[s.Audience] = s
		for _, r := range s.Resources {
			e.targets[r] = s
		}
		audiences = append(audiences, s.Audience)
	}
	for i := range cfg.Clients {
		c, err := newClient(&cfg.Clients[i], cfg.ReadFile)
		if err != nil {
			return nil, err
		}
		e.clients[c.ID] = c
		// The first hashed client's parameters, with a random digest, for
		// unknown ids: with hashed clients that share parameters (as
		// `idtx secret hash` makes them), timing tells no id apart.
		if e.dummy == nil && c.secretHash != nil {
			e.dummy = c.secretHash.Dummy()
		}
	}
	// The STS trusts its own tokens for chained exchanges: a service that
	// holds one exchanges it onwards.
	self, err := idp.NewJWT(idp.JWTConfig{
		Name: SelfIDP, Issuer: e.issuer, Audiences: audiences,
		Algorithms: e.signer.Algs(), ClockSkew: config.DefaultClockSkew,
		Clock: e.now, Keys: e.signer.KeySet(),
	})
	if err != nil {
		return nil, err
	}
	// A registry of the engine's own: the caller's stays as it was given.
	if e.registry, err = e.registry.With(self); err != nil {
		return nil, fmt.Errorf("engine: an IDP has the STS's own issuer %s: %w", e.issuer, err)
	}
	e.self = self
	return e, nil
}

// SelfIDP is the IDP name of tokens the STS issued itself.
const SelfIDP = "idtx"

// Signer is the engine's signer (to refresh its key set).
func (e *Engine) Signer() *Signer { return e.signer }

// Issuer is the iss of the tokens the engine mints.
func (e *Engine) Issuer() string { return e.issuer }

// TokenEndpoint is the URL of POST /token, an accepted private_key_jwt aud.
func (e *Engine) TokenEndpoint() string { return e.issuer + "/token" }

// Run walks every step in order and stops at the first failure, returning
// its OAuth error. It is a loop over Walk: the server, `idtx explain` and
// `idtx walk` run the very same steps.
func (e *Engine) Run(ctx context.Context, req *Request) (*oauth.Result, Trace, *oauth.Error) {
	return e.run(ctx, req, nil)
}

// run is Run with observe, if not nil, seeing each step of this run only.
func (e *Engine) run(ctx context.Context, req *Request, observe stepObserver) (*oauth.Result, Trace, *oauth.Error) {
	w := e.Walk(ctx, req)
	w.observe = observe
	for !w.done {
		w.Next()
	}
	return w.state.Result, w.trace, w.err
}

// Walker runs one exchange a step at a time. It is not safe for use by
// more than one goroutine.
type Walker struct {
	e     *Engine
	ctx   context.Context
	state State
	trace Trace
	buf   [len(flowchart)]Entry // trace's backing array: one allocation per exchange
	next  int
	done  bool
	err   *oauth.Error
	// observe, if set, sees each step of this walk (the Handler's).
	observe stepObserver
}

// Walk starts an exchange of req; nothing runs until Next. The clock is
// read once, here: every step of the walk sees the same now.
func (e *Engine) Walk(ctx context.Context, req *Request) *Walker {
	w := &Walker{e: e, ctx: ctx}
	w.state.Req, w.state.Now = req, e.now()
	w.trace = w.buf[:0]
	return w
}

// Next runs the next step and returns its entry; false when the walk was
// already done (every step ran, or one failed) and nothing ran.
func (w *Walker) Next() (Entry, bool) {
	if w.done {
		return Entry{}, false
	}
	step := &flowchart[w.next]
	var start time.Time
	if w.observe != nil {
		start = time.Now()
	}
	o := step.run(w.e, w.ctx, &w.state)
	if w.observe != nil {
		o = w.observe(step.Name, &w.state, o, time.Since(start))
	}
	if o.Status == Fail {
		if o.Cause == nil && o.Err != nil {
			o.Cause = o.Err.Cause
		}
		if o.Category == "" {
			o.Category = Category(o.Cause)
		}
	}
	w.next++
	entry := Entry{N: w.next, Step: step.Name, Outcome: o}
	w.trace = append(w.trace, entry)
	if o.Status == Fail {
		w.done, w.err = true, o.Err
	} else if w.next == len(flowchart) {
		w.done = true
	}
	return entry, true
}

// State is what the steps have established so far.
func (w *Walker) State() *State { return &w.state }

// Steps lists the names of every step the walk may run, in order.
func (w *Walker) Steps() []string { return StepNames() }

// Trace is the entries of the steps run so far.
func (w *Walker) Trace() Trace { return w.trace }

// Done reports whether the walk is over: every step ran or one failed.
func (w *Walker) Done() bool { return w.done }

// Result is the issued token, or the OAuth error of the failed step; both
// are nil while the walk is not done.
func (w *Walker) Result() (*oauth.Result, *oauth.Error) { return w.state.Result, w.err }

func pass(reason string, evidence map[string]string) Outcome {
	return Outcome{Status: Pass, Reason: reason, Evidence: evidence}
}

func skip(reason string) Outcome { return Outcome{Status: Skip, Reason: reason} }

func fail(err *oauth.Error) Outcome {
	return Outcome{Status: Fail, Reason: err.Description, Err: err}
}

// failWith is a failure with the evidence it was decided on.
func failWith(err *oauth.Error, evidence map[string]string) Outcome {
	o := fail(err)
	o.Evidence = evidence
	return o
}
