package idtxtest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/idtx/idtx/exchange"
	"github.com/idtx/idtx/mockidp"
	"github.com/idtx/idtx/oauth"
	"github.com/idtx/idtx/stsclient"
)

// Exchange is one token request the STS answered: what the client asked
// for, what the STS concluded, and why (its trace).
type Exchange struct {
	Time time.Time
	// ClientID is the client that authenticated, or else the one the
	// request named.
	ClientID string
	// What was asked (RFC 8693 §2.1).
	GrantType          string
	Audience           []string
	Resource           []string
	Scope              []string
	RequestedTokenType string
	SubjectTokenType   string
	ActorTokenType     string
	// Subject and IDP are who the subject token was found to be.
	Subject, IDP string
	// Outcome is "ok", "refused" or "dropped" (a drop fault).
	Outcome string
	// Error and ErrorDescription are the refusal (RFC 6749 §5.2).
	Error, ErrorDescription string
	// Faults are the faults that hit this exchange.
	Faults []string
	// Claims are the claims of the token issued, when one was.
	Claims map[string]any
	// Trace is the exchange's record, as GET /traces serves it and
	// `idtx explain` prints it: each step with its reason and evidence.
	Trace *stsclient.Record
}

func (s *STS) observe(req *exchange.Request, rec *stsclient.Record) {
	f := req.Form
	x := Exchange{
		Time: rec.Time, ClientID: rec.ClientID, GrantType: f.Get("grant_type"),
		Audience: f["audience"], Resource: f["resource"], Scope: strings.Fields(f.Get("scope")),
		RequestedTokenType: f.Get("requested_token_type"), SubjectTokenType: f.Get("subject_token_type"),
		ActorTokenType: f.Get("actor_token_type"),
		Outcome:        rec.Outcome, Faults: rec.Faults, Claims: rec.Claims, Trace: rec,
	}
	if x.ClientID == "" {
		if req.Basic != nil {
			x.ClientID = req.Basic.ID
		} else {
			x.ClientID = f.Get("client_id")
		}
	}
	if rec.Error != nil {
		x.Error, x.ErrorDescription = rec.Error.Code, rec.Error.Description
	}
	for _, e := range rec.Steps {
		if e.Step == exchange.StepSubject {
			x.Subject, x.IDP = e.Evidence[exchange.EvidenceSubject], e.Evidence[exchange.EvidenceIDP]
		}
	}
	s.mu.Lock()
	s.exchanges = append(s.exchanges, x)
	s.mu.Unlock()
}

// Exchanges are the token requests the STS has answered, oldest first.
func (s *STS) Exchanges() []Exchange {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.exchanges)
}

// LastExchange is the last token request the STS answered; the test
// fails if there was none.
func (s *STS) LastExchange(t testing.TB) Exchange {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.exchanges) == 0 {
		t.Fatalf("idtxtest: LastExchange: the STS at %s has answered no token request", s.URL)
	}
	return s.exchanges[len(s.exchanges)-1]
}

// Fault makes the STS misbehave, as `idtx serve --mock --fault SPEC` and
// POST /mock/faults do. A spec is KIND[=VALUE][,times=N]:
//
//	unavailable[=RETRY_AFTER]  POST /token answers 503 temporarily_unavailable with Retry-After (whole seconds, 1s to 1h; default 1s)
//	slow=DURATION              POST /token answers after DURATION (at most 1m)
//	error=CODE                 POST /token answers the OAuth error CODE (mockidp.FaultErrors)
//	drop                       POST /token closes the connection unanswered
//	jwks-down                  the mock IDP's key set answers 503
//	rotate-key                 the mock IDP signs with a new key, the old one published with it, until the fault ends; then with its fixture key again
//
// times=N lasts the next N token requests the fault takes effect on;
// without it, until ClearFaults. At most mockidp.MaxFaults are set at
// once. A spec that does not parse, or one too many, fails the test.
func (s *STS) Fault(t testing.TB, specs ...string) {
	t.Helper()
	faults, err := mockidp.ParseFaults(specs)
	if err != nil {
		t.Fatalf("idtxtest: Fault: %v", err)
	}
	if err := s.mock.IDP.Faults().Set(faults...); err != nil {
		t.Fatalf("idtxtest: Fault: %v", err)
	}
}

// ClearFaults ends every fault; after a key rotation the mock IDP signs
// with its fixture key again, and publishes only it.
func (s *STS) ClearFaults() { s.mock.IDP.Faults().Clear() }

// Faults are the faults set now, as specs with the requests each has left.
func (s *STS) Faults() []string {
	var out []string
	for _, f := range s.mock.IDP.Faults().List() {
		out = append(out, f.String())
	}
	return out
}

// AccessToken mints a subject token for sub (opts shape it) and exchanges
// it as the demo client for audience and scopes: a token of the STS to
// test a resource server with. A refusal fails the test.
func (s *STS) AccessToken(t testing.TB, sub, audience string, scopes []string, opts ...TokenOption) string {
	t.Helper()
	form := url.Values{
		"grant_type":         {oauth.GrantTypeTokenExchange},
		"subject_token":      {s.SubjectToken(t, sub, opts...)},
		"subject_token_type": {oauth.TokenTypeJWT},
		"audience":           {audience},
	}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	req, err := http.NewRequest(http.MethodPost, s.TokenURL(), strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatalf("idtxtest: AccessToken: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(Client, Secret)
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("idtxtest: AccessToken: %v", err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("idtxtest: AccessToken: status %d, body not JSON: %v", resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK || body.AccessToken == "" {
		t.Fatalf("idtxtest: AccessToken(%s for %s %v): %d %s: %s", sub, audience, scopes, resp.StatusCode, body.Error, body.Description)
	}
	return body.AccessToken
}
