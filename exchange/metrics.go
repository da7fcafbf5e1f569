package exchange

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are a server's Prometheus metrics. Build makes one and hands it
// to the IDP registry (key fetches, validation cache) and the store
// decorator; the handler adds the exchanges. Every series a request
// touches is resolved once, so that counting costs no allocation.
type Metrics struct {
	reg *prometheus.Registry

	exchanges *prometheus.CounterVec // result, step, service, idp, mode
	latency   prometheus.Histogram
	stepVec   *prometheus.HistogramVec
	steps     map[string]prometheus.Observer // written by NewMetrics, then read only
	inFlight  prometheus.Gauge
	refused   *prometheus.CounterVec // limit

	keyFetches  *prometheus.CounterVec // idp, result
	cacheHit    prometheus.Counter
	cacheMiss   prometheus.Counter
	storeTime   *prometheus.HistogramVec // op
	storeErrors *prometheus.CounterVec   // op
	storeRetry  prometheus.Counter
}

// Step and store latencies are sub-millisecond when all is well.
var fineBuckets = []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .1, 1}

// NewMetrics returns a fresh set of metrics in a registry of its own.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), steps: map[string]prometheus.Observer{}}
	m.exchanges = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "idtx_exchanges_total",
		Help: "Token exchanges, by result (ok or the OAuth error code), the step that decided, the services asked for, the subject's IDP and the mode (impersonation, delegation); a label is empty when the exchange stopped before its step.",
	}, []string{"result", "step", "service", "idp", "mode"})
	m.latency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "idtx_exchange_duration_seconds", Help: "Time to answer POST /token.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .5},
	})
	m.stepVec = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "idtx_step_duration_seconds", Help: "Time spent in each step of the flowchart, per exchange that reached it.",
		Buckets: fineBuckets,
	}, []string{"step"})
	for _, name := range StepNames() {
		m.steps[name] = m.stepVec.WithLabelValues(name)
	}
	m.inFlight = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "idtx_exchanges_in_flight", Help: "Exchanges being answered now.",
	})
	m.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "idtx_limited_total", Help: "Exchanges refused by a limit: rate (a client's rate_limit, 429) or in_flight (max_in_flight, 503).",
	}, []string{"limit"})
	m.keyFetches = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "idtx_jwks_fetches_total", Help: "Fetches of IDPs' remote key sets (and discovery documents), by IDP and result (ok, error).",
	}, []string{"idp", "result"})
	cache := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "idtx_validation_cache_lookups_total", Help: "Subject and actor tokens looked up in the validation cache, by result (hit, miss).",
	}, []string{"result"})
	m.cacheHit, m.cacheMiss = cache.WithLabelValues("hit"), cache.WithLabelValues("miss")
	m.storeTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "idtx_store_duration_seconds", Help: "Time of consent store calls, by operation.",
		Buckets: fineBuckets,
	}, []string{"op"})
	m.storeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "idtx_store_errors_total", Help: "Consent store calls that failed, by operation.",
	}, []string{"op"})
	m.storeRetry = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "idtx_store_busy_retries_total", Help: "Store calls retried because the database was busy (SQLite SQLITE_BUSY).",
	})
	m.reg.MustRegister(m.exchanges, m.latency, m.stepVec, m.inFlight, m.refused, m.keyFetches, cache,
		m.storeTime, m.storeErrors, m.storeRetry)
	for _, l := range []string{limitRate, limitInFlight} {
		m.refused.WithLabelValues(l)
	}
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler { return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}) }

// CacheLookup counts a validation cache lookup (idp.Metrics).
func (m *Metrics) CacheLookup(hit bool) {
	if hit {
		m.cacheHit.Inc()
	} else {
		m.cacheMiss.Inc()
	}
}

// KeyFetch counts a fetch of an IDP's remote key set (idp.Metrics).
func (m *Metrics) KeyFetch(idpName string, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.keyFetches.WithLabelValues(idpName, result).Inc()
}

// exchange counts one exchange from its trace: the services, IDP and mode
// come from the evidence of the steps that passed (configured names
// only, never text from the request).
func (m *Metrics) exchange(result string, trace Trace) {
	var service, idpName, mode string
	for i := range trace {
		e := &trace[i]
		if e.Status != Pass {
			continue
		}
		switch e.Step {
		case "request":
			mode = e.Evidence["mode"]
		case "target":
			service = e.Evidence["services"]
		case "subject":
			idpName = e.Evidence["idp"]
		}
	}
	step := ""
	if len(trace) > 0 {
		step = trace[len(trace)-1].Step
	}
	m.exchanges.WithLabelValues(result, step, service, idpName, mode).Inc()
}
