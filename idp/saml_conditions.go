package idp

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// checkConditions holds the assertion to its time window, audience and
// bearer confirmation (SAML 2.0 Core §2.5, Profiles §4.1.4.2).
func (v *SAML) checkConditions(a *Assertion) error {
	now := v.cfg.Clock()
	skew := v.cfg.ClockSkew
	ts := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	switch {
	case a.NotOnOrAfter.IsZero():
		return fmt.Errorf("%w: Conditions has no NotOnOrAfter", ErrInvalid)
	case !a.NotBefore.IsZero() && now.Add(skew).Before(a.NotBefore):
		return fmt.Errorf("%w: not valid before %s (now %s)", ErrInvalid, ts(a.NotBefore), ts(now))
	case !now.Add(-skew).Before(a.NotOnOrAfter):
		return fmt.Errorf("%w: expired at %s (now %s)", ErrInvalid, ts(a.NotOnOrAfter), ts(now))
	case !a.BearerNotOnOrAfter.IsZero() && !now.Add(-skew).Before(a.BearerNotOnOrAfter):
		return fmt.Errorf("%w: bearer confirmation expired at %s (now %s)", ErrInvalid, ts(a.BearerNotOnOrAfter), ts(now))
	case len(a.Audiences) == 0:
		return fmt.Errorf("%w: no AudienceRestriction; one naming %q is required", ErrInvalid, v.cfg.Audiences)
	}
	for _, aud := range a.Audiences {
		if slices.Contains(v.cfg.Audiences, aud) {
			return nil
		}
	}
	return fmt.Errorf("%w: audience %q names none of IDP %s's audiences %q", ErrInvalid, clipAll(a.Audiences), v.cfg.Name, v.cfg.Audiences)
}

func (v *SAML) identity(a *Assertion) *Identity {
	claims := map[string]any{"iss": a.Issuer, "sub": a.Subject}
	for attr, claim := range v.cfg.Claims {
		vals, ok := a.Attributes[attr]
		switch {
		case !ok:
		case claim == "scope": // RFC 8693 §4.2: one space-separated string
			claims[claim] = strings.Join(vals, " ")
		default:
			list := make([]any, len(vals))
			for i, s := range vals {
				list[i] = s
			}
			claims[claim] = list
		}
	}
	exp := a.NotOnOrAfter
	if !a.BearerNotOnOrAfter.IsZero() && a.BearerNotOnOrAfter.Before(exp) {
		exp = a.BearerNotOnOrAfter
	}
	claims["exp"] = exp.Unix()
	return &Identity{
		IDP: v.cfg.Name, Issuer: a.Issuer, Subject: a.Subject, Claims: claims, Expiry: exp,
		Scopes: scopesOf(claims),
	}
}
