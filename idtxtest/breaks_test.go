package idtxtest_test

import (
	"testing"
	"time"

	"github.com/idtx/idtx/idtxtest"
)

// at is the fake clock's time in the tests that assert descriptions with
// times in them.
var at = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// BrokenTokenCases are every failure scenario of `idtx mock token
// --break`, with the exact refusal of the mock STS at the clock at.
var brokenTokenCases = []struct {
	kind, format, tokenType, category, description string
}{
	{"expired", "jwt", typeJWT, "invalid_token", "subject_token: invalid token: expired at 2026-03-01T11:00:00Z (now 2026-03-01T12:00:00Z)"},
	{"not-yet-valid", "jwt", typeJWT, "invalid_token", "subject_token: invalid token: not valid before 2026-03-01T13:00:00Z (now 2026-03-01T12:00:00Z)"},
	{"wrong-issuer", "jwt", typeJWT, "untrusted_issuer", `subject_token: untrusted issuer: iss "https://wrong-issuer.idtx.test" is not a trusted IDP`},
	{"wrong-audience", "jwt", typeJWT, "invalid_token", `subject_token: invalid token: aud ["not-idtx-sts"] contains none of IDP mock's audiences ["idtx-sts"]`},
	{"bad-signature", "jwt", typeJWT, "invalid_token", "subject_token: invalid token: signature does not verify with IDP mock's key"},
	{"unknown-kid", "jwt", typeJWT, "invalid_token", `subject_token: invalid token: no usable key: kid "mock-unknown-kid" is not in the IDP's key set`},
	{"alg-none", "jwt", typeJWT, "invalid_token", `subject_token: invalid token: alg "none" is refused: tokens must be signed`},
	{"hs256-with-public-key", "jwt", typeJWT, "invalid_token", `subject_token: invalid token: alg "HS256" is not allowed for IDP mock (allowed: RS256 ES256 PS256 EdDSA)`},
	{"no-exp", "jwt", typeJWT, "invalid_token", "subject_token: invalid token: exp is required"},
	{"typ-id-token", "jwt", typeAccessToken, "invalid_token", `subject_token: invalid token: typ "JWT" is not one of IDP mock's access_token_typ [at+jwt] for subject_token_type access_token (RFC 9068 §2.1)`},
	{"unsigned", "saml2", typeSAML2, "invalid_token", "subject_token: invalid token: neither the assertion nor the response is signed"},
	{"unsigned", "saml1", typeSAML1, "invalid_token", "subject_token: invalid token: neither the assertion nor the response is signed"},
	{"wrapped", "saml2", typeSAML2, "malformed_token", "subject_token: malformed token: the document holds 2 assertions; exactly one is accepted"},
	{"wrapped", "saml1", typeSAML1, "malformed_token", "subject_token: malformed token: the document holds 2 assertions; exactly one is accepted"},
	{"expired", "saml2", typeSAML2, "invalid_token", "subject_token: invalid token: expired at 2026-03-01T11:00:00Z (now 2026-03-01T12:00:00Z)"},
	{"wrong-audience", "saml2", typeSAML2, "invalid_token", `subject_token: invalid token: audience ["not-idtx-sts"] names none of IDP mock-saml's audiences ["idtx-sts"]`},
}

var formats = map[string]idtxtest.TokenOption{"saml2": idtxtest.SAML2(), "saml1": idtxtest.SAML1()}

// TestBrokenTokens sends a token of every failure scenario to the mock
// over HTTP and asserts the exact refusal, and that the same token
// unbroken passes.
func TestBrokenTokens(t *testing.T) {
	t.Parallel()
	sts := idtxtest.New(t, idtxtest.WithClock(idtxtest.NewClock(at).Now))
	for _, c := range brokenTokenCases {
		t.Run(c.format+"/"+c.kind, func(t *testing.T) {
			var opts []idtxtest.TokenOption
			if f := formats[c.format]; f != nil {
				opts = append(opts, f)
			}
			good := exchange(t, sts, sts.SubjectToken(t, "alice", opts...), c.tokenType, "orders-api")
			if good.Status != 200 {
				t.Fatalf("unbroken %s: %d %v", c.format, good.Status, good.Body)
			}
			a := exchange(t, sts, sts.SubjectToken(t, "alice", append(opts, idtxtest.Broken(c.kind))...), c.tokenType, "orders-api")
			if a.Status != 400 || a.str("error") != "invalid_request" || a.str("error_description") != c.description {
				t.Errorf("got %d %s: %s\nwant 400 invalid_request: %s", a.Status, a.str("error"), a.str("error_description"), c.description)
			}
			x := sts.LastExchange(t)
			if x.Trace.Error == nil || x.Trace.Error.Step != "subject" || x.Trace.Error.Category != c.category {
				t.Errorf("trace error %+v, want step subject, category %s", x.Trace.Error, c.category)
			}
		})
	}
}

// TestBrokenMisuse: a scenario that does not exist, or not for the
// format, fails the test with a message naming it.
func TestBrokenMisuse(t *testing.T) {
	t.Parallel()
	sts := idtxtest.New(t)
	for _, c := range []struct {
		opts []idtxtest.TokenOption
		want string
	}{
		{[]idtxtest.TokenOption{idtxtest.Broken("stale")}, `idtxtest: SubjectToken("alice", jwt): break "stale" is not a failure scenario (scenarios: expired, not-yet-valid, wrong-issuer, wrong-audience, bad-signature, unknown-kid, alg-none, hs256-with-public-key, no-exp, typ-id-token, unsigned, wrapped)`},
		{[]idtxtest.TokenOption{idtxtest.Broken("unsigned")}, `idtxtest: SubjectToken("alice", jwt): break "unsigned" does not apply to format jwt (it applies to saml)`},
		{[]idtxtest.TokenOption{idtxtest.SAML2(), idtxtest.Broken("alg-none")}, `idtxtest: SubjectToken("alice", saml2): break "alg-none" does not apply to format saml (it applies to jwt)`},
		{[]idtxtest.TokenOption{idtxtest.Opaque(), idtxtest.Broken("expired")}, `idtxtest: SubjectToken("alice", opaque): break "expired" does not apply to format opaque (it applies to jwt, saml)`},
		{[]idtxtest.TokenOption{idtxtest.Lifetime(-time.Minute)}, `idtxtest: SubjectToken: Lifetime(-1m0s) must be positive (for an expired token: Broken("expired"))`},
	} {
		if got := fatal(t, func(tb testing.TB) { sts.SubjectToken(tb, "alice", c.opts...) }); got != c.want {
			t.Errorf("got  %s\nwant %s", got, c.want)
		}
	}
}
