package attack

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// withClient sends the request with other Basic credentials.
func withClient(r *request, id, secret string) *request {
	r.basic = &[2]string{id, secret}
	return r
}

// claimIs checks one string claim of an issued token.
func claimIs(name, want string) func(*env, map[string]any) error {
	return func(_ *env, c map[string]any) error {
		if got, _ := c[name].(string); got != want {
			return fmt.Errorf("%s = %v, want %q", name, c[name], want)
		}
		return nil
	}
}

// stsToken is a token the STS issued to demo-client for orders-api with
// orders:read, for chained exchanges.
func stsToken(t testing.TB, e *env) string {
	tok, _ := e.srv.mustExchange(t, exchangeForm(e.corp.sign(t, claims(nil), nil), "scope", "orders:read"))
	return tok
}

// policyRows are the attacks on what the STS grants: targets, scopes,
// lifetime, consent, modes and the token request itself.
func policyRows() []row {
	corp := func(t testing.TB, e *env) string { return e.corp.sign(t, claims(nil), nil) }
	return []row{
		{
			name:       "control: a valid corp token is exchanged",
			build:      func(t testing.TB, e *env) *request { return subjectReq(corp(t, e)) },
			wantStatus: http.StatusOK,
			check: func(e *env, c map[string]any) error {
				for k, v := range map[string]string{"sub": "alice", "idp": "corp", "client_id": "demo-client", "scope": "orders:read", "iss": e.srv.URL} {
					if err := claimIs(k, v)(e, c); err != nil {
						return err
					}
				}
				return nil
			},
		},
		{
			name: "lifetime extension: issued exp is not after the subject's",
			build: func(t testing.TB, e *env) *request {
				return subjectReq(e.corp.sign(t, claims(map[string]any{"exp": time.Now().Add(90 * time.Second).Unix()}), nil))
			},
			wantStatus: http.StatusOK,
			check: func(_ *env, c map[string]any) error {
				exp, _ := c["exp"].(float64)
				if limit := time.Now().Add(90 * time.Second).Unix(); int64(exp) > limit {
					return fmt.Errorf("exp %d is after the subject token's exp (at most %d)", int64(exp), limit)
				}
				return nil
			},
		},
		{
			name: "scope escalation beyond the subject's scopes",
			build: func(t testing.TB, e *env) *request {
				return subjectReq(corp(t, e), "audience", "narrow-api", "scope", "narrow:b")
			},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_scope", wantReason: `scope "narrow:b" is not among the subject token's scopes`,
		},
		{
			name:       "scope the service does not offer",
			build:      func(t testing.TB, e *env) *request { return subjectReq(corp(t, e), "scope", "orders:admin") },
			wantStatus: http.StatusBadRequest, wantCode: "invalid_scope", wantReason: `scope "orders:admin" is not offered by orders-api`,
		},
		{
			name:       "scope of another service",
			build:      func(t testing.TB, e *env) *request { return subjectReq(corp(t, e), "scope", "billing:write") },
			wantStatus: http.StatusBadRequest, wantCode: "invalid_scope", wantReason: `scope "billing:write" is not offered by orders-api`,
		},
		{
			name: "service the client may not have",
			build: func(t testing.TB, e *env) *request {
				return withClient(subjectReq(corp(t, e), "audience", "billing-api"), "restricted-client", "restricted-secret")
			},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_target", wantReason: "client restricted-client may not exchange for service billing-api",
		},
		{
			name:       "unregistered audience",
			build:      func(t testing.TB, e *env) *request { return subjectReq(corp(t, e), "audience", "https://evil.test") },
			wantStatus: http.StatusBadRequest, wantCode: "invalid_target", wantReason: `audience "https://evil.test" is not a registered service`,
		},
		{
			name: "unregistered resource",
			build: func(t testing.TB, e *env) *request {
				return subjectReq(corp(t, e), "audience", "", "resource", "https://evil.test/")
			},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_target", wantReason: `resource "https://evil.test/" is not a registered service`,
		},
		{
			name: "delegation by an impersonation-only client",
			build: func(t testing.TB, e *env) *request {
				return withClient(subjectReq(corp(t, e), "actor_token", corp(t, e), "actor_token_type", tokenTypeJWT), "restricted-client", "restricted-secret")
			},
			wantStatus: http.StatusBadRequest, wantCode: "unauthorized_client", wantReason: "client restricted-client may not use delegation",
		},
		{
			name: "actor not named by may_act",
			build: func(t testing.TB, e *env) *request {
				subject := e.corp.sign(t, claims(map[string]any{"may_act": map[string]any{"sub": "svc-bot"}}), nil)
				actor := e.corp.sign(t, claims(map[string]any{"sub": "mallory"}), nil)
				return subjectReq(subject, "actor_token", actor, "actor_token_type", tokenTypeJWT)
			},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_request", wantReason: `actor_token: sub "mallory" is not the may_act sub`,
		},
		{
			// Without may_act the client's delegation mode decides...
			name: "actor without may_act, client allowed delegation",
			build: func(t testing.TB, e *env) *request {
				return subjectReq(corp(t, e), "actor_token", e.corp.sign(t, claims(map[string]any{"sub": "svc-bot"}), nil), "actor_token_type", tokenTypeJWT)
			},
			wantStatus: http.StatusOK, check: func(_ *env, c map[string]any) error {
				if act, _ := c["act"].(map[string]any); act["sub"] != "svc-bot" || act["iss"] != corpIssuer || len(act) != 2 {
					return fmt.Errorf("act = %v, want exactly {sub: svc-bot, iss: corp}", c["act"])
				}
				return nil
			},
		},
		{
			// ...unless the service requires may_act.
			name: "actor without may_act, service requires it",
			build: func(t testing.TB, e *env) *request {
				return subjectReq(corp(t, e), "actor_token", e.corp.sign(t, claims(map[string]any{"sub": "svc-bot"}), nil), "actor_token_type", tokenTypeJWT, "audience", "wide-api")
			},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_request", wantReason: "actor_token: subject token has no may_act and service wide-api requires it (require_may_act)",
		},
		{
			name: "invalid actor token",
			build: func(t testing.TB, e *env) *request {
				subject := e.corp.sign(t, claims(map[string]any{"may_act": map[string]any{"sub": "svc-bot"}}), nil)
				actor := e.impostor.sign(t, claims(map[string]any{"sub": "svc-bot"}), map[string]any{"kid": e.corp.kid})
				return subjectReq(subject, "actor_token", actor, "actor_token_type", tokenTypeJWT)
			},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_request", wantReason: "actor_token: invalid token: signature does not verify with IDP corp's key",
		},
		{
			name: "consent not stored",
			build: func(t testing.TB, e *env) *request {
				return subjectReq(e.corp.sign(t, claims(map[string]any{"sub": "bob"}), nil), "audience", "billing-api", "scope", "billing:read")
			},
			wantStatus: http.StatusBadRequest, wantCode: "consent_required", wantReason: "has not consented to billing:read for billing-api",
		},
		{
			name:       "wrong grant type",
			build:      func(t testing.TB, e *env) *request { return subjectReq(corp(t, e), "grant_type", "client_credentials") },
			wantStatus: http.StatusBadRequest, wantCode: "unsupported_grant_type", wantReason: `grant_type "client_credentials" is not supported`,
		},
		{
			name: "repeated subject_token",
			build: func(t testing.TB, e *env) *request {
				r := subjectReq(corp(t, e))
				r.form.Add("subject_token", e.partner.sign(t, claims(map[string]any{"iss": partnerIssuer, "sub": "admin"}), nil))
				return r
			},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_request", wantReason: `parameter "subject_token" is repeated`,
		},
		{
			name:       "unknown subject_token_type",
			build:      func(t testing.TB, e *env) *request { return subjectReq(corp(t, e), "subject_token_type", "urn:x:evil") },
			wantStatus: http.StatusBadRequest, wantCode: "invalid_request", wantReason: "is not a known token type URN",
		},
		{
			name: "form sent as JSON",
			build: func(t testing.TB, e *env) *request {
				r := subjectReq(corp(t, e))
				r.header = http.Header{"Content-Type": {"application/json"}}
				return r
			},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_request", wantReason: "Content-Type must be application/x-www-form-urlencoded",
		},
		// Scope side doors (issue 8 item 4).
		{
			name: "scope side door: a second audience offering the scope",
			build: func(t testing.TB, e *env) *request {
				// wide-api first: the scope is then looked up there, and
				// narrow-api's subject_scopes_only is never asked.
				r := subjectReq(corp(t, e), "audience", "wide-api", "scope", "narrow:b")
				r.form.Add("audience", "narrow-api")
				return r
			},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_scope", wantReason: `scope "narrow:b" is not among the subject token's scopes, and narrow-api grants no more than those`,
		},
		{
			name: "scope side door: an STS token widened from orders:read to orders:write",
			build: func(t testing.TB, e *env) *request {
				return subjectReq(stsToken(t, e), "scope", "orders:write")
			},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_scope", wantReason: `scope "orders:write" is not among the scopes of the subject token this STS issued, and orders-api does not allow widening them (allow_scope_widening)`,
		},
		{
			name: "scope side door: another client's STS token",
			build: func(t testing.TB, e *env) *request {
				return withClient(subjectReq(stsToken(t, e)), "restricted-client", "restricted-secret")
			},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_request", wantReason: "subject_token was issued to client demo-client; client restricted-client may not present it (it is neither that client nor one that serves the token's audience)",
		},
		{
			name: "may_act without iss names the subject's own issuer",
			build: func(t testing.TB, e *env) *request {
				subject := e.corp.sign(t, claims(map[string]any{"may_act": map[string]any{"sub": "svc-bot"}}), nil)
				actor := e.partner.sign(t, claims(map[string]any{"iss": partnerIssuer, "sub": "svc-bot"}), nil)
				return subjectReq(subject, "actor_token", actor, "actor_token_type", tokenTypeJWT)
			},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_request", wantReason: `actor_token: iss "https://partner.idp.test" is not the subject's own issuer (may_act has no iss) "https://corp.idp.test"`,
		},
		{
			name: "an IDP's act claim is not copied into an impersonation token",
			build: func(t testing.TB, e *env) *request {
				return subjectReq(e.corp.sign(t, claims(map[string]any{"act": map[string]any{"sub": "admin", "iss": e.srv.URL}}), nil))
			},
			wantStatus: http.StatusOK,
			check: func(_ *env, c map[string]any) error {
				if act, ok := c["act"]; ok {
					return fmt.Errorf("issued token carries the IDP's act claim %v", act)
				}
				return nil
			},
		},
		{
			name: "an IDP's act claim is not nested under a delegation's actor",
			build: func(t testing.TB, e *env) *request {
				subject := e.corp.sign(t, claims(map[string]any{"act": map[string]any{"sub": "admin", "iss": e.srv.URL}}), nil)
				return subjectReq(subject, "actor_token", e.corp.sign(t, claims(map[string]any{"sub": "svc-bot"}), nil), "actor_token_type", tokenTypeJWT)
			},
			wantStatus: http.StatusOK,
			check: func(_ *env, c map[string]any) error {
				if act, _ := c["act"].(map[string]any); act["sub"] != "svc-bot" || act["iss"] != corpIssuer || len(act) != 2 {
					return fmt.Errorf("act = %v, want exactly {sub: svc-bot, iss: corp}", c["act"])
				}
				return nil
			},
		},
	}
}

// TestPolicyAttacks sends the policy attacks to a running server.
func TestPolicyAttacks(t *testing.T) {
	runRows(t, newEnv(t), policyRows())
}

// clientRows are attacks on client authentication (RFC 6749 §2.3, RFC
// 7523 §3).
func clientRows() []row {
	corp := func(t testing.TB, e *env) string { return e.corp.sign(t, claims(nil), nil) }
	// assertReq authenticates as jwt-client with the assertion made by a.
	assertReq := func(a func(t testing.TB, e *env) string) func(testing.TB, *env) *request {
		return func(t testing.TB, e *env) *request {
			return &request{form: withAssertion(exchangeForm(corp(t, e)), "jwt-client", a(t, e))}
		}
	}
	assertWith := func(over map[string]any) func(testing.TB, *env) string {
		return func(t testing.TB, e *env) string {
			return e.client.assertion(t, "jwt-client", e.srv.URL+"/token", over)
		}
	}
	unauthorized := func(name string, build func(testing.TB, *env) *request, reason string) row {
		return row{name: name, build: build, wantStatus: http.StatusUnauthorized, wantCode: "invalid_client", wantReason: reason}
	}
	return []row{
		unauthorized("wrong secret", func(t testing.TB, e *env) *request {
			return withClient(subjectReq(corp(t, e)), "demo-client", "wrong-secret")
		}, "client authentication failed (client_secret_basic): unknown client or wrong secret"),
		unauthorized("unknown client, same answer", func(t testing.TB, e *env) *request {
			return withClient(subjectReq(corp(t, e)), "no-such-client", "demo-secret")
		}, "client authentication failed (client_secret_basic): unknown client or wrong secret"),
		unauthorized("wrong secret in the form", func(t testing.TB, e *env) *request {
			return &request{form: exchangeForm(corp(t, e), "client_id", "demo-client", "client_secret", "wrong")}
		}, "client authentication failed (client_secret_post)"),
		unauthorized("no client authentication", func(t testing.TB, e *env) *request {
			return withClient(subjectReq(corp(t, e)), "", "")
		}, "client authentication is required"),
		unauthorized("public client", func(t testing.TB, e *env) *request {
			return withClient(subjectReq(corp(t, e), "client_id", "demo-client"), "", "")
		}, "public clients may not exchange tokens"),
		{
			name: "two client authentication methods",
			build: func(t testing.TB, e *env) *request {
				return &request{form: exchangeForm(corp(t, e), "client_id", "demo-client", "client_secret", "demo-secret"), basic: &[2]string{"demo-client", "demo-secret"}}
			},
			wantStatus: http.StatusBadRequest, wantCode: "invalid_request", wantReason: "more than one client authentication method",
		},
		{
			name:       "control: a valid client assertion",
			build:      assertReq(assertWith(nil)),
			wantStatus: http.StatusOK, check: claimIs("client_id", "jwt-client"),
		},
		unauthorized("expired client assertion", assertReq(assertWith(map[string]any{
			"iat": time.Now().Add(-10 * time.Minute).Unix(), "exp": time.Now().Add(-5 * time.Minute).Unix(),
		})), "client_assertion: token has invalid claims: token is expired"),
		unauthorized("replayed client assertion", func(t testing.TB, e *env) *request {
			a := assertWith(nil)(t, e)
			e.srv.mustExchange(t, withAssertion(exchangeForm(corp(t, e)), "jwt-client", a))
			return &request{form: withAssertion(exchangeForm(corp(t, e)), "jwt-client", a)}
		}, "was already used"),
		{
			name: "client assertion for another server",
			build: assertReq(func(t testing.TB, e *env) string {
				return e.client.assertion(t, "jwt-client", "https://other-sts.test/token", nil)
			}),
			wantStatus: http.StatusUnauthorized, wantCode: "invalid_client",
			reasonFor: func(e *env) string {
				return `client_assertion: aud "https://other-sts.test/token" must be ` + e.srv.URL + " or " + e.srv.URL + "/token (RFC 7523 §3)"
			},
		},
		unauthorized("client assertion signed by an unregistered key", assertReq(func(t testing.TB, e *env) string {
			return e.impostor.assertion(t, "jwt-client", e.srv.URL+"/token", nil)
		}), "is not in the IDP's key set"),
		unauthorized("client assertion signed by another key under the client's kid", assertReq(func(t testing.TB, e *env) string {
			other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			forged := newJWTKey("ES256", other)
			forged.kid = e.client.kid
			return forged.assertion(t, "jwt-client", e.srv.URL+"/token", nil)
		}), "client_assertion: token signature is invalid"),
		unauthorized("client assertion with alg none", assertReq(func(t testing.TB, e *env) string {
			c := map[string]any{"iss": "jwt-client", "sub": "jwt-client", "aud": e.srv.URL + "/token", "exp": time.Now().Add(time.Minute).Unix(), "jti": randomID()}
			return b64([]byte(`{"alg":"none"}`)) + "." + b64([]byte(mustJSON(c))) + "."
		}), "tokens must be signed"),
		unauthorized("client assertion with a jku header", assertReq(func(t testing.TB, e *env) string {
			c := map[string]any{"iss": "jwt-client", "sub": "jwt-client", "aud": e.srv.URL + "/token", "exp": time.Now().Add(time.Minute).Unix(), "jti": randomID()}
			return e.impostor.sign(t, c, map[string]any{"jku": "http://127.0.0.1:1/jwks"})
		}), `header "jku" is refused`),
		unauthorized("client_id other than the assertion's iss", func(t testing.TB, e *env) *request {
			return &request{form: withAssertion(exchangeForm(corp(t, e)), "demo-client", assertWith(nil)(t, e))}
		}, `client_id "demo-client" does not match the assertion's iss`),
		unauthorized("client assertion valid for an hour", assertReq(assertWith(map[string]any{"exp": time.Now().Add(time.Hour).Unix()})),
			"exp is more than 5m0s ahead"),
		unauthorized("client assertion without jti", assertReq(assertWith(map[string]any{"jti": nil})), "jti is required"),
		unauthorized("client assertion without exp", assertReq(assertWith(map[string]any{"exp": nil})), "exp claim is required"),
		// The assertion's aud (RFC 7523 §3 with the audience injection fix
		// of draft-ietf-oauth-rfc7523bis): one value, the issuer or the
		// token endpoint, as a string or a one-element array.
		{
			name: "client assertion audience naming others too",
			build: assertReq(func(t testing.TB, e *env) string {
				return e.client.assertion(t, "jwt-client", "", map[string]any{"aud": []string{e.srv.URL, "https://other-sts.test"}})
			}),
			wantStatus: http.StatusUnauthorized, wantCode: "invalid_client",
			reasonFor: func(e *env) string {
				return "client_assertion: aud has 2 values; it must be exactly one, " + e.srv.URL + " or " + e.srv.URL + "/token (audience injection, draft-ietf-oauth-rfc7523bis)"
			},
		},
		{
			name: "client assertion audience naming the token endpoint and another",
			build: assertReq(func(t testing.TB, e *env) string {
				return e.client.assertion(t, "jwt-client", "", map[string]any{"aud": []string{"https://other-sts.test/token", e.srv.URL + "/token"}})
			}),
			wantStatus: http.StatusUnauthorized, wantCode: "invalid_client",
			reasonFor: func(e *env) string {
				return "client_assertion: aud has 2 values; it must be exactly one, " + e.srv.URL + " or " + e.srv.URL + "/token (audience injection, draft-ietf-oauth-rfc7523bis)"
			},
		},
		{
			name: "control: client assertion audience, the token endpoint in a one-element array",
			build: assertReq(func(t testing.TB, e *env) string {
				return e.client.assertion(t, "jwt-client", "", map[string]any{"aud": []string{e.srv.URL + "/token"}})
			}),
			wantStatus: http.StatusOK, check: claimIs("client_id", "jwt-client"),
		},
		{
			name:       "control: client assertion audience, the issuer",
			build:      assertReq(func(t testing.TB, e *env) string { return e.client.assertion(t, "jwt-client", e.srv.URL, nil) }),
			wantStatus: http.StatusOK, check: claimIs("client_id", "jwt-client"),
		},
		{
			name: "client assertion typed client-authentication+jwt for the token endpoint",
			build: assertReq(func(t testing.TB, e *env) string {
				return e.client.assertionWith(t, "jwt-client", e.srv.URL+"/token", nil, map[string]any{"typ": "client-authentication+jwt"})
			}),
			wantStatus: http.StatusUnauthorized, wantCode: "invalid_client",
			reasonFor: func(e *env) string {
				return "client_assertion: typ client-authentication+jwt requires aud to be the issuer " + e.srv.URL + ` alone, not "` + e.srv.URL + `/token" (draft-ietf-oauth-rfc7523bis)`
			},
		},
		{
			name: "control: client assertion typed client-authentication+jwt for the issuer",
			build: assertReq(func(t testing.TB, e *env) string {
				return e.client.assertionWith(t, "jwt-client", e.srv.URL, nil, map[string]any{"typ": "client-authentication+jwt"})
			}),
			wantStatus: http.StatusOK, check: claimIs("client_id", "jwt-client"),
		},
		unauthorized("client assertion typed as an access token", assertReq(func(t testing.TB, e *env) string {
			return e.client.assertionWith(t, "jwt-client", e.srv.URL, nil, map[string]any{"typ": "at+jwt"})
		}), `client_assertion: typ "at+jwt" is not JWT or client-authentication+jwt`),
	}
}

// TestClientAttacks sends the client authentication attacks to a running
// server.
func TestClientAttacks(t *testing.T) {
	runRows(t, newEnv(t), clientRows())
}
