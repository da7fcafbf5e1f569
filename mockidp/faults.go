package mockidp

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/idtx/idtx/oauth"
)

// FaultsPath is where a running mock lists (GET), sets (POST, form field
// fault, repeatable) and clears (DELETE) its faults.
const FaultsPath = "/mock/faults"

// FaultKind is a way the mock STS misbehaves on purpose.
type FaultKind string

// The faults (docs/testing.md).
const (
	// FaultUnavailable: the token endpoint answers 503
	// temporarily_unavailable with Retry-After.
	FaultUnavailable FaultKind = "unavailable"
	// FaultSlow: the token endpoint answers after a delay.
	FaultSlow FaultKind = "slow"
	// FaultError: the token endpoint answers a given OAuth error.
	FaultError FaultKind = "error"
	// FaultDrop: the token endpoint closes the connection unanswered.
	FaultDrop FaultKind = "drop"
	// FaultJWKSDown: the mock IDP's key set (GET /mock/jwks) answers 503.
	FaultJWKSDown FaultKind = "jwks-down"
	// FaultRotateKey: the mock IDP signs with a new key, published with
	// the old one while the fault lasts; when it ends the new key is
	// removed and the mock IDP signs with its fixture key again.
	FaultRotateKey FaultKind = "rotate-key"
)

// DefaultRetryAfter is the Retry-After of an unavailable fault that
// names none.
const DefaultRetryAfter = time.Second

// The bounds of faults, so that no request to /mock/faults can hang the
// mock's clients for good or grow its memory without end.
const (
	// MaxFaults is how many faults may be set at once.
	MaxFaults = 16
	// MaxRetryAfter is the longest Retry-After of an unavailable fault.
	MaxRetryAfter = time.Hour
	// MaxDelay is the longest delay of a slow fault.
	MaxDelay = time.Minute
)

// ErrTooManyFaults refuses faults past MaxFaults.
var ErrTooManyFaults = errors.New("too many faults")

// FaultErrors are the codes an error fault may answer: the token
// endpoint's errors of RFC 6749 §5.2 and RFC 8693 §2.2.2, and those the
// STS answers besides (RFC 8707 §2, temporarily_unavailable and
// server_error as RFC 6749 §4.1.2.1 names them, slow_down of RFC 8628
// §3.5, consent_required).
var FaultErrors = []string{
	oauth.CodeInvalidRequest, oauth.CodeInvalidClient, "invalid_grant", oauth.CodeUnauthorizedClient,
	oauth.CodeUnsupportedGrantType, oauth.CodeInvalidScope, oauth.CodeInvalidTarget,
	oauth.CodeConsentRequired, oauth.CodeTemporarilyUnavailable, oauth.CodeServerError, oauth.CodeSlowDown,
}

// Fault is one fault: its kind, its value, and how many token requests
// it lasts (0: until cleared).
type Fault struct {
	Kind       FaultKind
	RetryAfter time.Duration // unavailable
	Delay      time.Duration // slow
	Error      string        // error: the OAuth error code
	Times      int           // the next Times token requests; 0 until cleared
}

// FaultHelp is one line per fault, for help text: the spec and what it does.
var FaultHelp = []struct{ Spec, Help string }{
	{"unavailable[=RETRY_AFTER]", "POST /token answers 503 temporarily_unavailable with Retry-After (whole seconds, 1s to 1h; default 1s)"},
	{"slow=DURATION", "POST /token answers after DURATION (at most 1m)"},
	{"error=CODE", "POST /token answers the OAuth error CODE (invalid_grant, invalid_client, ...)"},
	{"drop", "POST /token closes the connection without an answer"},
	{"jwks-down", "the mock IDP's key set (GET /mock/jwks) answers 503"},
	{"rotate-key", "the mock IDP signs with a new key, published with the old until the fault ends; then it signs with its fixture key again"},
}

// ParseFaults reads fault specs, at most MaxFaults of them: the one
// parser of serve --mock --fault, POST /mock/faults and idtxtest.
func ParseFaults(specs []string) ([]Fault, error) {
	if len(specs) > MaxFaults {
		return nil, fmt.Errorf("%w: %d given, at most %d at once", ErrTooManyFaults, len(specs), MaxFaults)
	}
	out := make([]Fault, 0, len(specs))
	for _, spec := range specs {
		f, err := ParseFault(spec)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// ParseFault reads a fault spec: KIND[=VALUE][,times=N] (FaultHelp).
func ParseFault(spec string) (Fault, error) {
	head, rest, _ := strings.Cut(strings.TrimSpace(spec), ",")
	kind, value, hasValue := strings.Cut(head, "=")
	f := Fault{Kind: FaultKind(kind)}
	if rest != "" {
		n, ok := strings.CutPrefix(rest, "times=")
		times, err := strconv.Atoi(n)
		if !ok || err != nil || times < 1 {
			return Fault{}, fmt.Errorf("fault %q: after the comma only times=N (N >= 1) may follow", spec)
		}
		f.Times = times
	}
	var err error
	switch f.Kind {
	case FaultUnavailable:
		f.RetryAfter = DefaultRetryAfter
		if hasValue {
			// Retry-After is whole seconds (RFC 9110 §10.2.3).
			if f.RetryAfter, err = time.ParseDuration(value); err != nil || f.RetryAfter < time.Second ||
				f.RetryAfter > MaxRetryAfter || f.RetryAfter%time.Second != 0 {
				return Fault{}, fmt.Errorf("fault %q: Retry-After %q is not whole seconds from 1s to 1h", spec, value)
			}
		}
	case FaultSlow:
		if f.Delay, err = time.ParseDuration(value); err != nil || f.Delay <= 0 || f.Delay > MaxDelay {
			return Fault{}, fmt.Errorf("fault %q: slow needs a positive duration of at most 1m, such as slow=2s", spec)
		}
	case FaultError:
		if !slices.Contains(FaultErrors, value) {
			return Fault{}, fmt.Errorf("fault %q: error needs an OAuth error code the token endpoint answers (%s)", spec, strings.Join(FaultErrors, ", "))
		}
		f.Error = value
	case FaultDrop, FaultJWKSDown, FaultRotateKey:
		if hasValue {
			return Fault{}, fmt.Errorf("fault %q: %s takes no value", spec, f.Kind)
		}
	default:
		kinds := make([]string, len(FaultHelp))
		for i, h := range FaultHelp {
			kinds[i], _, _ = strings.Cut(h.Spec, "[")
			kinds[i], _, _ = strings.Cut(kinds[i], "=")
		}
		return Fault{}, fmt.Errorf("fault %q: %q is not a fault (faults: %s)", spec, kind, strings.Join(kinds, ", "))
	}
	return f, nil
}

// String is the fault's spec, as ParseFault reads it, with its value
// always written out (unavailable=1s for unavailable): the same form
// in GET /mock/faults, traces and Go.
func (f Fault) String() string {
	s := string(f.Kind)
	switch f.Kind {
	case FaultUnavailable:
		s += "=" + strconv.FormatInt(int64(f.RetryAfter/time.Second), 10) + "s"
	case FaultSlow:
		s += "=" + f.Delay.String()
	case FaultError:
		s += "=" + f.Error
	}
	if f.Times > 0 {
		s += ",times=" + strconv.Itoa(f.Times)
	}
	return s
}

// Faults are the faults set on one mock. Safe for concurrent use; when
// none is set, Hit costs one atomic load.
type Faults struct {
	m  *IDP
	n  atomic.Int32 // len(list), read without the lock
	mu sync.Mutex
	// list holds the faults set, oldest first; a fault whose last
	// request is in flight stays until that request is done.
	list []*setFault
}

type setFault struct {
	Fault
	left  int    // requests left; counts down from Times
	spent bool   // its last request is in flight
	note  string // what the trace says of it
	kid   string // rotate-key: the key it made the mock IDP sign with
}

func newFaults(m *IDP) *Faults { return &Faults{m: m} }

// Set adds faults, none if that would make more than MaxFaults
// (ErrTooManyFaults). A rotate-key fault rotates the mock IDP's key now.
func (f *Faults) Set(faults ...Fault) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	set := 0
	for _, sf := range f.list {
		if !sf.spent {
			set++
		}
	}
	if set+len(faults) > MaxFaults {
		return fmt.Errorf("%w: %d set, %d more asked, at most %d at once", ErrTooManyFaults, set, len(faults), MaxFaults)
	}
	for _, ft := range faults {
		sf := &setFault{Fault: ft, left: ft.Times, note: ft.String()}
		switch ft.Kind {
		case FaultRotateKey:
			old := f.m.KeyID()
			kid, err := f.m.rotate()
			if err != nil {
				return fmt.Errorf("rotate-key: %w", err)
			}
			sf.kid = kid
			sf.note = fmt.Sprintf("%s: the mock IDP signs with kid %s, published with kid %s until the fault ends", ft, kid, old)
		case FaultJWKSDown:
			sf.note = ft.String() + ": GET " + "/mock/jwks answers 503"
		}
		f.list = append(f.list, sf)
		f.n.Store(int32(len(f.list)))
	}
	return nil
}

// Clear ends every fault; a key rotation ends (the mock IDP signs with
// its fixture key again).
func (f *Faults) Clear() {
	f.mu.Lock()
	ended := f.list
	f.list = nil
	f.n.Store(0)
	f.mu.Unlock()
	f.ended(ended)
}

func (f *Faults) ended(list []*setFault) {
	for _, sf := range list {
		if sf.Kind == FaultRotateKey {
			f.m.unrotate(sf.kid)
		}
	}
}

// List is the faults set now, each with the requests it has left.
func (f *Faults) List() []Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []Fault{}
	for _, sf := range f.list {
		if !sf.spent {
			ft := sf.Fault
			ft.Times = sf.left
			out = append(out, ft)
		}
	}
	return out
}

func (f *Faults) jwksDown() bool {
	if f.n.Load() == 0 {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, sf := range f.list {
		if sf.Kind == FaultJWKSDown {
			return true
		}
	}
	return false
}

// Hit is what the faults do to one token request: answer late, drop the
// connection, or answer an error instead of the exchange; Notes name
// every fault that took effect on it, for its trace. Done must be called
// once the request is answered.
type Hit struct {
	Delay time.Duration
	Drop  bool
	Error *oauth.Error
	Notes []string

	f     *Faults
	spent []*setFault
}

// answers says whether a fault answers a token request in place of the
// exchange.
func (k FaultKind) answers() bool {
	return k == FaultUnavailable || k == FaultError || k == FaultDrop
}

// Hit takes one token request from every fault that takes effect on it;
// nil when none does. Of the faults that answer in place of the exchange
// (unavailable, error, drop) the oldest set answers; the others, and
// jwks-down and rotate-key (which act on the exchange, not run then),
// take no effect: not in Notes, their times not used. Every slow fault
// takes effect; together they delay a request MaxDelay at most.
func (f *Faults) Hit() *Hit {
	if f.n.Load() == 0 {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var answer *setFault
	for _, sf := range f.list {
		if !sf.spent && sf.Kind.answers() {
			answer = sf
			break
		}
	}
	h := &Hit{f: f}
	for _, sf := range f.list {
		if sf.spent || (answer != nil && sf != answer && sf.Kind != FaultSlow) {
			continue
		}
		h.Notes = append(h.Notes, sf.note)
		switch sf.Kind {
		case FaultSlow:
			h.Delay += sf.Delay
		case FaultDrop:
			h.Drop = true
		case FaultUnavailable:
			h.Error = oauth.ErrTemporarilyUnavailable("the mock STS is unavailable (fault %s)", sf.Fault)
			h.Error.RetryAfter = sf.RetryAfter
		case FaultError:
			h.Error = &oauth.Error{Code: sf.Error, Status: errorStatus(sf.Error), Description: fmt.Sprintf("the mock STS answers %s (fault %s)", sf.Error, sf.Fault)}
		}
		if sf.Times > 0 {
			sf.left--
			if sf.left == 0 {
				sf.spent = true
				h.spent = append(h.spent, sf)
			}
		}
	}
	if len(h.Notes) == 0 {
		return nil
	}
	// Slow faults add up, to MaxDelay at most: no request is held longer.
	h.Delay = min(h.Delay, MaxDelay)
	return h
}

// Done removes the faults whose last request this was.
func (h *Hit) Done() {
	if h == nil || len(h.spent) == 0 {
		return
	}
	f := h.f
	f.mu.Lock()
	keep := f.list[:0]
	for _, sf := range f.list {
		spentHere := false
		for _, s := range h.spent {
			spentHere = spentHere || s == sf
		}
		if !spentHere {
			keep = append(keep, sf)
		}
	}
	clear(f.list[len(keep):])
	f.list = keep
	f.n.Store(int32(len(keep)))
	f.mu.Unlock()
	f.ended(h.spent)
}

// errorStatus is the HTTP status RFC 6749 §5.2 gives an error code.
func errorStatus(code string) int {
	switch code {
	case oauth.CodeInvalidClient:
		return http.StatusUnauthorized
	case oauth.CodeTemporarilyUnavailable:
		return http.StatusServiceUnavailable
	case oauth.CodeServerError:
		return http.StatusInternalServerError
	case oauth.CodeSlowDown:
		return http.StatusTooManyRequests
	}
	return http.StatusBadRequest
}

// FaultList is the answer of FaultsPath: the faults set, as specs whose
// times is what each has left.
type FaultList struct {
	Faults []string `json:"faults"`
}

func (f *Faults) writeList(w http.ResponseWriter) {
	out := FaultList{Faults: []string{}}
	for _, ft := range f.List() {
		out.Faults = append(out.Faults, ft.String())
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
}

func (f *Faults) serveList(w http.ResponseWriter, _ *http.Request) { f.writeList(w) }

func faultError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, map[string]any{"error": code, "error_description": description})
}

func (f *Faults) serveSet(w http.ResponseWriter, r *http.Request) {
	if crossSite(w, r) {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxIntrospectBody)
	if err := r.ParseForm(); err != nil || len(r.PostForm["fault"]) == 0 {
		faultError(w, http.StatusBadRequest, oauth.CodeInvalidRequest, "send one or more form fields fault=SPEC")
		return
	}
	faults, err := ParseFaults(r.PostForm["fault"])
	if err != nil {
		faultError(w, http.StatusBadRequest, oauth.CodeInvalidRequest, err.Error())
		return
	}
	if err := f.Set(faults...); errors.Is(err, ErrTooManyFaults) {
		faultError(w, http.StatusBadRequest, oauth.CodeInvalidRequest, err.Error())
		return
	} else if err != nil {
		faultError(w, http.StatusInternalServerError, oauth.CodeServerError, err.Error())
		return
	}
	f.writeList(w)
}

func (f *Faults) serveClear(w http.ResponseWriter, r *http.Request) {
	if crossSite(w, r) {
		return
	}
	f.Clear()
	f.writeList(w)
}

// faultsMethods are the methods FaultsPath answers.
const faultsMethods = "GET, HEAD, POST, DELETE"

// serveOther answers another method at FaultsPath: 405 with Allow (RFC
// 9110 §15.5.6).
func (f *Faults) serveOther(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", faultsMethods)
	faultError(w, http.StatusMethodNotAllowed, oauth.CodeInvalidRequest,
		fmt.Sprintf("%s %s: method not allowed (allowed: %s)", clip(r.Method), FaultsPath, faultsMethods))
}

// crossSite refuses (403) a request a web page sent from another site or
// origin, so that a page open in a developer's browser cannot set faults
// on the mock (cross-site request forgery): one whose Sec-Fetch-Site
// (Fetch Metadata) is cross-site or same-site, or whose Origin (RFC 6454)
// is not the mock's own. A client that sends neither, such as curl or a
// test, is not refused.
func crossSite(w http.ResponseWriter, r *http.Request) bool {
	why := ""
	site := r.Header.Get("Sec-Fetch-Site")
	origin, hasOrigin := r.Header["Origin"]
	switch {
	case site == "cross-site" || site == "same-site":
		why = "Sec-Fetch-Site: " + site
	case hasOrigin:
		u, err := url.Parse(origin[0])
		if err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host) {
			why = fmt.Sprintf("Origin %q is not %q", clip(origin[0]), clip(r.Host))
		}
	}
	if why == "" {
		return false
	}
	faultError(w, http.StatusForbidden, "access_denied",
		fmt.Sprintf("%s %s from a web page of another site is refused (%s): set faults with curl, --fault or idtxtest", r.Method, FaultsPath, why))
	return true
}
