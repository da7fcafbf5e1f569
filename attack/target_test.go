package attack

import (
	"net/http"
	"strings"
	"testing"
)

// TestInvalidTargetListsOnlyTheClientsOwn: a refused target tells the
// authenticated client which services it may exchange for: exactly its
// own list, never another client's services; a request that does not
// authenticate is refused at the client step and hears no list.
func TestInvalidTargetListsOnlyTheClientsOwn(t *testing.T) {
	e := newEnv(t)
	corp := e.corp.sign(t, claims(nil), nil)
	for _, tc := range []struct {
		name              string
		req               *request
		wantStatus        int
		wantCode, exactly string
	}{
		{"a service the client may not have", withClient(subjectReq(corp, "audience", "billing-api"), "restricted-client", "restricted-secret"),
			http.StatusBadRequest, "invalid_target", "client restricted-client may not exchange for service billing-api; it may exchange for: orders-api"},
		{"an unregistered audience", withClient(subjectReq(corp, "audience", "https://evil.test"), "restricted-client", "restricted-secret"),
			http.StatusBadRequest, "invalid_target", `audience "https://evil.test" is not a registered service; client restricted-client may exchange for: orders-api`},
		{"another client, another list", withClient(subjectReq(corp, "audience", "orders-api", "actor_token", corp, "actor_token_type", tokenTypeJWT), "hop1-client", "hop1-secret"),
			http.StatusBadRequest, "invalid_target", "client hop1-client may not exchange for service orders-api; it may exchange for: hop2-api"},
		{"a wrong secret", withClient(subjectReq(corp, "audience", "nope"), "restricted-client", "wrong"),
			http.StatusUnauthorized, "invalid_client", "client authentication failed (client_secret_basic): unknown client or wrong secret"},
		{"no credentials", withClient(subjectReq(corp, "audience", "nope"), "", ""),
			http.StatusUnauthorized, "invalid_client", "client authentication is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := e.srv.do(t, tc.req)
			desc := got.str("error_description")
			if got.status != tc.wantStatus || got.str("error") != tc.wantCode || desc != tc.exactly {
				t.Fatalf("got %d %s\nwant %d %s: %s", got.status, got.raw, tc.wantStatus, tc.wantCode, tc.exactly)
			}
			for _, other := range []string{"narrow-api", "wide-api", "hop1-api", "hop3-api"} {
				if strings.Contains(desc, other) {
					t.Errorf("the refusal names %s, a service of other clients: %s", other, desc)
				}
			}
		})
	}
}
