package exchange_test

import (
	"context"
	"io"
	"log/slog"
	"net/url"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/idtx/idtx/exchange"
	"github.com/idtx/idtx/mockidp"
	"github.com/idtx/idtx/oauth"
	"github.com/idtx/idtx/store"
)

// A consent belongs to one IDP's user. A second trusted IDP whose user
// has the same sub as a consented user of the first (a weaker partner
// IDP, or one whose subjects users can pick) rides on nothing.
func TestConsentIsPerIDP(t *testing.T) {
	e := newEnv(t) // corp's alice has consented to billing:read
	form := func(token string) url.Values {
		return e.form(token, "audience", "billing-api", "scope", "billing:read")
	}
	otherAlice := func() string {
		return e.other.sign(t, e.claims(jwt.MapClaims{"iss": "https://other.test"}), nil)
	}

	if r := e.post("/token", form(e.subject(nil))); r.status != 200 {
		t.Fatalf("corp's alice: %d %v", r.status, r.body)
	}
	expectError(t, e.post("/token", form(otherAlice())), 400, "consent_required",
		"alice of IDP other has not consented to billing:read for billing-api")

	t.Run("trace names idp and user", func(t *testing.T) {
		req := &exchange.Request{Form: form(e.subject(nil)), Basic: &exchange.BasicAuth{ID: "demo-client", Secret: "demo-secret"}}
		_, trace, oerr := e.engine.Run(t.Context(), req)
		if oerr != nil {
			t.Fatal(oerr)
		}
		c := stepOf(t, trace, "consent")
		if c.Status != exchange.Pass || c.Evidence["idp"] != "corp" || c.Evidence["user"] != "alice" || c.Reason != "alice of IDP corp has consented to every scope that needs it" {
			t.Fatalf("consent step %+v", c)
		}
		req.Form = form(otherAlice())
		_, trace, _ = e.engine.Run(t.Context(), req)
		if c := stepOf(t, trace, "consent"); c.Status != exchange.Fail || c.Err == nil || c.Err.Code != "consent_required" {
			t.Fatalf("consent step %+v", c)
		}
	})

	// The STS's own tokens are held to the consents of the IDP the user
	// first came from (their idp claim), not of the STS, nor of anyone
	// with the same sub: a consent revoked between two exchanges stops
	// the chain too.
	t.Run("chained tokens keep the original idp", func(t *testing.T) {
		if err := e.store.Grant(t.Context(), "other", "alice", "billing-api", []string{"billing:read"}); err != nil {
			t.Fatal(err)
		}
		fromOther := e.post("/token", form(otherAlice()))
		fromCorp := e.post("/token", form(e.subject(nil)))
		if fromOther.status != 200 || fromCorp.status != 200 {
			t.Fatalf("first exchanges: %v / %v", fromOther.body, fromCorp.body)
		}
		if n, err := e.store.Revoke(t.Context(), "other", "alice", "billing-api", nil); err != nil || n != 1 {
			t.Fatalf("revoke: %d %v", n, err)
		}
		chained := func(r response) url.Values {
			return e.form(r.str("access_token"), "subject_token_type", oauth.TokenTypeAccessToken, "audience", "billing-api", "scope", "billing:read")
		}
		expectError(t, e.post("/token", chained(fromOther)), 400, "consent_required",
			"alice of IDP other has not consented to billing:read for billing-api")
		r := e.post("/token", chained(fromCorp))
		if r.status != 200 {
			t.Fatalf("chained corp alice: %d %v", r.status, r.body)
		}
		if claims, _ := e.issued(r.str("access_token")); claims["idp"] != "corp" || claims["sub"] != "alice" {
			t.Fatalf("chained claims %v", claims)
		}
	})
}

// The same through SAML, with the mock's own IDPs: alice of mock-saml is
// not alice of mock, whichever of the two holds the consent.
func TestConsentIsPerIDPThroughSAML(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	jwtAlice, err := mockidp.JWT(mockidp.TokenOptions{Sub: "alice", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	samlAlice, err := mockidp.SAML(mockidp.TokenOptions{Sub: "alice", Now: now}, 2)
	if err != nil {
		t.Fatal(err)
	}
	jwtForm := url.Values{"subject_token": {jwtAlice}, "subject_token_type": {oauth.TokenTypeJWT}}
	samlForm := url.Values{"subject_token": {samlAlice}, "subject_token_type": {oauth.TokenTypeSAML2}}

	for _, c := range []struct {
		consented     string
		pass, refused url.Values
		refusedIDP    string
	}{
		{mockidp.Name, jwtForm, samlForm, mockidp.SAMLName},
		{mockidp.SAMLName, samlForm, jwtForm, mockidp.Name},
	} {
		t.Run("consent of "+c.consented, func(t *testing.T) {
			e := mockEnv(t, now)
			if err := e.store.Grant(t.Context(), c.consented, "alice", "billing-api", []string{"billing:read"}); err != nil {
				t.Fatal(err)
			}
			if r := e.post("/token", mockForm(c.pass)); r.status != 200 {
				t.Fatalf("alice of %s: %d %v", c.consented, r.status, r.body)
			}
			expectError(t, e.post("/token", mockForm(c.refused)), 400, "consent_required",
				"alice of IDP "+c.refusedIDP+" has not consented to billing:read for billing-api")
		})
	}
	// The mock's seeds keep the README's examples working with both.
	t.Run("mock seeds", func(t *testing.T) {
		e := mockEnv(t, now)
		if err := mockidp.SeedConsents(t.Context(), e.store); err != nil {
			t.Fatal(err)
		}
		for _, f := range []url.Values{jwtForm, samlForm} {
			if r := e.post("/token", mockForm(f)); r.status != 200 {
				t.Fatalf("%s: %d %v", f.Get("subject_token_type"), r.status, r.body)
			}
		}
	})
}

// mockEnv is an env running the mock's configuration on an empty store;
// only its handler and store are set.
func mockEnv(t *testing.T, now time.Time) *env {
	t.Helper()
	cfg, err := mockidp.Config()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Issuer = "https://sts.test"
	store := store.NewMemory()
	engine, err := exchange.Build(context.Background(), cfg, exchange.BuildOptions{Home: t.TempDir(), Store: store, Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, store: store, engine: engine, now: now,
		handler: exchange.NewHandler(engine, slog.New(slog.NewTextHandler(io.Discard, nil)))}
}

// mockForm is an exchange of the subject in f for billing-api billing:read.
func mockForm(f url.Values) url.Values {
	return url.Values{
		"grant_type": {oauth.GrantTypeTokenExchange}, "subject_token": f["subject_token"],
		"subject_token_type": f["subject_token_type"], "audience": {"billing-api"}, "scope": {"billing:read"},
	}
}

func stepOf(t *testing.T, trace exchange.Trace, name string) exchange.Entry {
	t.Helper()
	for _, s := range trace {
		if s.Step == name {
			return s
		}
	}
	t.Fatalf("no %s step in %+v", name, trace)
	return exchange.Entry{}
}
