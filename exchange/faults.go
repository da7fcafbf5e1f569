package exchange

import (
	"net/http"
	"sync"
	"time"

	"github.com/idtx/idtx/oauth"
	"github.com/idtx/idtx/stsclient"
)

// Fault is how the token endpoint misbehaves on purpose for one request:
// the faults of the mock STS (docs/testing.md), so that a client's error
// handling can be tested.
type Fault struct {
	// Delay answers this much later (the exchange runs after it).
	Delay time.Duration
	// Drop closes the connection without an answer.
	Drop bool
	// Error is answered instead of running the exchange.
	Error *oauth.Error
	// Notes name every fault that hit the request, for its trace.
	Notes []string
	// Done, if set, is called once the request is handled, before its
	// answer is written: a client that has the answer sees the faults
	// this request used up ended.
	Done func()
}

// SetFaults has the token endpoint ask next, at every request, whether a
// fault hits it (nil: none). Only the mock sets it; a server without it
// pays one nil check a request.
func (h *Handler) SetFaults(next func() *Fault) { h.faults = next }

// Observe has f hear every token request once it is answered: the
// request as read, and its record with the issued token's claims (for
// idtxtest, which shows a test the exchanges its code made).
func (h *Handler) Observe(f func(*Request, *stsclient.Record)) { h.observe = f }

// faulty answers a token request that faults hit.
func (h *Handler) faulty(w http.ResponseWriter, r *http.Request, f *Fault) {
	if f.Done != nil {
		dw := &doneWriter{ResponseWriter: w, done: f.Done}
		defer dw.once.Do(dw.done)
		w = dw
	}
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if f.Error == nil && !f.Drop {
		h.exchange(w, r, f.Notes)
		return
	}
	req := ReadRequest(w, r)
	rec := NewRecord(h.engine.now(), nil, nil, f.Error)
	if f.Drop {
		rec.Outcome, rec.Error = stsclient.OutcomeDropped, nil
	}
	rec.Faults = f.Notes
	if h.traces != nil {
		rec.ID = h.traces.Add(rec)
	}
	if h.observe != nil {
		h.observe(req, rec)
	}
	if f.Drop {
		// net/http closes the connection without writing an answer.
		panic(http.ErrAbortHandler)
	}
	oerr := f.Error
	if rec.ID != "" {
		withID := *oerr
		withID.TraceID = rec.ID
		oerr = &withID
	}
	WriteError(w, oerr)
}

// doneWriter calls done once, before the first byte of the answer.
type doneWriter struct {
	http.ResponseWriter
	done func()
	once sync.Once
}

func (d *doneWriter) WriteHeader(code int) {
	d.once.Do(d.done)
	d.ResponseWriter.WriteHeader(code)
}

func (d *doneWriter) Write(b []byte) (int, error) {
	d.once.Do(d.done)
	return d.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (d *doneWriter) Unwrap() http.ResponseWriter { return d.ResponseWriter }
