package idp

// Metrics hears what a registry and its key sets do, for a server's
// /metrics. Its methods are called concurrently, some on every exchange:
// they must be cheap and must not block.
type Metrics interface {
	// CacheLookup counts one lookup in the validation cache.
	CacheLookup(hit bool)
	// KeyFetch counts one fetch of IDP idp's remote key set (or of its
	// discovery document): err is nil when keys were fetched and stored.
	KeyFetch(idp string, err error)
}

type noMetrics struct{}

func (noMetrics) CacheLookup(bool)       {}
func (noMetrics) KeyFetch(string, error) {}

// fetchReporter binds m to one IDP's name.
func fetchReporter(name string, m Metrics) func(error) {
	if m == nil {
		return nil
	}
	return func(err error) { m.KeyFetch(name, err) }
}

// readiness is a key set that can tell whether it has keys yet.
type readiness interface {
	Ready() error
}

// Ready reports, per IDP name, why an IDP cannot validate tokens now: a
// remote key set never fetched (and no discovery done). An IDP whose keys
// were fetched once stays ready while its endpoint is down, since its
// cached keys stay in use. Static keys, SAML certificates and
// introspection IDPs are always ready (introspection endpoints are not
// probed). nil when every IDP is ready.
func (r *Registry) Ready() map[string]error {
	var out map[string]error
	for _, v := range r.all {
		j, ok := v.(*JWT)
		if !ok {
			continue
		}
		rd, ok := j.keys.(readiness)
		if !ok {
			continue
		}
		if err := rd.Ready(); err != nil {
			if out == nil {
				out = map[string]error{}
			}
			out[j.name] = err
		}
	}
	return out
}
