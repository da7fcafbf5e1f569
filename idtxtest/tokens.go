package idtxtest

import (
	"fmt"
	"testing"
	"time"

	"github.com/idtx/idtx/mockidp"
)

// TokenOption shapes a subject token of SubjectToken.
type TokenOption func(*tokenSettings)

type tokenSettings struct {
	opts   mockidp.TokenOptions
	format string
	errs   []string
}

// SAML2 mints a SAML 2.0 assertion of the mock SAML IDP (base64url, as
// RFC 8693 §3 sends it; subject_token_type saml2).
func SAML2() TokenOption { return func(s *tokenSettings) { s.format = "saml2" } }

// SAML1 mints a SAML 1.1 assertion of the mock SAML IDP (subject_token_type saml1).
func SAML1() TokenOption { return func(s *tokenSettings) { s.format = "saml1" } }

// Opaque mints an opaque token of the mock internal IDP, which the STS
// validates through its introspection endpoint (subject_token_type
// access_token).
func Opaque() TokenOption { return func(s *tokenSettings) { s.format = "opaque" } }

// Claim sets a claim (a SAML attribute); it may override any other.
func Claim(name string, value any) TokenOption {
	return func(s *tokenSettings) {
		if s.opts.Claims == nil {
			s.opts.Claims = map[string]any{}
		}
		s.opts.Claims[name] = value
	}
}

// TokenAudience sets the token's aud (default Audience, the STS).
func TokenAudience(aud string) TokenOption { return func(s *tokenSettings) { s.opts.Aud = aud } }

// Scope sets the token's scope claim (space-separated).
func Scope(scope string) TokenOption { return func(s *tokenSettings) { s.opts.Scope = scope } }

// Lifetime sets how long the token is valid from the STS's clock
// (default an hour).
func Lifetime(d time.Duration) TokenOption {
	return func(s *tokenSettings) {
		if d <= 0 {
			s.errs = append(s.errs, fmt.Sprintf("Lifetime(%s) must be positive (for an expired token: Broken(\"expired\"))", d))
		}
		s.opts.TTL = d
	}
}

// MayAct adds a may_act claim naming the actor allowed to act for the
// subject (RFC 8693 §4.4), for delegation.
func MayAct(actor string) TokenOption { return func(s *tokenSettings) { s.opts.MayAct = actor } }

// IssuedAt mints the token as of t instead of the STS's clock.
func IssuedAt(t time.Time) TokenOption { return func(s *tokenSettings) { s.opts.Now = t } }

// Broken mints a token wrong in the named ways, which the STS refuses:
// the failure scenarios of `idtx mock token --break` (docs/testing.md
// lists each with its refusal).
func Broken(kinds ...string) TokenOption {
	return func(s *tokenSettings) {
		for _, k := range kinds {
			s.opts.Breaks = append(s.opts.Breaks, mockidp.Break(k))
		}
	}
}

// SubjectToken mints a mock IDP's token for sub at the STS's clock, as
// `idtx mock token` does: a JWT of the mock JWT IDP unless an option
// names another format. The JWT is signed with the key the mock IDP signs
// with now (a rotate-key fault changes it).
func (s *STS) SubjectToken(t testing.TB, sub string, opts ...TokenOption) string {
	t.Helper()
	set := tokenSettings{format: "jwt"}
	for _, o := range opts {
		o(&set)
	}
	if len(set.errs) > 0 {
		t.Fatalf("idtxtest: SubjectToken: %s", set.errs[0])
	}
	if sub == "" {
		t.Fatalf("idtxtest: SubjectToken: sub is empty")
	}
	set.opts.Sub = sub
	if set.opts.Now.IsZero() {
		set.opts.Now = s.clock()
	}
	var tok string
	var err error
	switch set.format {
	case "jwt":
		tok, err = s.mock.IDP.JWT(set.opts)
	case "saml2":
		tok, err = mockidp.SAML(set.opts, 2)
	case "saml1":
		tok, err = mockidp.SAML(set.opts, 1)
	case "opaque":
		tok, err = mockidp.Opaque(set.opts)
	}
	if err != nil {
		t.Fatalf("idtxtest: SubjectToken(%q, %s): %v", sub, set.format, err)
	}
	return tok
}
