package exchange_test

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/idtx/idtx/exchange"
	"github.com/idtx/idtx/oauth"
	"github.com/idtx/idtx/store"
)

// detailEnv is the test env with two workflows on billing-api.
func detailEnv(t *testing.T) *env {
	return newEnvWith(t, store.NewMemory(), withWorkflows("no-interns, tenant", `
  - name: no-interns
    deny_if: 'has(subject.groups) && "interns" in subject.groups'
    message: interns may not call billing
  - name: tenant
    claims: {tenant: 'subject.iss.split("/")[2]'}
`))
}

func walkDetail(t *testing.T, e *env, form map[string][]string, detail bool) exchange.Trace {
	t.Helper()
	req := &exchange.Request{Form: form, Basic: &exchange.BasicAuth{ID: "demo-client", Secret: "demo-secret"}, Detail: detail}
	_, trace, _ := e.engine.Run(t.Context(), req)
	return trace
}

func evidenceOf(t *testing.T, trace exchange.Trace, step string) map[string]string {
	t.Helper()
	for _, en := range trace {
		if en.Step == step {
			return en.Evidence
		}
	}
	t.Fatalf("no %s step in the trace", step)
	return nil
}

func wantKeys(t *testing.T, step string, ev map[string]string, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if v, ok := ev[k]; !ok {
			t.Errorf("%s: evidence %s missing (have %v)", step, k, ev)
		} else if strings.HasPrefix(k, exchange.EvidenceFoundPrefix) || strings.HasPrefix(k, exchange.EvidenceMissingPrefix) || k == exchange.EvidenceRequested {
			continue // may be empty
		} else if v == "" {
			t.Errorf("%s: evidence %s is empty", step, k)
		}
	}
}

// An accepted delegation with detail records every detail key, step by
// step; with detail off none of them is built.
func TestEvidenceDetailAccepted(t *testing.T) {
	e := detailEnv(t)
	subject := e.subject(jwt.MapClaims{"may_act": map[string]any{"sub": "gateway"}, "nbf": e.now.Add(-time.Minute).Unix()})
	actor := e.corp.sign(t, e.claims(jwt.MapClaims{"sub": "gateway"}), nil)
	form := e.form(subject, "audience", "billing-api", "scope", "billing:read", "actor_token", actor, "actor_token_type", oauth.TokenTypeJWT)
	trace := walkDetail(t, e, form, true)
	if last := trace[len(trace)-1]; last.Step != exchange.StepIssue || last.Status != exchange.Pass {
		t.Fatalf("not accepted: %+v", last)
	}
	idKeys := []string{exchange.EvidenceIDP, exchange.EvidenceMatched, exchange.EvidenceKeyID, exchange.EvidenceAlgorithm,
		exchange.EvidenceNow, exchange.EvidenceExpiry, exchange.EvidenceExpiresIn, exchange.EvidenceIssuedAt, exchange.EvidenceSkew}
	sub := evidenceOf(t, trace, exchange.StepSubject)
	wantKeys(t, "subject", sub, append(idKeys, exchange.EvidenceNotBefore)...)
	if want := "iss " + sub[exchange.EvidenceIssuer] + " is IDP corp's issuer"; sub[exchange.EvidenceMatched] != want {
		t.Errorf("matched %q, want %q", sub[exchange.EvidenceMatched], want)
	}
	if sub[exchange.EvidenceAlgorithm] != "RS256" || sub[exchange.EvidenceExpiresIn] == "" {
		t.Errorf("subject evidence %v", sub)
	}
	wantKeys(t, "actor", evidenceOf(t, trace, exchange.StepActor), append(idKeys, exchange.EvidenceActor, exchange.EvidenceActorIDP)...)
	scope := evidenceOf(t, trace, exchange.StepScope)
	wantKeys(t, "scope", scope, exchange.EvidenceRequested, exchange.EvidenceAllowedPrefix+"billing-api", exchange.EvidenceScope)
	if scope[exchange.EvidenceAllowedPrefix+"billing-api"] != "billing:read billing:write" || scope[exchange.EvidenceRequested] != "billing:read" {
		t.Errorf("scope evidence %v", scope)
	}
	con := evidenceOf(t, trace, exchange.StepConsent)
	wantKeys(t, "consent", con, exchange.EvidenceIDP, exchange.EvidenceUser, exchange.EvidenceFoundPrefix+"billing-api", exchange.EvidenceMissingPrefix+"billing-api")
	if con[exchange.EvidenceFoundPrefix+"billing-api"] != "billing:read" || con[exchange.EvidenceMissingPrefix+"billing-api"] != "" {
		t.Errorf("consent evidence %v", con)
	}
	wf := evidenceOf(t, trace, exchange.StepWorkflows)
	if wf[exchange.EvidenceWorkflowPrefix+"no-interns"] != "pass" || wf[exchange.EvidenceWorkflowPrefix+"tenant"] != "claims tenant" {
		t.Errorf("workflow evidence %v", wf)
	}
	iss := evidenceOf(t, trace, exchange.StepIssue)
	var claimKeys []string
	for _, c := range []string{"iss", "sub", "aud", "exp", "iat", "jti", "scope", "client_id", "idp", "act", "tenant"} {
		claimKeys = append(claimKeys, exchange.EvidenceClaimPrefix+c)
	}
	wantKeys(t, "issue", iss, append(claimKeys, exchange.EvidenceKeyID, exchange.EvidenceAlgorithm, exchange.EvidenceExpiresIn)...)
	if iss[exchange.EvidenceClaimPrefix+"sub"] != "alice" || iss[exchange.EvidenceClaimPrefix+"scope"] != "billing:read" ||
		!strings.Contains(iss[exchange.EvidenceClaimPrefix+"act"], `"sub":"gateway"`) {
		t.Errorf("issue evidence %v", iss)
	}

	// Detail off: the evidence is what the hot path always recorded.
	lean := walkDetail(t, e, form, false)
	for _, en := range lean {
		for k := range en.Evidence {
			switch {
			case k == exchange.EvidenceMatched, k == exchange.EvidenceNow, k == exchange.EvidenceExpiresIn,
				k == exchange.EvidenceRequested, k == exchange.EvidenceSkew,
				strings.HasPrefix(k, exchange.EvidenceAllowedPrefix), strings.HasPrefix(k, exchange.EvidenceFoundPrefix),
				strings.HasPrefix(k, exchange.EvidenceClaimPrefix):
				t.Errorf("%s: detail key %s recorded without Request.Detail", en.Step, k)
			}
		}
	}
}

// A refused exchange records the evidence its refusal was decided on:
// consents found and missing, scope sets, a workflow's deny.
func TestEvidenceDetailRefused(t *testing.T) {
	e := detailEnv(t)
	trace := walkDetail(t, e, e.form(e.subject(nil), "audience", "billing-api", "scope", "billing:read billing:write"), true)
	last := trace[len(trace)-1]
	if last.Step != exchange.StepConsent || last.Status != exchange.Fail {
		t.Fatalf("not refused at consent: %+v", last)
	}
	if last.Evidence[exchange.EvidenceFoundPrefix+"billing-api"] != "billing:read" ||
		last.Evidence[exchange.EvidenceMissingPrefix+"billing-api"] != "billing:write" ||
		last.Evidence[exchange.EvidenceUser] != "alice" || last.Evidence[exchange.EvidenceIDP] != "corp" {
		t.Errorf("consent evidence %v", last.Evidence)
	}
	wantKeys(t, "subject", evidenceOf(t, trace, exchange.StepSubject), exchange.EvidenceMatched, exchange.EvidenceKeyID,
		exchange.EvidenceAlgorithm, exchange.EvidenceNow, exchange.EvidenceExpiresIn, exchange.EvidenceSkew)
	wantKeys(t, "scope", evidenceOf(t, trace, exchange.StepScope), exchange.EvidenceRequested, exchange.EvidenceAllowedPrefix+"billing-api", exchange.EvidenceScope)

	// Refused at scope: the sets it weighed, with the subject's scopes
	// where subject_scopes_only limits the grant.
	trace = walkDetail(t, e, e.form(e.subject(jwt.MapClaims{"scope": "narrow:a"}), "audience", "narrow-api", "scope", "narrow:b"), true)
	last = trace[len(trace)-1]
	if last.Step != exchange.StepScope || last.Status != exchange.Fail ||
		last.Evidence[exchange.EvidenceSubjectScopes] != "narrow:a" || last.Evidence[exchange.EvidenceRequested] != "narrow:b" ||
		last.Evidence[exchange.EvidenceAllowedPrefix+"narrow-api"] != "narrow:a narrow:b" {
		t.Fatalf("scope refusal %+v", last)
	}

	// Refused by a workflow: its verdict.
	trace = walkDetail(t, e, e.form(e.subject(jwt.MapClaims{"groups": []any{"interns"}}), "audience", "billing-api", "scope", "billing:read"), true)
	last = trace[len(trace)-1]
	if last.Step != exchange.StepWorkflows || last.Status != exchange.Fail || last.Evidence[exchange.EvidenceWorkflowPrefix+"no-interns"] != "deny" {
		t.Fatalf("workflow refusal %+v", last)
	}

	// Refused at the subject: the clock it was judged by.
	forged := e.other.sign(t, e.claims(nil), nil)
	trace = walkDetail(t, e, e.form(forged), true)
	last = trace[len(trace)-1]
	if last.Step != exchange.StepSubject || last.Status != exchange.Fail || last.Evidence[exchange.EvidenceNow] == "" {
		t.Fatalf("subject refusal %+v", last)
	}
}
