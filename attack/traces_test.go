package attack

import (
	"encoding/json"
	"net/http"
	"testing"
)

// Nobody can wipe another client's traces: requests that never
// authenticate (here more than the server keeps per client) have a ring
// of their own, so restricted-client's trace survives them and is still
// served to it (docs/explain.md, Live traces).
func TestTracesNotWipedByAnonymousRequests(t *testing.T) {
	f := newFixtureMore(t, fixtureMore{top: "traces: 30\n"})
	e := &env{fixture: f, srv: startServer(t, serveOptions{config: f.config})}
	e.srv.mustExchange(t, exchangeForm(e.corp.sign(t, claims(nil), nil)), "restricted-client", "restricted-secret")
	list := e.traces(t, "restricted-client", "restricted-secret")
	if len(list) != 1 {
		t.Fatalf("restricted-client has %d traces after one exchange", len(list))
	}
	id := list[0].ID

	for range 35 {
		r := e.srv.do(t, &request{form: exchangeForm(e.corp.sign(t, claims(nil), nil)), basic: &[2]string{"", ""}})
		expectRefusal(t, r, http.StatusUnauthorized, "invalid_client", "client authentication is required")
	}
	for range 35 {
		r := e.srv.exchange(t, exchangeForm(e.corp.sign(t, claims(nil), nil)), "restricted-client", "wrong-secret")
		expectRefusal(t, r, http.StatusUnauthorized, "invalid_client", "unknown client or wrong secret")
	}

	if list := e.traces(t, "restricted-client", "restricted-secret"); len(list) != 1 || list[0].ID != id {
		t.Fatalf("restricted-client's traces after 70 unauthenticated requests: %+v, want only %s", list, id)
	}
	r := e.srv.do(t, &request{method: http.MethodGet, path: "/traces/" + id, basic: &[2]string{"restricted-client", "restricted-secret"}})
	if r.status != http.StatusOK || r.str("id") != id || r.str("client_id") != "restricted-client" || r.str("outcome") != "ok" {
		t.Fatalf("GET /traces/%s: %d %s", id, r.status, r.raw)
	}
}

type traceSummary struct {
	ID       string `json:"id"`
	ClientID string `json:"client_id"`
}

// traces is GET /traces as a client.
func (e *env) traces(t *testing.T, id, secret string) []traceSummary {
	t.Helper()
	r := e.srv.do(t, &request{method: http.MethodGet, path: "/traces", basic: &[2]string{id, secret}})
	var list struct{ Traces []traceSummary }
	if r.status != http.StatusOK || json.Unmarshal(r.raw, &list) != nil {
		t.Fatalf("GET /traces as %s: %d %s", id, r.status, r.raw)
	}
	return list.Traces
}
