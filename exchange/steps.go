package exchange

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/idp"
	"github.com/idtx/idtx/oauth"
	"github.com/idtx/idtx/store"
	"github.com/idtx/idtx/workflow"
)

// Size limits of a request (docs/security.md, "The server around it").
const (
	MaxBodyBytes  = 64 << 10
	MaxTokenBytes = 16 << 10
)

// repeatable parameters may appear more than once (RFC 8693 §2.1); any
// other repeated parameter is an error (RFC 6749 §3.2).
var repeatable = map[string]bool{"audience": true, "resource": true}

// stepRequest types the form: grant type, required parameters, known
// token type URNs, sizes (RFC 8693 §2.1).
func (e *Engine) stepRequest(_ context.Context, s *State) Outcome {
	if s.Req.ParseErr != nil {
		return fail(s.Req.ParseErr)
	}
	f := s.Req.Form
	if err := checkRepeated(f, repeatable); err != nil {
		return fail(err)
	}
	switch gt := f.Get("grant_type"); gt {
	case oauth.GrantTypeTokenExchange:
	case "":
		return fail(oauth.ErrInvalidRequest("grant_type is missing"))
	default:
		return fail(oauth.ErrUnsupportedGrantType("grant_type %q is not supported; use %s", clipText(gt), oauth.GrantTypeTokenExchange))
	}
	s.SubjectToken = f.Get("subject_token")
	if s.SubjectToken == "" {
		return fail(oauth.ErrInvalidRequest("subject_token is missing"))
	}
	if len(s.SubjectToken) > MaxTokenBytes {
		return fail(oauth.ErrInvalidRequest("subject_token is longer than %d bytes", MaxTokenBytes))
	}
	var err *oauth.Error
	if s.SubjectTokenType, err = tokenTypeParam(f, "subject_token_type", true); err != nil {
		return fail(err)
	}
	s.ActorToken = f.Get("actor_token")
	if len(s.ActorToken) > MaxTokenBytes {
		return fail(oauth.ErrInvalidRequest("actor_token is longer than %d bytes", MaxTokenBytes))
	}
	if s.ActorTokenType, err = tokenTypeParam(f, "actor_token_type", s.ActorToken != ""); err != nil {
		return fail(err)
	}
	if s.ActorToken == "" && s.ActorTokenType != "" {
		return fail(oauth.ErrInvalidRequest("actor_token_type without actor_token (RFC 8693 §2.1)"))
	}
	if rt := f.Get("requested_token_type"); rt != "" {
		switch oauth.ResolveTokenType(rt) {
		case oauth.TokenTypeAccessToken, oauth.TokenTypeJWT:
			s.RequestedTokenType = oauth.ResolveTokenType(rt)
		default:
			return fail(oauth.ErrInvalidRequest("requested_token_type %q is not supported (access_token, jwt)", clipText(rt)))
		}
	} else {
		s.RequestedTokenType = oauth.TokenTypeAccessToken
	}
	s.Audiences = f["audience"]
	s.Resources = f["resource"]
	for _, r := range s.Resources {
		if u, err := url.Parse(r); err != nil || !u.IsAbs() || u.Fragment != "" {
			return fail(oauth.ErrInvalidTarget("resource %q is not an absolute URI without a fragment (RFC 8707 §2)", clipText(r)))
		}
	}
	s.RequestedScopes = strings.Fields(f.Get("scope"))
	return pass("token exchange request is well formed", map[string]string{
		EvidenceSubjectTokenType: s.SubjectTokenType, EvidenceMode: s.Mode(),
	})
}

// checkRepeated refuses a parameter sent more than once, unless allowed.
func checkRepeated(f url.Values, allowed map[string]bool) *oauth.Error {
	for name, values := range f {
		if len(values) > 1 && !allowed[name] {
			return oauth.ErrInvalidRequest("parameter %q is repeated", clipText(name))
		}
	}
	return nil
}

func tokenTypeParam(f url.Values, name string, required bool) (string, *oauth.Error) {
	v := f.Get(name)
	if v == "" {
		if required {
			return "", oauth.ErrInvalidRequest("%s is missing", name)
		}
		return "", nil
	}
	urn := oauth.ResolveTokenType(v)
	if urn == "" || !strings.HasPrefix(v, "urn:") {
		return "", oauth.ErrInvalidRequest("%s %q is not a known token type URN (RFC 8693 §3)", name, clipText(v))
	}
	return urn, nil
}

// stepClient authenticates the client and checks that it may use this
// mode of exchange.
func (e *Engine) stepClient(ctx context.Context, s *State) Outcome {
	c, method, tried, err := e.authenticate(ctx, s.Req, s.Now)
	if err != nil {
		// The id that was tried goes to the audit line: a run of failures
		// for one id is a guessing attack worth seeing.
		var evidence map[string]string
		if tried != "" {
			evidence = map[string]string{EvidenceClientID: clipText(tried)}
		}
		return failWith(err, evidence)
	}
	s.Client, s.AuthMethod = c, method
	if !slices.Contains(c.modes, s.Mode()) {
		return fail(oauth.ErrUnauthorizedClient("client %s may not use %s (allowed: %s)", c.ID, s.Mode(), strings.Join(c.modes, ", ")))
	}
	return pass("client "+c.ID+" authenticated by "+method, map[string]string{EvidenceClientID: c.ID, EvidenceMethod: method})
}

// stepTarget resolves every audience and resource to a registered service
// the client may exchange for (RFC 8693 §2.1, RFC 8707).
func (e *Engine) stepTarget(_ context.Context, s *State) Outcome {
	if len(s.Audiences)+len(s.Resources) == 0 {
		return fail(oauth.ErrInvalidRequest("audience or resource is required: name the service to exchange for"))
	}
	for _, kind := range []struct {
		name   string
		values []string
	}{{"audience", s.Audiences}, {"resource", s.Resources}} {
		for _, t := range kind.values {
			svc, ok := e.targets[t]
			if !ok {
				return fail(oauth.ErrInvalidTarget("%s %q is not a registered service; client %s %s", kind.name, clipText(t), s.Client.ID, e.mayExchangeFor(s.Client)))
			}
			if !s.Client.MayUse(svc.Name) {
				return fail(oauth.ErrInvalidTarget("client %s may not exchange for service %s; it %s", s.Client.ID, svc.Name, e.mayExchangeFor(s.Client)))
			}
			if !slices.Contains(s.Services, svc) {
				s.Services = append(s.Services, svc)
			}
		}
	}
	names := make([]string, len(s.Services))
	for i, svc := range s.Services {
		names[i] = svc.Name
	}
	return pass("target: "+strings.Join(names, ", "), map[string]string{EvidenceServices: strings.Join(names, " ")})
}

// mayExchangeFor tells a client that named a target it may not have which
// ones it may: its own list and nothing more (not the other services, not
// other clients'). The client step ran first, so c has authenticated;
// a request that did not is refused there and hears no list.
func (e *Engine) mayExchangeFor(c *Client) string {
	var names []string
	for _, svc := range e.services {
		if !c.MayUse(svc.Name) {
			continue
		}
		if svc.Audience != svc.Name {
			names = append(names, svc.Name+" (audience "+svc.Audience+")")
		} else {
			names = append(names, svc.Name)
		}
	}
	if len(names) == 0 {
		return "may exchange for no service"
	}
	return "may exchange for: " + strings.Join(names, ", ")
}

// stepSubject validates the subject token with the configuration of the
// IDP that issued it. A token this STS issued is accepted only from a
// client entitled to hold it, and only its act chain is ever carried
// into a new token: an external IDP's act was checked by no one here.
func (e *Engine) stepSubject(ctx context.Context, s *State) Outcome {
	id, o := e.validateToken(ctx, s, "subject_token", s.SubjectToken, s.SubjectTokenType)
	if id == nil {
		return o
	}
	s.Subject = id
	if id.IDP != SelfIDP {
		if id.Act != nil {
			o.Evidence[EvidenceAct] = "not carried over: an act from IDP " + id.IDP + " is not the STS's to vouch for"
		}
		return o
	}
	if err := e.checkHolder(s.Client, "subject_token", id); err != nil {
		return fail(err)
	}
	chain, err := e.ownChain(id)
	if err != nil {
		return fail(err)
	}
	s.subjectChain = chain
	if len(chain) > 0 {
		o.Evidence[EvidenceActDepth] = strconv.Itoa(len(chain))
	}
	if s.carried, err = ownCarried(id); err != nil {
		return fail(err)
	}
	o.Evidence[EvidenceCarried] = strings.Join(s.carried, " ")
	return o
}

// ownCarried reads the carried claim of a token this STS issued: the
// identity claims it carries from the user's IDP (RFC 9068 §2.2.3.1), as
// of the first exchange. A name listed without its claim means the IDP
// had none; a name not listed was not carried, and no rule may be judged
// for want of it (stepWorkflows). A token without carried carries none.
func ownCarried(id *idp.Identity) ([]string, *oauth.Error) {
	raw, present := id.Claims[ClaimCarried]
	if !present {
		return []string{}, nil
	}
	list, ok := raw.([]any)
	carried := make([]string, 0, len(config.CarriableClaims))
	for _, v := range list {
		name, _ := v.(string)
		if !slices.Contains(config.CarriableClaims, name) || slices.Contains(carried, name) {
			ok = false
		}
		carried = append(carried, name)
	}
	if !ok {
		return nil, oauth.ErrInvalidRequest("subject_token: carried is not a list of the claims a token can carry (%s)", strings.Join(config.CarriableClaims, ", "))
	}
	return carried, nil
}

// stepActor validates the actor token of a delegation and holds it to the
// subject's may_act claim (RFC 8693 §4.4): a may_act that is present must
// name the actor; without one, the client's delegation mode (checked by
// the client step) decides, unless a targeted service or the whole
// config sets require_may_act. The new act chain must fit in
// max_delegation_depth.
func (e *Engine) stepActor(ctx context.Context, s *State) Outcome {
	if s.ActorToken == "" {
		return skip("no actor_token: impersonation")
	}
	id, o := e.validateToken(ctx, s, "actor_token", s.ActorToken, s.ActorTokenType)
	if id == nil {
		return o
	}
	s.Actor = id
	if id.IDP == SelfIDP {
		if err := e.checkHolder(s.Client, "actor_token", id); err != nil {
			return fail(err)
		}
		// Workflows judge such an actor on what it carries, as they do a
		// chained subject: a rule must not pass for want of a claim.
		carried, err := ownCarried(id)
		if err != nil {
			return fail(oauth.ErrInvalidRequest("actor_token: %s", strings.TrimPrefix(err.Description, "subject_token: ")))
		}
		s.actorCarried = carried
	}
	if _, delegated := id.Claims["act"]; delegated {
		// The party acting is the one in its act, not its sub: taking it
		// as the actor would name in the new act chain someone who acts
		// for no one here, and drop the one who does.
		return fail(oauth.ErrInvalidRequest("actor_token: it carries act (RFC 8693 §4.1): it is itself a delegated token; present the actor's own token"))
	}
	why, err := e.checkMayAct(s)
	if err != nil {
		return fail(err)
	}
	if depth := len(s.subjectChain) + 1; depth > e.maxDepth {
		return fail(oauth.ErrInvalidRequest("actor_token: the act chain would be %d actors deep; max_delegation_depth is %d", depth, e.maxDepth))
	}
	o.Reason = fmt.Sprintf("%s may act for %s: %s", id.Subject, s.Subject.Subject, why)
	o.Evidence[EvidenceActor], o.Evidence[EvidenceActorIDP] = id.Subject, id.IDP
	o.Evidence[EvidenceActDepth] = strconv.Itoa(len(s.subjectChain) + 1)
	return o
}

// checkMayAct holds the actor to the subject token's may_act (RFC 8693
// §4.4) and says why the actor may act.
func (e *Engine) checkMayAct(s *State) (string, *oauth.Error) {
	sub, actor := s.Subject, s.Actor
	raw, present := sub.Claims["may_act"]
	if !present {
		if e.requireMayAct {
			return "", oauth.ErrInvalidRequest("actor_token: subject token has no may_act and the configuration requires it (require_may_act)")
		}
		for _, svc := range s.Services {
			if svc.RequireMayAct {
				return "", oauth.ErrInvalidRequest("actor_token: subject token has no may_act and service %s requires it (require_may_act)", svc.Name)
			}
		}
		return "the subject token has no may_act; client " + s.Client.ID + " may delegate", nil
	}
	mayAct, ok := raw.(map[string]any)
	if !ok {
		return "", oauth.ErrInvalidRequest("subject_token: may_act is not a JSON object (RFC 8693 §4.4)")
	}
	want, ok := mayAct["sub"].(string)
	if !ok || want == "" {
		return "", oauth.ErrInvalidRequest("subject_token: may_act names no sub; it must name the actor (RFC 8693 §4.4)")
	}
	if want != actor.Subject {
		return "", oauth.ErrInvalidRequest("actor_token: sub %q is not the may_act sub of the subject token", clipText(actor.Subject))
	}
	// A may_act without iss names an actor of the subject's own issuer:
	// "gateway" at one IDP is not "gateway" at every IDP.
	iss, what := sub.Issuer, "the subject's own issuer (may_act has no iss)"
	if v, ok := mayAct["iss"]; ok {
		if iss, ok = v.(string); !ok {
			return "", oauth.ErrInvalidRequest("subject_token: may_act iss is not a string")
		}
		what = "the may_act iss"
	}
	if actor.Issuer != iss {
		return "", oauth.ErrInvalidRequest("actor_token: iss %q is not %s %q", clipText(actor.Issuer), what, clipText(iss))
	}
	// Any other member is a claim identifying the actor too; one this
	// check skipped would let a party the subject did not name act.
	for k, v := range mayAct {
		if k == "sub" || k == "iss" {
			continue
		}
		want, ok := v.(string)
		if got, _ := actor.Claims[k].(string); !ok || got != want {
			return "", oauth.ErrInvalidRequest("actor_token: claim %q does not match the subject's may_act", clipText(k))
		}
	}
	return "named by the subject's may_act", nil
}

// checkHolder accepts a token the STS issued only from a client entitled
// to hold it: the client it was issued to, or a client that serves one of
// its audiences (clients[].serves). Anyone else holding it got it from a
// resource server it was not meant for.
func (e *Engine) checkHolder(c *Client, param string, id *idp.Identity) *oauth.Error {
	if e.holds(c, id) {
		return nil
	}
	owner, _ := id.Claims["client_id"].(string)
	return oauth.ErrInvalidRequest("%s was issued to client %s; client %s may not present it (it is neither that client nor one that serves the token's audience)", param, clipText(owner), c.ID)
}

// holds reports whether client c is entitled to a token the STS issued.
func (e *Engine) holds(c *Client, id *idp.Identity) bool {
	if owner, _ := id.Claims["client_id"].(string); owner == c.ID {
		return true
	}
	if len(c.serves) == 0 {
		return false
	}
	match := func(aud any) bool {
		a, _ := aud.(string)
		svc, ok := e.targets[a]
		return ok && svc.Audience == a && c.serves[svc.Name]
	}
	switch aud := id.Claims["aud"].(type) {
	case string:
		return match(aud)
	case []any:
		return slices.ContainsFunc(aud, match)
	}
	return false
}

// actor is one link of an act chain (RFC 8693 §4.1).
type actor struct{ sub, iss string }

// ownChain reads the act chain of a token this STS issued, newest actor
// first. Only sub and iss are kept; a malformed chain, or one deeper than
// max_delegation_depth, is refused.
func (e *Engine) ownChain(id *idp.Identity) ([]actor, *oauth.Error) {
	raw, present := id.Claims["act"]
	if !present {
		return nil, nil
	}
	var chain []actor
	for {
		act, ok := raw.(map[string]any)
		if !ok {
			return nil, oauth.ErrInvalidRequest("subject_token: act at depth %d is not a JSON object (RFC 8693 §4.1)", len(chain)+1)
		}
		if len(chain) == e.maxDepth {
			return nil, oauth.ErrInvalidRequest("subject_token: its act chain is deeper than max_delegation_depth %d", e.maxDepth)
		}
		sub, _ := act["sub"].(string)
		iss, _ := act["iss"].(string)
		if sub == "" || iss == "" {
			return nil, oauth.ErrInvalidRequest("subject_token: act at depth %d lacks a sub or iss string (RFC 8693 §4.1)", len(chain)+1)
		}
		chain = append(chain, actor{sub: sub, iss: iss})
		if raw, present = act["act"]; !present {
			return chain, nil
		}
	}
}

// validateToken runs a subject or actor token through the registry.
func (e *Engine) validateToken(ctx context.Context, s *State, param, token, tokenType string) (*idp.Identity, Outcome) {
	id, err := e.registry.Validate(ctx, token, tokenType)
	if err != nil {
		o := fail(oauth.ErrInvalidRequest("%s: %v", param, err))
		if errors.Is(err, idp.ErrUnavailable) {
			o = fail(oauth.ErrTemporarilyUnavailable("%s: %v", param, err))
		}
		o.Cause = err // the trace tells an untrusted issuer from a bad signature
		if s.Req.Detail {
			o.Evidence = map[string]string{EvidenceNow: s.Now.UTC().Format(time.RFC3339)}
		}
		return nil, o
	}
	ev := map[string]string{
		EvidenceIDP: id.IDP, EvidenceIssuer: id.Issuer, EvidenceSubject: id.Subject, EvidenceExpiry: id.Expiry.UTC().Format(time.RFC3339),
	}
	if s.Req.Detail {
		identityDetail(ev, id, s.Now)
	}
	return id, pass(param+" valid: "+id.Subject+" from IDP "+id.IDP, ev)
}

// stepScope settles the granted scopes: those requested, or the targets'
// defaults. A scope must be offered by at least one target (each service
// in aud receives the token, so a scope of one of them is fine), and the
// rules of every target that offers it apply: a second audience offering
// the same scope name never relaxes the first's rules. Where the subject
// is a token this STS issued, no scope it lacked is granted unless every
// offering service sets allow_scope_widening.
func (e *Engine) stepScope(_ context.Context, s *State) Outcome {
	requested := s.RequestedScopes
	source := "requested"
	var defaults []string
	if len(requested) == 0 {
		source = "default"
		for _, svc := range s.Services {
			requested = append(requested, svc.DefaultScopes...)
		}
		defaults = requested
		if defaults == nil {
			defaults = []string{}
		}
	}
	var ev map[string]string // detail only: built before a refusal can need it
	if s.Req.Detail {
		ev = map[string]string{}
		scopeDetail(ev, s, defaults)
	}
	if len(requested) == 0 {
		return failWith(oauth.ErrInvalidScope("no scope requested and %s has no default scopes", s.Services[0].Name), ev)
	}
	own := s.Subject.IDP == SelfIDP
	if own {
		for _, svc := range s.Services {
			if svc.SubjectScopesOnly {
				// The scopes of a token this STS issued are the ones it
				// granted, not the ones the user's IDP did.
				return failWith(oauth.ErrInvalidRequest("subject_token: %s grants only scopes the user's IDP granted (subject_scopes_only), and a token this STS issued does not carry them; exchange the IDP's token instead", svc.Name), ev)
			}
		}
	}
	granted := make([]string, 0, len(requested))
	for _, sc := range requested {
		if slices.Contains(granted, sc) {
			continue
		}
		offered := false
		for _, svc := range s.Services {
			if !svc.offers(sc) {
				continue
			}
			offered = true
			held := slices.Contains(s.Subject.Scopes, sc)
			if svc.SubjectScopesOnly && !held {
				return failWith(oauth.ErrInvalidScope("scope %q is not among the subject token's scopes, and %s grants no more than those", clipText(sc), svc.Name), ev)
			}
			if own && !svc.AllowScopeWidening && !held {
				// Along a chain (docs/flowchart.md step 6): the token's own
				// service never widens; another service grants a scope
				// the token lacks only when the request names it and the
				// user's stored consent gates it (the consent step checks
				// it), never as a default.
				if inAudience(s.Subject, svc.Audience) {
					return failWith(oauth.ErrInvalidScope("scope %q is not among the scopes of the subject token this STS issued, and %s does not allow widening them (allow_scope_widening)", clipText(sc), svc.Name), ev)
				}
				if def := svc.Scopes[sc]; !def.Consent || source == "default" {
					return failWith(oauth.ErrInvalidScope("scope %q is not among the scopes of the subject token this STS issued; %s grants such a scope only when the request names it and it needs the user's consent (consent: true), or when it allows widening (allow_scope_widening)", clipText(sc), svc.Name), ev)
				}
			}
		}
		if !offered {
			return failWith(oauth.ErrInvalidScope("scope %q is not offered by %s", clipText(sc), s.serviceNames()), ev)
		}
		granted = append(granted, sc)
	}
	s.Scopes = granted
	if ev == nil {
		ev = make(map[string]string, 1)
	}
	ev[EvidenceScope] = strings.Join(granted, " ")
	return pass(source+" scopes: "+ev[EvidenceScope], ev)
}

// inAudience reports whether the token of id names audience in its aud.
func inAudience(id *idp.Identity, audience string) bool {
	switch aud := id.Claims["aud"].(type) {
	case string:
		return aud == audience
	case []any:
		return slices.Contains(aud, any(audience))
	}
	return false
}

func (s *State) serviceNames() string {
	names := make([]string, len(s.Services))
	for i, svc := range s.Services {
		names[i] = svc.Name
	}
	return strings.Join(names, ", ")
}

// stepConsent requires a stored consent for every granted scope that needs
// one. The exchange never asks: consent is given elsewhere, beforehand. A
// consent is looked up for the IDP the user came from as well as the
// user: the same sub from another trusted IDP (a partner, a SAML IDP whose
// NameIDs users influence) is another user and rides on nothing.
func (e *Engine) stepConsent(ctx context.Context, s *State) Outcome {
	user, idpName := s.Subject.Subject, UserIDP(s.Subject)
	var ev map[string]string // detail only
	if s.Req.Detail {
		ev = map[string]string{EvidenceIDP: idpName, EvidenceUser: user}
	}
	checked := 0
	for _, svc := range s.Services {
		need := svc.NeedConsent(s.Scopes)
		if len(need) == 0 {
			continue
		}
		checked += len(need)
		missing, err := e.store.Missing(ctx, idpName, user, svc.Name, need)
		if errors.Is(err, store.ErrUnavailable) {
			oerr := oauth.ErrTemporarilyUnavailable("consent: the consent store is unavailable; retry shortly")
			oerr.Cause = err
			return fail(oerr)
		}
		if err != nil {
			return failWith(oauth.ErrServer(fmt.Errorf("consent store: %w", err)), ev)
		}
		if ev != nil {
			var found []string
			for _, sc := range need {
				if !slices.Contains(missing, sc) {
					found = append(found, sc)
				}
			}
			ev[EvidenceFoundPrefix+svc.Name] = strings.Join(found, " ")
			ev[EvidenceMissingPrefix+svc.Name] = strings.Join(missing, " ")
		}
		if len(missing) > 0 {
			return failWith(oauth.ErrConsentRequired("%s of IDP %s has not consented to %s for %s",
				clipText(user), clipText(idpName), strings.Join(missing, " "), svc.Name), ev)
		}
	}
	if checked == 0 {
		return skip("no granted scope needs consent")
	}
	if ev == nil {
		ev = map[string]string{EvidenceIDP: idpName, EvidenceUser: user}
	}
	return pass(user+" of IDP "+idpName+" has consented to every scope that needs it", ev)
}

// UserIDP is the IDP the subject's user came from: the validating IDP, or
// for the STS's own (chained) tokens the original IDP its idp claim
// carries, so a chained exchange is held to the same consents and the
// issued token names the same IDP as the first.
func UserIDP(id *idp.Identity) string {
	if id.IDP == SelfIDP {
		if orig, ok := id.Claims["idp"].(string); ok && orig != "" {
			return orig
		}
	}
	return id.IDP
}

// stepWorkflows runs each target service's workflows, in the order the
// config lists them, after consent (docs/workflows.md). A rule that denies
// is invalid_request (RFC 8693 §2.2.2); one that cannot be evaluated is
// refused the same way; a webhook that gives no usable answer is
// temporarily_unavailable. Nothing fails open.
func (e *Engine) stepWorkflows(ctx context.Context, s *State) Outcome {
	var evidence map[string]string
	var in *workflow.Input
	for _, svc := range s.Services {
		if len(svc.Rules) != len(svc.Workflows) { // a config that did not go through config.Parse
			return fail(oauth.ErrServer(fmt.Errorf("service %s: workflows %v are not compiled", svc.Name, svc.Workflows)))
		}
		for _, w := range svc.Rules {
			// A chained token is judged on the claims it carries; a rule
			// reading one it does not carry would pass for want of it,
			// so it is refused. The same holds of an actor token the STS
			// issued.
			if err := s.judgeable(w, svc); err != nil {
				return failWith(err, s.detail(evidence))
			}
			if in == nil {
				in = s.workflowInput()
				evidence = map[string]string{}
			}
			in.Service = workflow.Service{Name: svc.Name, Audience: svc.Audience}
			key := EvidenceWorkflowPrefix + w.Name()
			if _, dup := evidence[key]; dup { // the same workflow for a second service
				key += "@" + svc.Name
			}
			v, err := w.Run(ctx, in)
			if s.Req.Detail && (err != nil || !v.Allow) {
				evidence[key] = "deny"
				if err != nil {
					evidence[key] = "error"
				}
			}
			switch {
			case errors.Is(err, workflow.ErrUnavailable):
				o := failWith(oauth.ErrTemporarilyUnavailable("workflow %s: %v; try again later", w.Name(), err), s.detail(evidence))
				o.Cause = err // the server's log reads its detail (the webhook URL, redacted)
				return o
			case err != nil:
				return failWith(oauth.ErrInvalidRequest("workflow %s: %v", w.Name(), err), s.detail(evidence))
			case !v.Allow && v.Reason == "":
				return failWith(oauth.ErrInvalidRequest("workflow %s denied the exchange for %s", w.Name(), svc.Name), s.detail(evidence))
			case !v.Allow:
				return failWith(oauth.ErrInvalidRequest("workflow %s denied: %s", w.Name(), v.Reason), s.detail(evidence))
			}
			evidence[key] = "pass"
			if len(v.Claims) > 0 {
				if a, b, clash := foldClash(s.Claims, v.Claims); clash {
					// A Go resource server would read either for the other
					// (encoding/json matches names without case), and the
					// STS itself refuses such a token when it comes back.
					return failWith(oauth.ErrServer(fmt.Errorf("workflow %s sets claim %q, which differs only in case from %q; rename one", w.Name(), clipText(a), clipText(b))), s.detail(evidence))
				}
				if s.Claims == nil {
					s.Claims = v.Claims // the workflow's own map: no copy for the first
				} else {
					maps.Copy(s.Claims, v.Claims) // a later workflow's value wins
				}
				evidence[key] = "claims " + strings.Join(slices.Sorted(maps.Keys(v.Claims)), " ")
			}
		}
	}
	if in == nil {
		return skip("no workflow is configured for " + s.serviceNames())
	}
	return pass(strconv.Itoa(len(evidence))+" workflow(s) allowed the exchange", evidence)
}

// judgeable refuses a workflow that would read, of a chained subject or
// of an actor token the STS issued, a claim that token does not carry
// (docs/workflows.md). A webhook is sent what the token carries; what it
// reads is its own to check.
func (s *State) judgeable(w *workflow.Workflow, svc *Service) *oauth.Error {
	if w.IsWebhook() {
		return nil
	}
	if s.Subject.IDP == SelfIDP {
		names, whole := w.SubjectClaims()
		if err := readsCarried(w, svc, "subject_token", "subject", names, whole, s.carried); err != nil {
			return err
		}
	}
	if s.Actor != nil && s.Actor.IDP == SelfIDP {
		names, whole := w.ActorClaims()
		if err := readsCarried(w, svc, "actor_token", "actor", names, whole, s.actorCarried); err != nil {
			return err
		}
	}
	return nil
}

// readsCarried refuses a rule that reads of variable v (subject or
// actor) a claim a token the STS issued, presented as param, does not
// carry, or reads v as a whole.
func readsCarried(w *workflow.Workflow, svc *Service, param, v string, names []string, whole bool, carried []string) *oauth.Error {
	carries := func() string { return strings.Join(append(slices.Clone(config.ChainedAlways), carried...), " ") }
	if whole {
		return oauth.ErrInvalidRequest("%s: workflow %s of %s reads %s as a whole, and a token this STS issued carries only some of the user's claims (%s): it cannot be judged on them", param, w.Name(), svc.Name, v, carries())
	}
	for _, name := range names {
		if !slices.Contains(config.ChainedAlways, name) && !slices.Contains(carried, name) {
			return oauth.ErrInvalidRequest("%s: workflow %s of %s reads %s.%s, which the %s, issued by this STS, does not carry (it carries %s): refused rather than judged without it", param, w.Name(), svc.Name, v, clipText(name), strings.ReplaceAll(param, "_", " "), carries())
		}
	}
	return nil
}

// chainedSubject is what workflows see of a chained subject: the user's
// original sub and idp, the act and may_act the STS signed, and the
// identity claims the token carries.
func (s *State) chainedSubject() map[string]any {
	return chainedClaims(s.Subject, s.carried)
}

// chainedClaims is what workflows see of a token the STS issued, id: the
// user's original sub and idp, the act and may_act it signed, and the
// identity claims it carries.
func chainedClaims(id *idp.Identity, carried []string) map[string]any {
	m := make(map[string]any, len(config.ChainedAlways)+len(carried))
	m["sub"], m["idp"] = id.Subject, UserIDP(id)
	for _, name := range append([]string{"act", "may_act"}, carried...) {
		if v, ok := id.Claims[name]; ok {
			m[name] = v
		}
	}
	return m
}

// detail is ev when the request asks for detail evidence, else nil.
func (s *State) detail(ev map[string]string) map[string]string {
	if s.Req.Detail {
		return ev
	}
	return nil
}

// workflowInput is what the workflows see of the exchange so far.
func (s *State) workflowInput() *workflow.Input {
	subject := s.Subject.Claims
	if s.Subject.IDP == SelfIDP {
		subject = s.chainedSubject()
	}
	in := &workflow.Input{
		Subject: subject,
		Client:  s.Client.ID,
		Scopes:  s.Scopes,
		Request: workflow.Request{
			Audiences: s.Audiences, Resources: s.Resources,
			RequestedTokenType: s.RequestedTokenType, Mode: s.Mode(),
		},
		Now: s.Now,
	}
	if s.Actor != nil {
		in.Actor = s.Actor.Claims
		if s.Actor.IDP == SelfIDP {
			in.Actor = chainedClaims(s.Actor, s.actorCarried)
		}
	}
	return in
}

// stepIssue mints the access token: exp is the least of the services'
// lifetimes from now and the subject token's own expiry, so an exchange
// never extends a session.
func (e *Engine) stepIssue(_ context.Context, s *State) Outcome {
	lifetime := s.Services[0].TokenLifetime
	aud := make([]string, 0, len(s.Services))
	for _, svc := range s.Services {
		lifetime = min(lifetime, svc.TokenLifetime)
		aud = append(aud, svc.Audience)
	}
	// JWT times are whole seconds; iat and exp are taken from the same
	// truncated instant so that expires_in is exactly exp - iat.
	now := s.Now.Truncate(time.Second)
	exp := now.Add(lifetime)
	if s.Subject.Expiry.Before(exp) {
		exp = s.Subject.Expiry
	}
	if s.Actor != nil && s.Actor.Expiry.Before(exp) {
		exp = s.Actor.Expiry
	}
	if !exp.After(now) {
		return fail(oauth.ErrInvalidRequest("subject_token expires before a token could be issued"))
	}
	claims := &AccessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    e.issuer,
			Subject:   s.Subject.Subject,
			Audience:  aud,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
			ID:        newJTI(),
		},
		ClientID: s.Client.ID,
		Scope:    strings.Join(s.Scopes, " "),
		IDP:      UserIDP(s.Subject),
		Act:      actClaim(s),
		MayAct:   mayActClaim(s.Subject),
		Extra:    s.Claims,
	}
	claims.carry(s)
	token, err := e.signer.Sign(claims)
	if err != nil {
		return fail(oauth.ErrServer(fmt.Errorf("sign: %w", err)))
	}
	expiresIn := exp.Unix() - now.Unix()
	s.Result = &oauth.Result{
		AccessToken:     token,
		IssuedTokenType: s.RequestedTokenType,
		TokenType:       "Bearer",
		ExpiresIn:       expiresIn,
		Scope:           claims.Scope,
	}
	ev := map[string]string{
		EvidenceJTI: claims.ID, EvidenceExpiry: exp.UTC().Format(time.RFC3339), EvidenceKeyID: e.signer.KeyID(),
	}
	if s.Req.Detail {
		ev[EvidenceAlgorithm] = e.signer.Alg()
		ev[EvidenceNow] = s.Now.UTC().Format(time.RFC3339)
		ev[EvidenceExpiresIn] = exp.Sub(now).String()
		claimsDetail(ev, claims)
	}
	return pass("issued for "+strings.Join(aud, " ")+", expires in "+strconv.FormatInt(expiresIn, 10)+"s", ev)
}

// carry sets the identity claims the issued token carries from the
// user's IDP (RFC 9068 §2.2.3.1): those every target service carries
// (services[].carry_claims) and, for a chained subject, that its token
// carried; the values are the subject's as validated. carried lists
// them, so that the next hop tells a claim the IDP did not have from one
// that was not carried.
func (c *AccessClaims) carry(s *State) {
	var names []string
	for _, name := range config.CarriableClaims {
		all := true
		for _, svc := range s.Services {
			all = all && slices.Contains(svc.Carried(), name)
		}
		if all && (s.Subject.IDP != SelfIDP || slices.Contains(s.carried, name)) {
			names = append(names, name)
		}
	}
	for _, name := range names {
		v, ok := s.Subject.Claims[name]
		if !ok {
			continue
		}
		if v == nil {
			v = json.RawMessage("null") // present as null, as the IDP sent it
		}
		switch name {
		case "groups":
			c.Groups = v
		case "roles":
			c.Roles = v
		case "entitlements":
			c.Entitlements = v
		}
	}
	c.Carried = names
}

// mayActClaim is the subject's may_act, carried into the issued token so
// that the restriction outlives a chained exchange: without it, a client
// could exchange the user's token once and then delegate to any actor its
// mode allows. A may_act without iss named an actor of the subject's own
// issuer (checkMayAct); the carried copy names that issuer, since the
// issued token's own issuer is the STS. A malformed may_act is carried as
// it is, to be refused at the next delegation as it would have been now.
func mayActClaim(sub *idp.Identity) any {
	raw, ok := sub.Claims["may_act"]
	if !ok {
		return nil
	}
	if raw == nil {
		return json.RawMessage("null") // refused at a delegation, as now
	}
	m, isObject := raw.(map[string]any)
	if !isObject || sub.IDP == SelfIDP {
		return raw
	}
	if _, has := m["iss"]; has {
		return raw
	}
	c := maps.Clone(m)
	c["iss"] = sub.Issuer
	return c
}

// actClaim is the act claim of the issued token (RFC 8693 §4.1), newest
// actor outermost: in delegation the actor, with the subject's earlier
// chain nested under it; in impersonation the subject's chain as it was.
// Only chains read from the STS's own tokens are carried (ownChain), and
// only sub and iss of each actor. An actor token that carries act of its
// own is refused (stepActor).
func actClaim(s *State) map[string]any {
	var act map[string]any
	link := func(a actor) {
		m := map[string]any{"sub": a.sub, "iss": a.iss}
		if act != nil {
			m["act"] = act
		}
		act = m
	}
	for i := len(s.subjectChain) - 1; i >= 0; i-- {
		link(s.subjectChain[i])
	}
	if s.Actor != nil {
		link(actor{sub: s.Actor.Subject, iss: s.Actor.Issuer})
	}
	return act
}

// foldClash finds two member names that differ only in case: between the
// claims already set and the new ones (an exact repeat is a later
// workflow's value, which wins), or inside any object nested in the new
// ones.
func foldClash(set, add map[string]any) (string, string, bool) {
	for k := range add {
		for prev := range set {
			if k != prev && strings.EqualFold(k, prev) {
				return k, prev, true
			}
		}
	}
	var nested func(v any) (string, string, bool)
	nested = func(v any) (string, string, bool) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				for y := range v {
					if k != y && strings.EqualFold(k, y) {
						return k, y, true
					}
				}
				if a, b, ok := nested(x); ok {
					return a, b, true
				}
			}
		case []any:
			for _, x := range v {
				if a, b, ok := nested(x); ok {
					return a, b, true
				}
			}
		}
		return "", "", false
	}
	return nested(add)
}
