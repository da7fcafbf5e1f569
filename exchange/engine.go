package exchange

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/consent"
	"github.com/idtx/idtx/idp"
	"github.com/idtx/idtx/secret"
)

// Status is a step's outcome.
type Status string

// Step outcomes.
const (
	Pass Status = "pass"
	Fail Status = "fail"
	Skip Status = "skip"
)

// Outcome is what one step concluded, and why.
type Outcome struct {
	Status   Status            `json:"outcome"`
	Reason   string            `json:"reason"`
	Evidence map[string]string `json:"evidence,omitempty"`
	// Err is the OAuth error to answer with, for a failure.
	Err *Error `json:"-"`
}

// Entry is one step's record in a trace.
type Entry struct {
	Step string `json:"step"`
	Outcome
}

// Trace records each step of one exchange, in order, up to the first
// failure.
type Trace []Entry

// Step is one box of the flowchart (CONTRACT §4).
type Step struct {
	Name string
	Run  func(ctx context.Context, s *State) Outcome
}

// Request is a token request as it arrived: the form and the credentials
// of the HTTP Basic header. The request step types it into State.
type Request struct {
	Form url.Values
	// Basic holds HTTP Basic credentials, if the header was sent.
	Basic *BasicAuth
	// ParseErr is a failure to read the request at all (size, media type).
	ParseErr *Error
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
	Result     *Result  // set by the issue step

	// subjectChain is the act chain of a subject token the STS issued,
	// newest actor first; nil for any other subject.
	subjectChain []actor
}

// Mode is impersonation, or delegation when an actor token is present
// (RFC 8693 §1.1).
func (s *State) Mode() string {
	if s.ActorToken != "" {
		return config.ModeDelegation
	}
	return config.ModeImpersonation
}

// Result is a successful token response (RFC 8693 §2.2.1).
type Result struct {
	AccessToken     string `json:"access_token"`
	IssuedTokenType string `json:"issued_token_type"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
	Scope           string `json:"scope,omitempty"`
}

// Engine runs the flowchart over a loaded configuration.
type Engine struct {
	issuer   string
	clients  map[string]*Client
	services []*Service
	targets  map[string]*Service // audience or resource → service
	registry *idp.Registry
	self     *idp.JWT
	store    consent.Store
	signer   *Signer
	now      func() time.Time
	replay   ReplayCache
	pool     *secret.Pool
	dummy    *secret.Params // verified for unknown client ids
	steps    []Step

	requireMayAct bool // config require_may_act
	maxDepth      int  // config max_delegation_depth

	limits  *limits  // config rate_limit, max_in_flight; applied by the Handler
	metrics *Metrics // set by Build; the Handler makes one if nil
	// afterStep, if set, sees each step's outcome and its duration, and
	// may turn a pass into a failure (the Handler's rate limit after the
	// client step). Nil for explain and walk.
	afterStep func(name string, s *State, o Outcome, took time.Duration) Outcome
}

// Options are the engine's dependencies, injected so tests control them.
type Options struct {
	Registry *idp.Registry
	Store    consent.Store
	Signer   *Signer
	Clock    func() time.Time
	// HashPool verifies hashed client secrets (default secret.NewPool(0, 0)).
	HashPool *secret.Pool
	// Replay records client assertion jti values (default a
	// MemoryReplayCache on Clock).
	Replay ReplayCache
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
		e.replay = NewMemoryReplayCache(e.now, 0)
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
		Algorithms: []string{e.signer.Alg()}, ClockSkew: config.DefaultClockSkew,
		Clock: e.now, Keys: e.signer.KeySet(),
	})
	if err != nil {
		return nil, err
	}
	if err := e.registry.Add(self); err != nil {
		return nil, fmt.Errorf("engine: an IDP has the STS's own issuer %s: %w", e.issuer, err)
	}
	e.self = self
	e.steps = []Step{
		{"request", e.stepRequest},
		{"client", e.stepClient},
		{"target", e.stepTarget},
		{"subject", e.stepSubject},
		{"actor", e.stepActor},
		{"scope", e.stepScope},
		{"consent", e.stepConsent},
		{"workflows", e.stepWorkflows},
		{"issue", e.stepIssue},
	}
	return e, nil
}

// SelfIDP is the IDP name of tokens the STS issued itself.
const SelfIDP = "idtx"

// Issuer is the iss of the tokens the engine mints.
func (e *Engine) Issuer() string { return e.issuer }

// TokenEndpoint is the URL of POST /token, an accepted private_key_jwt aud.
func (e *Engine) TokenEndpoint() string { return e.issuer + "/token" }

// Run walks every step in order and stops at the first failure, returning
// its OAuth error. The server, `idtx explain` and `idtx walk` all run this.
func (e *Engine) Run(ctx context.Context, req *Request) (*Result, Trace, *Error) {
	s := &State{Req: req, Now: e.now()}
	trace := make(Trace, 0, len(e.steps))
	for _, step := range e.steps {
		var start time.Time
		if e.afterStep != nil {
			start = time.Now()
		}
		o := step.Run(ctx, s)
		if e.afterStep != nil {
			o = e.afterStep(step.Name, s, o, time.Since(start))
		}
		trace = append(trace, Entry{Step: step.Name, Outcome: o})
		if o.Status == Fail {
			return nil, trace, o.Err
		}
	}
	return s.Result, trace, nil
}

func pass(reason string, evidence map[string]string) Outcome {
	return Outcome{Status: Pass, Reason: reason, Evidence: evidence}
}

func skip(reason string) Outcome { return Outcome{Status: Skip, Reason: reason} }

func fail(err *Error) Outcome {
	return Outcome{Status: Fail, Reason: err.Description, Err: err}
}

// failWith is a failure with the evidence it was decided on.
func failWith(err *Error, evidence map[string]string) Outcome {
	o := fail(err)
	o.Evidence = evidence
	return o
}
