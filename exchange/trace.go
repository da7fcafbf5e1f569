package exchange

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/idtx/idtx/oauth"
	"github.com/idtx/idtx/stsclient"
)

// NewRecord summarises a finished (or partly walked) exchange in the
// form GET /traces serves. The entries are copied without their Go
// errors, so the record keeps nothing but what it shows.
func NewRecord(at time.Time, trace Trace, res *oauth.Result, oerr *oauth.Error) *stsclient.Record {
	r := &stsclient.Record{Time: at.UTC(), Outcome: stsclient.OutcomeOK, Steps: make([]stsclient.RecordStep, len(trace))}
	for i, e := range trace {
		r.Steps[i] = stsclient.RecordStep{N: e.N, Step: e.Step, Status: string(e.Status), Reason: e.Reason,
			Evidence: e.Evidence, Category: e.Category}
		if e.Step == StepClient && e.Status == Pass {
			r.ClientID = e.Evidence[EvidenceClientID]
		}
	}
	if oerr != nil {
		r.Outcome = stsclient.OutcomeRefused
		r.Error = &stsclient.RecordError{Code: oerr.Code, Description: oerr.Description, Status: oerr.Status}
		if n := len(trace); n > 0 {
			r.Error.Step, r.Error.Category = trace[n-1].Step, trace[n-1].Category
		}
	}
	if res != nil {
		r.Claims = UnverifiedClaims(res.AccessToken)
	}
	return r
}

// NotReached is the outcome AllSteps gives a step that did not run
// because an earlier one failed.
const NotReached Status = "not_reached"

// AllSteps is r's steps followed by every step of the flowchart that did
// not run, each with the outcome NotReached and a reason naming the step
// that stopped the exchange: the nine steps, always, in order.
func AllSteps(r *stsclient.Record) []stsclient.RecordStep {
	ran := make(map[string]bool, len(r.Steps))
	for _, e := range r.Steps {
		ran[e.Step] = true
	}
	out := slices.Clone(r.Steps)
	reason := "not reached"
	if r.Error != nil && r.Error.Step != "" {
		reason = "not reached: step " + r.Error.Step + " refused the exchange first"
	}
	for i, name := range StepNames() {
		if !ran[name] {
			out = append(out, stsclient.RecordStep{N: i + 1, Step: name, Status: string(NotReached), Reason: reason})
		}
	}
	return out
}

// UnverifiedClaims decodes the claims of a compact JWT without checking
// anything: for showing a token this process just minted, never for
// trusting one. Nil when token is not a JWT.
func UnverifiedClaims(token string) map[string]any {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil
	}
	var claims map[string]any
	if json.Unmarshal(payload, &claims) != nil {
		return nil
	}
	return claims
}

// Bounds of the traces of exchanges whose client did not authenticate
// (docs/explain.md, Live traces): they share one ring of their own, so
// that nobody can push a client's traces out by sending requests that
// never authenticate, and only so many a second are kept.
const (
	MaxAnonymousTraces  = 100
	AnonymousTraceRate  = 10 // records a second, on average
	AnonymousTraceBurst = 20
)

// TraceRing keeps the records of the last exchanges: up to a fixed number
// per authenticated client, in a ring of that client's own, so that a
// client's records are pushed out only by its own exchanges; and the
// records of exchanges whose client did not authenticate in a separate,
// smaller ring, at most AnonymousTraceRate a second. Record ids count up
// from 1 in the life of the store, across all rings. Clients are those of
// the config, so the store holds at most (clients + 1) × size records.
type TraceRing struct {
	mu      sync.Mutex
	size    int
	seq     uint64
	clients map[string]*ring // authenticated client id → its records
	anon    *ring
	anonLim *rate.Limiter // clocked by the records' times
}

// ring is the records of one owner, oldest first, at most size.
type ring struct {
	recs []*stsclient.Record
	ids  []uint64 // ids[i] is recs[i].ID as a number
	size int
}

func (g *ring) add(r *stsclient.Record, id uint64) {
	if len(g.recs) == g.size {
		copy(g.recs, g.recs[1:])
		copy(g.ids, g.ids[1:])
		g.recs, g.ids = g.recs[:g.size-1], g.ids[:g.size-1]
	}
	g.recs, g.ids = append(g.recs, r), append(g.ids, id)
}

// NewTraceRing keeps at most n records per client, and at most
// min(n, MaxAnonymousTraces) of exchanges whose client did not
// authenticate.
func NewTraceRing(n int) *TraceRing {
	return &TraceRing{
		size:    n,
		clients: map[string]*ring{},
		anon:    &ring{size: min(n, MaxAnonymousTraces)},
		anonLim: rate.NewLimiter(AnonymousTraceRate, AnonymousTraceBurst),
	}
}

// Add stores r under the next id in its client's ring, dropping that
// ring's oldest record when full, and returns the id. A record of no
// client (r.ClientID empty) goes to the anonymous ring, unless more than
// AnonymousTraceRate a second came at r.Time: then it is not kept and Add
// returns "".
func (t *TraceRing) Add(r *stsclient.Record) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	g := t.anon
	if r.ClientID != "" {
		if g = t.clients[r.ClientID]; g == nil {
			g = &ring{size: t.size}
			t.clients[r.ClientID] = g
		}
	} else if !t.anonLim.AllowN(r.Time, 1) {
		return ""
	}
	t.seq++
	r.ID = strconv.FormatUint(t.seq, 10)
	g.add(r, t.seq)
	return r.ID
}

// List returns the records with an id above since, newest first; with
// client set, only that client's, else everyone's.
func (t *TraceRing) List(since uint64, client string) []*stsclient.Record {
	t.mu.Lock()
	defer t.mu.Unlock()
	type kept struct {
		id  uint64
		rec *stsclient.Record
	}
	var all []kept
	for _, g := range t.rings(client) {
		for i := len(g.recs) - 1; i >= 0 && g.ids[i] > since; i-- {
			all = append(all, kept{g.ids[i], g.recs[i]})
		}
	}
	slices.SortFunc(all, func(a, b kept) int { return cmp.Compare(b.id, a.id) })
	out := make([]*stsclient.Record, len(all))
	for i, k := range all {
		out[i] = k.rec
	}
	return out
}

// Get returns the record with id, if the store still holds it; with
// client set, only if it is that client's.
func (t *TraceRing) Get(id, client string) (*stsclient.Record, bool) {
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		return nil, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, g := range t.rings(client) {
		if i, found := slices.BinarySearch(g.ids, n); found {
			return g.recs[i], true
		}
	}
	return nil, false
}

// rings are the rings a caller sees: client's own, or all of them.
func (t *TraceRing) rings(client string) []*ring {
	if client != "" {
		if g := t.clients[client]; g != nil {
			return []*ring{g}
		}
		return nil
	}
	out := []*ring{t.anon}
	for _, g := range t.clients {
		out = append(out, g)
	}
	return out
}

// NewRequest builds the token request the engine would receive from a
// client authenticating with auth for p: the very form `idtx exchange`
// sends (RFC 8693 §2.1), with a client assertion for this engine's token
// endpoint when auth is private_key_jwt. For explain and walk: the
// request asks for detail evidence.
func (e *Engine) NewRequest(auth stsclient.ClientAuth, p stsclient.ExchangeParams) (*Request, error) {
	form, header, err := (&stsclient.STS{TokenEndpoint: e.TokenEndpoint(), Auth: auth, Now: e.now}).Form(p)
	if err != nil {
		return nil, err
	}
	req := &Request{Form: form, Detail: true}
	if header.Get("Authorization") != "" {
		req.Basic = &BasicAuth{ID: auth.ClientID, Secret: auth.Secret}
	}
	return req, nil
}
