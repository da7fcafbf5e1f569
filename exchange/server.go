package exchange

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/idtx/idtx/internal/fetch"
	"github.com/idtx/idtx/oauth"
	"github.com/idtx/idtx/stsclient"
)

// Handler serves the STS endpoints (README, Endpoints).
type Handler struct {
	engine   *Engine
	log      *slog.Logger
	mux      *http.ServeMux
	metadata []byte
	metrics  *Metrics

	traces     *TraceRing // nil: traces are off
	tracesOpen bool       // GET /traces answers loopback callers without client auth

	faults  func() *Fault                     // nil: no faults (every server but the mock)
	observe func(*Request, *stsclient.Record) // nil: nobody watches the exchanges
}

// RequestTimeout bounds the work of one exchange: remote calls (IDP
// introspection, key fetches) and store retries end by then.
const RequestTimeout = 10 * time.Second

// NewHandler returns the STS's HTTP handler. It applies the engine's
// limits (rate_limit, max_in_flight) and counts what the engine does in
// the engine's metrics.
func NewHandler(e *Engine, log *slog.Logger) *Handler {
	h := &Handler{engine: e, log: log, mux: http.NewServeMux(), metrics: e.metrics}
	if h.metrics == nil {
		h.metrics = NewMetrics()
	}
	h.metadata = e.metadata()

	h.mux.HandleFunc("POST /token", h.token)
	h.mux.HandleFunc("POST /introspect", h.introspect)
	h.mux.HandleFunc("GET /jwks", h.jwks)
	h.mux.HandleFunc("GET /.well-known/oauth-authorization-server", h.serveMetadata)
	h.mux.HandleFunc("GET /.well-known/openid-configuration", h.serveMetadata)
	h.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok\n")
	})
	h.mux.HandleFunc("GET /readyz", h.readyz)
	h.mux.Handle("GET /metrics", h.metrics.Handler())
	return h
}

// afterStep observes the steps of the handler's own runs: it times each
// step and, once the client has authenticated, takes the exchange from
// its rate limit.
func (h *Handler) afterStep(name string, s *State, o Outcome, took time.Duration) Outcome {
	if obs, ok := h.metrics.steps[name]; ok {
		obs.Observe(took.Seconds())
	}
	if name == "client" && o.Status == Pass {
		if oerr := h.engine.limits.allow(s.Client.ID, s.Now); oerr != nil {
			h.metrics.refused.WithLabelValues(limitRate).Inc()
			return failWith(oerr, o.Evidence)
		}
	}
	return o
}

// Handle mounts another handler, as the mock does under /mock/.
func (h *Handler) Handle(pattern string, handler http.Handler) { h.mux.Handle(pattern, handler) }

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// ReadRequest reads a token or introspection request: the url-encoded
// form of at most MaxBodyBytes, and any HTTP Basic credentials.
func ReadRequest(w http.ResponseWriter, r *http.Request) *Request {
	req := &Request{}
	if id, secret, ok := r.BasicAuth(); ok {
		// RFC 6749 §2.3.1: both are form-urlencoded before encoding.
		req.Basic = &BasicAuth{ID: unescape(id), Secret: unescape(secret)}
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" {
		req.ParseErr = oauth.ErrInvalidRequest("Content-Type must be application/x-www-form-urlencoded")
		return req
	}
	body, err := readBody(w, r)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			req.ParseErr = oauth.ErrInvalidRequest("request body exceeds %d bytes", MaxBodyBytes)
		} else {
			req.ParseErr = oauth.ErrInvalidRequest("request body could not be read")
		}
		return req
	}
	if req.Form, err = url.ParseQuery(string(body)); err != nil {
		req.ParseErr = oauth.ErrInvalidRequest("request body is not a valid url-encoded form")
	}
	return req
}

// readBody reads at most MaxBodyBytes, in one allocation when the client
// declared the length.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body := http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	if n := r.ContentLength; n > 0 && n <= MaxBodyBytes {
		buf := make([]byte, n)
		if _, err := io.ReadFull(body, buf); err != nil {
			return nil, err
		}
		return buf, nil
	}
	return io.ReadAll(body)
}

func unescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

func (h *Handler) token(w http.ResponseWriter, r *http.Request) {
	if h.faults != nil {
		if f := h.faults(); f != nil {
			h.faulty(w, r, f)
			return
		}
	}
	h.exchange(w, r, nil)
}

// exchange answers a token request; faults names the faults that hit it,
// for its trace.
func (h *Handler) exchange(w http.ResponseWriter, r *http.Request, faults []string) {
	start := time.Now()
	if oerr := h.engine.limits.enter(); oerr != nil {
		// Refused before the body is read: the cheapest answer there is.
		h.metrics.refused.WithLabelValues(limitInFlight).Inc()
		WriteError(w, oerr)
		h.log.LogAttrs(r.Context(), slog.LevelWarn, "exchange refused", slog.String("result", oerr.Code), slog.String("reason", oerr.Description))
		return
	}
	defer h.engine.limits.leave()
	h.metrics.inFlight.Inc()
	defer h.metrics.inFlight.Dec()
	ctx, cancel := context.WithTimeout(r.Context(), RequestTimeout)
	defer cancel()
	req := ReadRequest(w, r)
	req.Detail = h.traces != nil // a kept trace explains; otherwise the evidence stays lean
	res, trace, oerr := h.engine.run(ctx, req, h.afterStep)
	var id string
	if h.traces != nil {
		// "": a request that did not authenticate, beyond the rate at
		// which those are kept.
		rec := NewRecord(h.engine.now(), trace, nil, oerr)
		rec.Faults = faults
		id = h.traces.Add(rec)
		if oerr != nil && id != "" {
			withID := *oerr
			withID.TraceID = id
			oerr = &withID
		}
	}
	if h.observe != nil {
		rec := NewRecord(h.engine.now(), trace, res, oerr)
		rec.ID, rec.Faults = id, faults
		h.observe(req, rec)
	}
	if oerr != nil {
		WriteError(w, oerr)
		h.metrics.exchange(oerr.Code, trace)
		h.audit(ctx, trace, oerr)
	} else {
		writeResult(w, res)
		h.metrics.exchange("ok", trace)
		h.audit(ctx, trace, nil)
	}
	h.metrics.latency.Observe(time.Since(start).Seconds())
}

// EnableTraces keeps the traces of each client's last n exchanges (and
// of fewer that did not authenticate, TraceRing) for GET /traces and GET
// /traces/{id}, and names a refusal's trace in its error response
// (trace_id). A caller must authenticate as a client and sees only its
// own exchanges; with open, a caller on a loopback address needs no
// credentials and sees every exchange (`idtx serve --mock`).
func (h *Handler) EnableTraces(n int, open bool) {
	if n <= 0 || h.traces != nil {
		return
	}
	h.traces, h.tracesOpen = NewTraceRing(n), open
	h.mux.HandleFunc("GET /traces", h.listTraces)
	h.mux.HandleFunc("GET /traces/{id}", h.getTrace)
}

func (h *Handler) listTraces(w http.ResponseWriter, r *http.Request) {
	client, ok := h.traceCaller(w, r)
	if !ok {
		return
	}
	var since uint64
	if s := r.URL.Query().Get("since"); s != "" {
		var err error
		if since, err = strconv.ParseUint(s, 10, 64); err != nil {
			WriteError(w, oauth.ErrInvalidRequest("since %q is not a trace id", clipText(s)))
			return
		}
	}
	writeJSON(w, http.StatusOK, stsclient.TraceList{Traces: h.traces.List(since, client)})
}

func (h *Handler) getTrace(w http.ResponseWriter, r *http.Request) {
	client, ok := h.traceCaller(w, r)
	if !ok {
		return
	}
	rec, found := h.traces.Get(r.PathValue("id"), client)
	if !found {
		e := newError("not_found", http.StatusNotFound, "no trace %q: the server keeps only its last exchanges, and shows a client only its own", clipText(r.PathValue("id")))
		WriteError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

// traceCaller settles whose traces the caller may see: "" for all (open
// and loopback), else the client it authenticates as (RFC 6749 §2.3).
func (h *Handler) traceCaller(w http.ResponseWriter, r *http.Request) (string, bool) {
	if h.tracesOpen && isLoopback(r.RemoteAddr) {
		return "", true
	}
	req := &Request{Form: url.Values{}}
	if id, secret, ok := r.BasicAuth(); ok {
		req.Basic = &BasicAuth{ID: unescape(id), Secret: unescape(secret)}
	}
	c, _, _, oerr := h.engine.authenticate(r.Context(), req, h.engine.now())
	if oerr != nil {
		if req.Basic == nil {
			oerr = oauth.ErrInvalidClient("traces need client authentication (HTTP Basic, RFC 6749 §2.3.1)")
		}
		oerr.BasicChallenge = true
		WriteError(w, oerr)
		return "", false
	}
	return c.ID, true
}

func isLoopback(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// readyz answers 200 when the store answers and every IDP can validate
// tokens (a remote key set fetched at least once), else 503 naming what
// is not ready. Introspection endpoints are not probed.
func (h *Handler) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	type report struct {
		Ready bool              `json:"ready"`
		Store string            `json:"store"`
		IDPs  map[string]string `json:"idps,omitempty"`
	}
	out := report{Ready: true, Store: "ok"}
	if st := h.engine.store; st != nil {
		if err := st.Ping(ctx); err != nil {
			out.Ready, out.Store = false, "unreachable"
			h.log.LogAttrs(ctx, slog.LevelWarn, "readyz: store unreachable", slog.String("cause", err.Error()))
		}
	}
	for name, err := range h.engine.registry.Ready() {
		if out.IDPs == nil {
			out.IDPs = map[string]string{}
		}
		out.Ready = false
		out.IDPs[name] = err.Error()
	}
	status := http.StatusOK
	if !out.Ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, out)
}

// readyTimeout bounds one readiness check.
const readyTimeout = 2 * time.Second

// audit logs one line per exchange: who, for what, and which step decided.
func (h *Handler) audit(ctx context.Context, trace Trace, oerr *oauth.Error) {
	attrs := make([]slog.Attr, 0, 8)
	for _, e := range trace {
		switch e.Step {
		case StepClient:
			attrs = append(attrs, slog.String("client", e.Evidence[EvidenceClientID]))
		case StepTarget:
			attrs = append(attrs, slog.String("services", e.Evidence[EvidenceServices]))
		case StepSubject:
			attrs = append(attrs, slog.String("sub", e.Evidence[EvidenceSubject]), slog.String("idp", e.Evidence[EvidenceIDP]))
		case StepIssue:
			attrs = append(attrs, slog.String("jti", e.Evidence[EvidenceJTI]))
		}
	}
	if oerr == nil {
		h.log.LogAttrs(ctx, slog.LevelInfo, "exchange", append(attrs, slog.String("result", "ok"))...)
		return
	}
	attrs = append(attrs, slog.String("result", oerr.Code), slog.String("step", trace[len(trace)-1].Step),
		slog.String("reason", oerr.Description))
	// What went wrong with a webhook or an IDP endpoint, with its URL
	// (query values redacted): for this log only, never the client.
	if d := fetch.Detail(trace[len(trace)-1].Cause); d != "" {
		attrs = append(attrs, slog.String("detail", d))
	}
	level := slog.LevelInfo
	if oerr.Cause != nil {
		level = slog.LevelError
		attrs = append(attrs, slog.String("cause", oerr.Cause.Error()))
	}
	h.log.LogAttrs(ctx, level, "exchange refused", attrs...)
}

func (h *Handler) jwks(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(h.engine.signer.JWKS())
}

func (h *Handler) serveMetadata(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(h.metadata)
}

// metadata is the RFC 8414 authorization server metadata document.
func (e *Engine) metadata() []byte {
	var scopes []string
	for _, s := range e.services {
		for name := range s.Scopes {
			scopes = append(scopes, name)
		}
	}
	slices.Sort(scopes)
	authMethods := []string{oauth.AuthClientSecretBasic, oauth.AuthClientSecretPost, oauth.AuthPrivateKeyJWT}
	doc := map[string]any{
		"issuer":                                e.issuer,
		"token_endpoint":                        e.TokenEndpoint(),
		"jwks_uri":                              e.issuer + "/jwks",
		"introspection_endpoint":                e.issuer + "/introspect",
		"grant_types_supported":                 []string{oauth.GrantTypeTokenExchange},
		"response_types_supported":              []string{},
		"scopes_supported":                      scopes,
		"token_endpoint_auth_methods_supported": authMethods,
		"token_endpoint_auth_signing_alg_values_supported":         assertionAlgs,
		"introspection_endpoint_auth_methods_supported":            authMethods,
		"introspection_endpoint_auth_signing_alg_values_supported": assertionAlgs,
		"id_token_signing_alg_values_supported":                    []string{e.signer.Alg()},
		"subject_types_supported":                                  []string{"public"},
	}
	b, _ := json.MarshalIndent(doc, "", "  ")
	return b
}

// introspect answers RFC 7662 for tokens the STS issued. The caller must
// authenticate as a client (RFC 7662 §2.1).
func (h *Handler) introspect(w http.ResponseWriter, r *http.Request) {
	req := ReadRequest(w, r)
	res, oerr := h.engine.Introspect(r.Context(), req)
	if oerr != nil {
		WriteError(w, oerr)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// Introspect reports whether token (a form field of req) is an active
// token of this STS, with its claims (RFC 7662 §2.2). It answers only to
// a caller entitled to the token, the client it was issued to or one that
// serves its audience; to any other it is {"active": false}, so that a
// client cannot learn about tokens it does not hold (RFC 7662 §4).
func (e *Engine) Introspect(ctx context.Context, req *Request) (map[string]any, *oauth.Error) {
	if req.ParseErr != nil {
		return nil, req.ParseErr
	}
	if err := checkRepeated(req.Form, nil); err != nil {
		return nil, err
	}
	now := e.now()
	c, _, _, oerr := e.authenticate(ctx, req, now)
	if oerr != nil {
		return nil, oerr
	}
	token := req.Form.Get("token")
	if token == "" {
		return nil, oauth.ErrInvalidRequest("token is missing")
	}
	if len(token) > MaxTokenBytes {
		return map[string]any{"active": false}, nil
	}
	id, err := e.self.Validate(ctx, token, oauth.TokenTypeJWT)
	if err != nil || !e.holds(c, id) {
		return map[string]any{"active": false}, nil
	}
	out := make(map[string]any, len(id.Claims)+3)
	for k, v := range id.Claims {
		out[k] = v
	}
	out["active"] = true
	out["token_type"] = "Bearer"
	return out, nil
}
