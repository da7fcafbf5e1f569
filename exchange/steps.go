package exchange

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/idtx/idtx/idp"
	"github.com/idtx/idtx/workflow"
)

// Size limits of a request (SECURITY.md: "huge tokens").
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
	case GrantTypeTokenExchange:
	case "":
		return fail(ErrInvalidRequest("grant_type is missing"))
	default:
		return fail(ErrUnsupportedGrantType("grant_type %q is not supported; use %s", clipText(gt), GrantTypeTokenExchange))
	}
	s.SubjectToken = f.Get("subject_token")
	if s.SubjectToken == "" {
		return fail(ErrInvalidRequest("subject_token is missing"))
	}
	if len(s.SubjectToken) > MaxTokenBytes {
		return fail(ErrInvalidRequest("subject_token is longer than %d bytes", MaxTokenBytes))
	}
	var err *Error
	if s.SubjectTokenType, err = tokenTypeParam(f, "subject_token_type", true); err != nil {
		return fail(err)
	}
	s.ActorToken = f.Get("actor_token")
	if len(s.ActorToken) > MaxTokenBytes {
		return fail(ErrInvalidRequest("actor_token is longer than %d bytes", MaxTokenBytes))
	}
	if s.ActorTokenType, err = tokenTypeParam(f, "actor_token_type", s.ActorToken != ""); err != nil {
		return fail(err)
	}
	if s.ActorToken == "" && s.ActorTokenType != "" {
		return fail(ErrInvalidRequest("actor_token_type without actor_token (RFC 8693 §2.1)"))
	}
	if rt := f.Get("requested_token_type"); rt != "" {
		switch ResolveTokenType(rt) {
		case idp.TokenTypeAccessToken, idp.TokenTypeJWT:
			s.RequestedTokenType = ResolveTokenType(rt)
		default:
			return fail(ErrInvalidRequest("requested_token_type %q is not supported (access_token, jwt)", clipText(rt)))
		}
	} else {
		s.RequestedTokenType = idp.TokenTypeAccessToken
	}
	s.Audiences = f["audience"]
	s.Resources = f["resource"]
	for _, r := range s.Resources {
		if u, err := url.Parse(r); err != nil || !u.IsAbs() || u.Fragment != "" {
			return fail(ErrInvalidTarget("resource %q is not an absolute URI without a fragment (RFC 8707 §2)", clipText(r)))
		}
	}
	s.RequestedScopes = strings.Fields(f.Get("scope"))
	return pass("token exchange request is well formed", map[string]string{
		"subject_token_type": s.SubjectTokenType, "mode": s.Mode(),
	})
}

// checkRepeated refuses a parameter sent more than once, unless allowed.
func checkRepeated(f url.Values, allowed map[string]bool) *Error {
	for name, values := range f {
		if len(values) > 1 && !allowed[name] {
			return ErrInvalidRequest("parameter %q is repeated", clipText(name))
		}
	}
	return nil
}

func tokenTypeParam(f url.Values, name string, required bool) (string, *Error) {
	v := f.Get(name)
	if v == "" {
		if required {
			return "", ErrInvalidRequest("%s is missing", name)
		}
		return "", nil
	}
	urn := ResolveTokenType(v)
	if urn == "" || !strings.HasPrefix(v, "urn:") {
		return "", ErrInvalidRequest("%s %q is not a known token type URN (RFC 8693 §3)", name, clipText(v))
	}
	return urn, nil
}

// stepClient authenticates the client and checks that it may use this
// mode of exchange.
func (e *Engine) stepClient(ctx context.Context, s *State) Outcome {
	c, method, err := e.authenticate(ctx, s.Req, s.Now)
	if err != nil {
		return fail(err)
	}
	s.Client, s.AuthMethod = c, method
	if !slices.Contains(c.modes, s.Mode()) {
		return fail(ErrUnauthorizedClient("client %s may not use %s (allowed: %s)", c.ID, s.Mode(), strings.Join(c.modes, ", ")))
	}
	return pass("client "+c.ID+" authenticated by "+method, map[string]string{"client_id": c.ID, "method": method})
}

// stepTarget resolves every audience and resource to a registered service
// the client may exchange for (RFC 8693 §2.1, RFC 8707).
func (e *Engine) stepTarget(_ context.Context, s *State) Outcome {
	if len(s.Audiences)+len(s.Resources) == 0 {
		return fail(ErrInvalidRequest("audience or resource is required: name the service to exchange for"))
	}
	for _, kind := range []struct {
		name   string
		values []string
	}{{"audience", s.Audiences}, {"resource", s.Resources}} {
		for _, t := range kind.values {
			svc, ok := e.targets[t]
			if !ok {
				return fail(ErrInvalidTarget("%s %q is not a registered service", kind.name, clipText(t)))
			}
			if !s.Client.MayUse(svc.Name) {
				return fail(ErrInvalidTarget("client %s may not exchange for service %s", s.Client.ID, svc.Name))
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
	return pass("target: "+strings.Join(names, ", "), map[string]string{"services": strings.Join(names, " ")})
}

// stepSubject validates the subject token with the configuration of the
// IDP that issued it.
func (e *Engine) stepSubject(ctx context.Context, s *State) Outcome {
	id, o := e.validateToken(ctx, "subject_token", s.SubjectToken, s.SubjectTokenType)
	if id == nil {
		return o
	}
	s.Subject = id
	return o
}

// stepActor validates the actor token of a delegation and holds it to the
// subject's may_act claim (RFC 8693 §4.4).
func (e *Engine) stepActor(ctx context.Context, s *State) Outcome {
	if s.ActorToken == "" {
		return skip("no actor_token: impersonation")
	}
	id, o := e.validateToken(ctx, "actor_token", s.ActorToken, s.ActorTokenType)
	if id == nil {
		return o
	}
	s.Actor = id
	if s.Subject.MayAct == nil {
		return fail(ErrInvalidRequest("actor_token: the subject token has no may_act claim allowing %s to act", clipText(id.Subject)))
	}
	if sub, _ := s.Subject.MayAct["sub"].(string); sub != id.Subject {
		return fail(ErrInvalidRequest("actor_token: sub %q is not the may_act sub of the subject token", clipText(id.Subject)))
	}
	if iss, ok := s.Subject.MayAct["iss"].(string); ok && iss != id.Issuer {
		return fail(ErrInvalidRequest("actor_token: iss %q is not the may_act iss %q", clipText(id.Issuer), clipText(iss)))
	}
	return pass(fmt.Sprintf("%s may act for %s", id.Subject, s.Subject.Subject), map[string]string{
		"actor": id.Subject, "actor_idp": id.IDP,
	})
}

// validateToken runs a subject or actor token through the registry.
func (e *Engine) validateToken(ctx context.Context, param, token, tokenType string) (*idp.Identity, Outcome) {
	id, err := e.registry.Validate(ctx, token, tokenType)
	if err != nil {
		if errors.Is(err, idp.ErrUnavailable) {
			return nil, fail(ErrTemporarilyUnavailable("%s: %v", param, err))
		}
		return nil, fail(ErrInvalidRequest("%s: %v", param, err))
	}
	return id, pass(param+" valid: "+id.Subject+" from IDP "+id.IDP, map[string]string{
		"idp": id.IDP, "iss": id.Issuer, "sub": id.Subject, "exp": id.Expiry.UTC().Format(time.RFC3339),
	})
}

// stepScope settles the granted scopes: those requested, or the targets'
// defaults; each offered by a target; within the subject's own scopes
// where the service says so.
func (e *Engine) stepScope(_ context.Context, s *State) Outcome {
	requested := s.RequestedScopes
	source := "requested"
	if len(requested) == 0 {
		source = "default"
		for _, svc := range s.Services {
			requested = append(requested, svc.DefaultScopes...)
		}
		if len(requested) == 0 {
			return fail(ErrInvalidScope("no scope requested and %s has no default scopes", s.Services[0].Name))
		}
	}
	granted := make([]string, 0, len(requested))
	for _, sc := range requested {
		if slices.Contains(granted, sc) {
			continue
		}
		svc := s.serviceOffering(sc)
		if svc == nil {
			return fail(ErrInvalidScope("scope %q is not offered by %s", clipText(sc), s.serviceNames()))
		}
		if svc.SubjectScopesOnly && !slices.Contains(s.Subject.Scopes, sc) {
			return fail(ErrInvalidScope("scope %q is not among the subject token's scopes, and %s grants no more than those", sc, svc.Name))
		}
		granted = append(granted, sc)
	}
	s.Scopes = granted
	return pass(source+" scopes: "+strings.Join(granted, " "), map[string]string{"scope": strings.Join(granted, " ")})
}

func (s *State) serviceOffering(scope string) *Service {
	for _, svc := range s.Services {
		if svc.offers(scope) {
			return svc
		}
	}
	return nil
}

func (s *State) serviceNames() string {
	names := make([]string, len(s.Services))
	for i, svc := range s.Services {
		names[i] = svc.Name
	}
	return strings.Join(names, ", ")
}

// stepConsent requires a stored consent for every granted scope that needs
// one. The exchange never asks: consent is given elsewhere, beforehand.
func (e *Engine) stepConsent(ctx context.Context, s *State) Outcome {
	user := s.Subject.Subject
	checked := 0
	for _, svc := range s.Services {
		var need []string
		for _, sc := range s.Scopes {
			if def, ok := svc.Scopes[sc]; ok && def.Consent {
				need = append(need, sc)
			}
		}
		if len(need) == 0 {
			continue
		}
		checked += len(need)
		missing, err := e.store.Missing(ctx, user, svc.Name, need)
		if err != nil {
			return fail(ErrServer(fmt.Errorf("consent store: %w", err)))
		}
		if len(missing) > 0 {
			return fail(ErrConsentRequired("%s has not consented to %s for %s", clipText(user), strings.Join(missing, " "), svc.Name))
		}
	}
	if checked == 0 {
		return skip("no granted scope needs consent")
	}
	return pass(user+" has consented to every scope that needs it", map[string]string{"user": user})
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
			return fail(ErrServer(fmt.Errorf("service %s: workflows %v are not compiled", svc.Name, svc.Workflows)))
		}
		for _, w := range svc.Rules {
			if in == nil {
				in = s.workflowInput()
				evidence = map[string]string{}
			}
			in.Service = workflow.Service{Name: svc.Name, Audience: svc.Audience}
			key := "workflow." + w.Name()
			if _, dup := evidence[key]; dup { // the same workflow for a second service
				key += "@" + svc.Name
			}
			v, err := w.Run(ctx, in)
			switch {
			case errors.Is(err, workflow.ErrUnavailable):
				return fail(ErrTemporarilyUnavailable("workflow %s: %v; try again later", w.Name(), err))
			case err != nil:
				return fail(ErrInvalidRequest("workflow %s: %v", w.Name(), err))
			case !v.Allow && v.Reason == "":
				return fail(ErrInvalidRequest("workflow %s denied the exchange for %s", w.Name(), svc.Name))
			case !v.Allow:
				return fail(ErrInvalidRequest("workflow %s denied: %s", w.Name(), v.Reason))
			}
			evidence[key] = "pass"
			if len(v.Claims) > 0 {
				if s.Claims == nil {
					s.Claims = make(map[string]any, len(v.Claims))
				}
				for _, k := range slices.Sorted(maps.Keys(v.Claims)) {
					s.Claims[k] = v.Claims[k] // a later workflow's value wins
				}
				evidence[key] = "claims " + strings.Join(slices.Sorted(maps.Keys(v.Claims)), " ")
			}
		}
	}
	if in == nil {
		return skip("no workflow is configured for " + s.serviceNames())
	}
	return pass(fmt.Sprintf("%d workflow(s) allowed the exchange", len(evidence)), evidence)
}

// workflowInput is what the workflows see of the exchange so far.
func (s *State) workflowInput() *workflow.Input {
	in := &workflow.Input{
		Subject: s.Subject.Claims,
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
		return fail(ErrInvalidRequest("subject_token expires before a token could be issued"))
	}
	idpName := s.Subject.IDP
	if idpName == SelfIDP { // chained: keep the IDP the user came from
		if orig, ok := s.Subject.Claims["idp"].(string); ok {
			idpName = orig
		}
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
		IDP:      idpName,
		Act:      actClaim(s),
		Extra:    s.Claims,
	}
	token, err := e.signer.Sign(claims)
	if err != nil {
		return fail(ErrServer(fmt.Errorf("sign: %w", err)))
	}
	expiresIn := exp.Unix() - now.Unix()
	s.Result = &Result{
		AccessToken:     token,
		IssuedTokenType: s.RequestedTokenType,
		TokenType:       "Bearer",
		ExpiresIn:       expiresIn,
		Scope:           claims.Scope,
	}
	return pass("issued for "+strings.Join(aud, " ")+", expires in "+strconv.FormatInt(expiresIn, 10)+"s", map[string]string{
		"jti": claims.ID, "exp": exp.UTC().Format(time.RFC3339), "kid": e.signer.KeyID(),
	})
}

// actClaim is the act claim of a delegation (RFC 8693 §4.1): the actor,
// with any act it already carried nested inside to record the chain. An
// impersonation of a chained token keeps the chain it had.
func actClaim(s *State) map[string]any {
	if s.Actor == nil {
		return s.Subject.Act
	}
	act := map[string]any{"sub": s.Actor.Subject, "iss": s.Actor.Issuer}
	if s.Actor.Act != nil {
		act["act"] = s.Actor.Act
	}
	return act
}
