package mockidp

import (
	"fmt"
	"net/http"
	"regexp"
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
	// the old one while the fault lasts; then the old one is removed.
	FaultRotateKey FaultKind = "rotate-key"
)

// DefaultRetryAfter is the Retry-After of an unavailable fault that
// names none.
const DefaultRetryAfter = time.Second

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
	{"unavailable[=RETRY_AFTER]", "POST /token answers 503 temporarily_unavailable with Retry-After (default 1s)"},
	{"slow=DURATION", "POST /token answers after DURATION"},
	{"error=CODE", "POST /token answers the OAuth error CODE (invalid_grant, invalid_client, ...)"},
	{"drop", "POST /token closes the connection without an answer"},
	{"jwks-down", "the mock IDP's key set (GET /mock/jwks) answers 503"},
	{"rotate-key", "the mock IDP signs with a new key; old and new are published until the fault ends, then the old is removed"},
}

var oauthCode = regexp.MustCompile(`^[a-z][a-z_]{0,63}$`)

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
			if f.RetryAfter, err = time.ParseDuration(value); err != nil || f.RetryAfter < time.Second {
				return Fault{}, fmt.Errorf("fault %q: Retry-After %q is not a duration of at least 1s", spec, value)
			}
		}
	case FaultSlow:
		if f.Delay, err = time.ParseDuration(value); err != nil || f.Delay <= 0 {
			return Fault{}, fmt.Errorf("fault %q: slow needs a positive duration, such as slow=2s", spec)
		}
	case FaultError:
		if !oauthCode.MatchString(value) {
			return Fault{}, fmt.Errorf("fault %q: error needs an OAuth error code, such as error=invalid_grant", spec)
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

// String is the fault's spec, as ParseFault reads it.
func (f Fault) String() string {
	s := string(f.Kind)
	switch f.Kind {
	case FaultUnavailable:
		if f.RetryAfter != DefaultRetryAfter {
			s += "=" + f.RetryAfter.String()
		}
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
}

func newFaults(m *IDP) *Faults { return &Faults{m: m} }

// Set adds faults. A rotate-key fault rotates the mock IDP's key now.
func (f *Faults) Set(faults ...Fault) error {
	for _, ft := range faults {
		sf := &setFault{Fault: ft, left: ft.Times, note: ft.String()}
		switch ft.Kind {
		case FaultRotateKey:
			old := f.m.KeyID()
			kid, err := f.m.rotate()
			if err != nil {
				return fmt.Errorf("rotate-key: %w", err)
			}
			sf.note = fmt.Sprintf("%s: the mock IDP signs with kid %s; kid %s published until the fault ends", ft, kid, old)
		case FaultJWKSDown:
			sf.note = ft.String() + ": GET " + "/mock/jwks answers 503"
		}
		f.mu.Lock()
		f.list = append(f.list, sf)
		f.n.Store(int32(len(f.list)))
		f.mu.Unlock()
	}
	return nil
}

// Clear ends every fault; a key rotation's overlap ends (the old key is
// removed).
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
			f.m.retire()
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
// every fault that hit it, for its trace. Done must be called once the
// request is answered.
type Hit struct {
	Delay time.Duration
	Drop  bool
	Error *oauth.Error
	Notes []string

	f     *Faults
	spent []*setFault
}

// Hit takes one token request from every fault set; nil when none is.
func (f *Faults) Hit() *Hit {
	if f.n.Load() == 0 {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	h := &Hit{f: f}
	for _, sf := range f.list {
		if sf.spent {
			continue
		}
		h.Notes = append(h.Notes, sf.note)
		switch sf.Kind {
		case FaultSlow:
			h.Delay += sf.Delay
		case FaultDrop:
			h.Drop = true
		case FaultUnavailable:
			if h.Error == nil {
				h.Error = oauth.ErrTemporarilyUnavailable("the mock STS is unavailable (fault %s)", sf.Fault)
				h.Error.RetryAfter = sf.RetryAfter
			}
		case FaultError:
			if h.Error == nil {
				h.Error = &oauth.Error{Code: sf.Error, Status: errorStatus(sf.Error), Description: fmt.Sprintf("the mock STS answers %s (fault %s)", sf.Error, sf.Fault)}
			}
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

func (f *Faults) serveSet(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxIntrospectBody)
	if err := r.ParseForm(); err != nil || len(r.PostForm["fault"]) == 0 {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": oauth.CodeInvalidRequest, "error_description": "send one or more form fields fault=SPEC"})
		return
	}
	var faults []Fault
	for _, spec := range r.PostForm["fault"] {
		ft, err := ParseFault(spec)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": oauth.CodeInvalidRequest, "error_description": err.Error()})
			return
		}
		faults = append(faults, ft)
	}
	if err := f.Set(faults...); err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]any{"error": oauth.CodeServerError, "error_description": err.Error()})
		return
	}
	f.writeList(w)
}

func (f *Faults) serveClear(w http.ResponseWriter, _ *http.Request) {
	f.Clear()
	f.writeList(w)
}
