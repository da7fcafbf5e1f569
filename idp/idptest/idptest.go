// Package idptest is the conformance suite every idp.Validator passes,
// whatever kind of IDP it validates for (a JWT key set, a SAML
// certificate, an RFC 7662 introspection endpoint): the same token
// properties are refused with the same error category and a reason that
// names the check. A new kind of IDP runs Run from its tests with a Kit
// that mints its tokens.
package idptest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/idtx/idtx/idp"
)

// Token describes a token for a Kit to mint.
type Token struct {
	Issuer    string // the IDP's own when ""
	Subject   string
	Audience  string // the Kit's Audience when ""
	IssuedAt  time.Time
	NotBefore time.Time // none when zero
	Expiry    time.Time
}

// Kit is one validator under test and the means to make its tokens.
type Kit struct {
	Validator idp.Validator
	// TokenType is the token type URN the tokens are presented as.
	TokenType string
	// Now is the validator's (fixed) clock.
	Now time.Time
	// Audience is one audience the IDP accepts.
	Audience string
	// Mint returns a token the IDP issued: signed with its key, or known
	// to its introspection endpoint.
	Mint func(t testing.TB, tok Token) string
	// Unsigned returns tok without a signature (alg none, an unsigned
	// assertion); nil for a kind that has no signature to strip.
	Unsigned func(t testing.TB, tok Token) string
	// Forge returns tok as an attacker makes it: signed by a key the IDP
	// does not trust, or a token its endpoint never issued (inactive).
	Forge func(t testing.TB, tok Token) string
	// Tamper changes an issued token: a signed claim, or its MAC.
	Tamper func(t testing.TB, token string) string
	// Down makes the IDP unreachable for tokens it has not validated
	// before; nil for a kind that validates offline.
	Down func(t testing.TB)
}

// Run runs the suite. newKit builds a fresh validator for each case, so
// that no case sees another's cache.
func Run(t *testing.T, newKit func(t *testing.T) *Kit) {
	valid := func(k *Kit) Token {
		return Token{Subject: "alice", IssuedAt: k.Now.Add(-time.Minute), Expiry: k.Now.Add(time.Hour)}
	}
	t.Run("valid", func(t *testing.T) {
		k := newKit(t)
		tok := valid(k)
		id, err := k.Validator.Validate(t.Context(), k.Mint(t, tok), k.TokenType)
		if err != nil {
			t.Fatalf("a valid token is refused: %v", err)
		}
		rt := k.Validator.Route()
		if id.Subject != "alice" || id.IDP != rt.Name || id.Issuer != rt.Issuer {
			t.Errorf("identity = %s of %s from %s, want alice of %s from %s", id.Subject, id.IDP, id.Issuer, rt.Name, rt.Issuer)
		}
		if !id.Expiry.Equal(tok.Expiry.Truncate(time.Second)) {
			t.Errorf("expiry = %s, want %s", id.Expiry, tok.Expiry)
		}
	})

	refuse := func(t *testing.T, k *Kit, token string, category error, reasons ...string) {
		t.Helper()
		_, err := k.Validator.Validate(t.Context(), token, k.TokenType)
		if err == nil {
			t.Fatal("accepted")
		}
		if category != nil && !errors.Is(err, category) {
			t.Errorf("error %q is not %q", err, category)
		}
		if category == nil && (errors.Is(err, idp.ErrUnavailable) ||
			!(errors.Is(err, idp.ErrInvalid) || errors.Is(err, idp.ErrMalformed) || errors.Is(err, idp.ErrUntrusted))) {
			t.Errorf("error %q is not a refusal of the token (invalid, malformed or untrusted)", err)
		}
		if len(reasons) > 0 && !containsAny(err.Error(), reasons) {
			t.Errorf("error %q names none of %q", err, reasons)
		}
		if len(token) > 40 && strings.Contains(err.Error(), token) {
			t.Errorf("error echoes the whole token")
		}
	}

	t.Run("expired", func(t *testing.T) {
		k := newKit(t)
		tok := valid(k)
		tok.IssuedAt, tok.Expiry = k.Now.Add(-2*time.Hour), k.Now.Add(-5*time.Minute)
		// An introspection endpoint may say so itself (RFC 7662 §2.2).
		refuse(t, k, k.Mint(t, tok), idp.ErrInvalid, "expired at", "not active")
	})
	t.Run("not yet valid", func(t *testing.T) {
		k := newKit(t)
		tok := valid(k)
		tok.IssuedAt, tok.NotBefore, tok.Expiry = k.Now.Add(-time.Minute), k.Now.Add(time.Hour), k.Now.Add(2*time.Hour)
		refuse(t, k, k.Mint(t, tok), idp.ErrInvalid, "not valid before", "not active")
	})
	t.Run("wrong audience", func(t *testing.T) {
		k := newKit(t)
		tok := valid(k)
		tok.Audience = "https://another-service.example"
		refuse(t, k, k.Mint(t, tok), idp.ErrInvalid, "aud")
	})
	t.Run("untrusted issuer", func(t *testing.T) {
		k := newKit(t)
		tok := valid(k)
		tok.Issuer = "https://evil.example"
		refuse(t, k, k.Mint(t, tok), idp.ErrUntrusted, "https://evil.example")
	})
	t.Run("unsigned", func(t *testing.T) {
		k := newKit(t)
		if k.Unsigned == nil {
			t.Skip("this kind of token has no signature to strip")
		}
		refuse(t, k, k.Unsigned(t, valid(k)), nil)
	})
	t.Run("tampered", func(t *testing.T) {
		k := newKit(t)
		refuse(t, k, k.Tamper(t, k.Mint(t, valid(k))), nil)
	})
	t.Run("forged or inactive", func(t *testing.T) {
		k := newKit(t)
		refuse(t, k, k.Forge(t, valid(k)), nil)
	})
	t.Run("IDP unavailable", func(t *testing.T) {
		k := newKit(t)
		if k.Down == nil {
			t.Skip("this IDP validates offline")
		}
		k.Down(t)
		refuse(t, k, k.Mint(t, valid(k)), idp.ErrUnavailable)
	})
}

func containsAny(s string, subs []string) bool {
	s = strings.ToLower(s)
	for _, sub := range subs {
		if strings.Contains(s, strings.ToLower(sub)) {
			return true
		}
	}
	return false
}
