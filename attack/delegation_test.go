package attack

import (
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"testing"
)

// hop is one exchange of a delegation chain: client presents subject (a
// token) with an actor token for actor, for audience.
type hop struct {
	client, secret string
	actor          string
	audience       string
}

// chain runs the hops in order on e's server, each presenting the token
// the one before issued (the first presents a corp token of alice's), and
// returns the last answer, the tokens issued before it and their claims.
func chain(t *testing.T, e *env, hops []hop) (*response, []map[string]any) {
	t.Helper()
	subject := e.corp.sign(t, claims(map[string]any{"scope": "chain:read"}), nil)
	var issued []map[string]any
	for i, h := range hops {
		actor := e.corp.sign(t, claims(map[string]any{"sub": h.actor, "scope": nil}), nil)
		r := e.srv.exchange(t, exchangeForm(subject, "audience", h.audience, "scope", "chain:read",
			"actor_token", actor, "actor_token_type", tokenTypeJWT), h.client, h.secret)
		if i == len(hops)-1 || r.status != http.StatusOK {
			return r, issued
		}
		subject = r.str("access_token")
		issued = append(issued, claimsOf(t, subject))
	}
	return nil, issued
}

// act builds the act claim (RFC 8693 §4.1) the STS should issue for
// actors of corp, newest first.
func act(subs ...string) map[string]any {
	var a map[string]any
	for i := len(subs) - 1; i >= 0; i-- {
		next := map[string]any{"sub": subs[i], "iss": corpIssuer}
		if a != nil {
			next["act"] = a
		}
		a = next
	}
	return a
}

// threeHops are demo-client acting through svc-a for hop1-api, hop1-api's
// resource server acting through svc-b for hop2-api, and hop2-api's acting
// through svc-c for hop3-api.
var threeHops = []hop{
	{"demo-client", "demo-secret", "svc-a", "hop1-api"},
	{"hop1-client", "hop1-secret", "svc-b", "hop2-api"},
	{"hop2-client", "hop2-secret", "svc-c", "hop3-api"},
}

// TestDelegationChain is issue 8 item 3 against a running server: a chain
// of three delegations, each by the resource server (clients[].serves) of
// the token it received, reads back newest actor first, with the subject
// and the IDP it came from kept; the configured max_delegation_depth
// holds.
func TestDelegationChain(t *testing.T) {
	e := newEnv(t)
	r, issued := chain(t, e, threeHops)
	if r.status != http.StatusOK {
		t.Fatalf("third hop: got %d %s, want 200", r.status, r.raw)
	}
	last := claimsOf(t, r.str("access_token"))
	for i, c := range append(issued, last) {
		want := act([]string{"svc-c", "svc-b", "svc-a"}[2-i:]...)
		if !reflect.DeepEqual(c["act"], want) {
			t.Errorf("hop %d: act = %v, want %v", i+1, c["act"], want)
		}
		if c["sub"] != "alice" || c["idp"] != "corp" || c["client_id"] != threeHops[i].client || fmt.Sprint(c["aud"]) != "["+threeHops[i].audience+"]" {
			t.Errorf("hop %d: sub %v idp %v client_id %v aud %v, want alice corp %s %s", i+1, c["sub"], c["idp"], c["client_id"], c["aud"],
				threeHops[i].client, threeHops[i].audience)
		}
	}

	t.Run("impersonation of the STS's own token keeps its chain", func(t *testing.T) {
		tok, _ := e.srv.mustExchange(t, exchangeForm(e.corp.sign(t, claims(map[string]any{"scope": "chain:read"}), nil),
			"audience", "hop1-api", "actor_token", e.corp.sign(t, claims(map[string]any{"sub": "svc-a"}), nil), "actor_token_type", tokenTypeJWT))
		_, c := e.srv.mustExchange(t, exchangeForm(tok, "audience", "hop1-api"))
		if want := act("svc-a"); !reflect.DeepEqual(c["act"], want) {
			t.Fatalf("act = %v, want %v", c["act"], want)
		}
	})

	t.Run("the resource server behind the token's audience introspects it", func(t *testing.T) {
		tok := e.srv.exchange(t, exchangeForm(e.corp.sign(t, claims(nil), nil), "audience", "hop1-api")).str("access_token")
		for _, c := range []struct {
			client, secret string
			active         bool
		}{{"hop1-client", "hop1-secret", true}, {"hop2-client", "hop2-secret", false}} {
			r := e.srv.do(t, &request{path: "/introspect", form: url.Values{"token": {tok}}, basic: &[2]string{c.client, c.secret}})
			if r.status != http.StatusOK || r.body["active"] != c.active || (!c.active && len(r.body) != 1) || (c.active && r.body["sub"] != "alice") {
				t.Errorf("%s: got %d %s, want active %v", c.client, r.status, r.raw, c.active)
			}
		}
	})

	t.Run("a resource server may not pass on a token of another audience", func(t *testing.T) {
		hops := []hop{threeHops[0], {"hop2-client", "hop2-secret", "svc-c", "hop3-api"}}
		r, _ := chain(t, e, hops)
		expectRefusal(t, r, http.StatusBadRequest, "invalid_request",
			"subject_token was issued to client demo-client; client hop2-client may not present it (it is neither that client nor one that serves the token's audience)")
	})
}

// TestDelegationDepth runs the three hops on a server whose
// max_delegation_depth is 2: the third is refused.
func TestDelegationDepth(t *testing.T) {
	f := newFixtureMore(t, fixtureMore{top: "max_delegation_depth: 2\n"})
	e := &env{fixture: f, srv: startServer(t, serveOptions{config: f.config})}
	r, issued := chain(t, e, threeHops)
	if len(issued) != 2 {
		t.Fatalf("the first two hops did not both succeed: %d %s", r.status, r.raw)
	}
	expectRefusal(t, r, http.StatusBadRequest, "invalid_request",
		fmt.Sprintf("actor_token: the act chain would be %d actors deep; max_delegation_depth is %d", 3, 2))
}

// TestChainedExchangeKeepsMayAct: exchanging the user's token once, then
// presenting what came back with another actor, does not get around the
// user's may_act, and a delegated token is no actor (issue 8 item 3, the
// hop a tester found).
func TestChainedExchangeKeepsMayAct(t *testing.T) {
	e := newEnv(t)
	subject := e.corp.sign(t, claims(map[string]any{"scope": "chain:read", "may_act": map[string]any{"sub": "svc-a"}}), nil)
	actor := func(sub string) string { return e.corp.sign(t, claims(map[string]any{"sub": sub, "scope": nil}), nil) }

	first, c := e.srv.mustExchange(t, exchangeForm(subject, "audience", "hop1-api", "scope", "chain:read"))
	if want := map[string]any{"sub": "svc-a", "iss": corpIssuer}; !reflect.DeepEqual(c["may_act"], want) {
		t.Fatalf("may_act = %v, want %v", c["may_act"], want)
	}
	r := e.srv.exchange(t, exchangeForm(first, "subject_token_type", tokenTypeAccessToken, "audience", "hop1-api", "scope", "chain:read",
		"actor_token", actor("mallory"), "actor_token_type", tokenTypeJWT))
	expectRefusal(t, r, http.StatusBadRequest, "invalid_request", `actor_token: sub "mallory" is not the may_act sub of the subject token`)

	delegated, _ := e.srv.mustExchange(t, exchangeForm(first, "subject_token_type", tokenTypeAccessToken, "audience", "hop1-api",
		"scope", "chain:read", "actor_token", actor("svc-a"), "actor_token_type", tokenTypeJWT))
	bob := e.corp.sign(t, claims(map[string]any{"sub": "bob", "scope": "chain:read"}), nil)
	r = e.srv.exchange(t, exchangeForm(bob, "audience", "hop1-api", "scope", "chain:read",
		"actor_token", delegated, "actor_token_type", tokenTypeAccessToken))
	expectRefusal(t, r, http.StatusBadRequest, "invalid_request",
		"actor_token: it carries act (RFC 8693 §4.1): it is itself a delegated token; present the actor's own token")
}
