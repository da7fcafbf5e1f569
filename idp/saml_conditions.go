package idp

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/beevik/etree"
)

// instant formats a time for a refusal.
func instant(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// readResponse reads what the checks need from a Response: its top-level
// StatusCode, its Destination (SAML 2.0 Core §3.2.2) or Recipient (SAML
// 1.1 Core §3.4), and its IssueInstant.
func readResponse(resp *etree.Element, version int) (*responseInfo, error) {
	r := &responseInfo{destination: resp.SelectAttrValue("Destination", "")}
	ns := nsSAML2Protocol
	if version == 1 {
		ns = nsSAML1Protocol
		r.destination = resp.SelectAttrValue("Recipient", "")
	}
	var err error
	if r.issueInstant, err = attrTime(resp, "IssueInstant"); err != nil {
		return nil, err
	}
	statuses := childNS(resp, "Status", ns)
	if len(statuses) != 1 {
		return nil, fmt.Errorf("%w: the Response has %d Status elements; exactly one is required", ErrMalformed, len(statuses))
	}
	codes := childNS(statuses[0], "StatusCode", ns)
	if len(codes) != 1 {
		return nil, fmt.Errorf("%w: the Response Status has %d StatusCode elements; exactly one is required", ErrMalformed, len(codes))
	}
	r.status = codes[0].SelectAttrValue("Value", "")
	r.success = r.status == successSAML2
	if version == 1 {
		// SAML 1.1 Core §3.4: Value is a QName, samlp:Success.
		prefix, local, ok := strings.Cut(r.status, ":")
		if !ok {
			prefix, local = "", r.status
		}
		uri, found := namespaceOf(codes[0], prefix)
		r.success = found && uri == nsSAML1Protocol && local == "Success"
	}
	return r, nil
}

// namespaceOf resolves prefix ("" for the default namespace) as declared
// on el or its ancestors.
func namespaceOf(el *etree.Element, prefix string) (string, bool) {
	for e := el; e != nil; e = e.Parent() {
		for _, at := range e.Attr {
			if (prefix == "" && at.Space == "" && at.Key == "xmlns") || (prefix != "" && at.Space == "xmlns" && at.Key == prefix) {
				return at.Value, true
			}
		}
	}
	return "", false
}

// checkResponse holds a Response around the assertion to success, this
// STS as its destination and an issue instant that is not in the future
// (SAML 2.0 Core §3.2.2, Profiles §4.1.4.2; SAML 1.1 Core §3.4).
func (v *SAML) checkResponse(r *responseInfo, leeway time.Duration) error {
	if r == nil {
		return nil
	}
	now := v.cfg.Clock()
	switch {
	case !r.success:
		return fmt.Errorf("%w: the Response's StatusCode is %q, not Success: the IDP did not authenticate the subject", ErrInvalid, clip(r.status))
	case r.destination != "" && len(v.cfg.Recipients) > 0 && !slices.Contains(v.cfg.Recipients, r.destination):
		return fmt.Errorf("%w: Response Destination %q is not one of IDP %s's recipients %q", ErrInvalid, clip(r.destination), v.cfg.Name, v.cfg.Recipients)
	case !r.issueInstant.IsZero() && now.Add(leeway).Before(r.issueInstant):
		return fmt.Errorf("%w: Response IssueInstant %s is in the future (now %s, allowed lead %s)", ErrInvalid, instant(r.issueInstant), instant(now), leeway)
	}
	return nil
}

// maxIssueLead bounds how far ahead of this STS's clock an IDP may date
// its assertions: the largest clock_skew a config may set.
const maxIssueLead = 5 * time.Minute

// issueLeeway is how far in the future an assertion's (and its Response's)
// IssueInstant may lie: the clock skew, or, where the IDP itself dated the
// Conditions' NotBefore earlier than the IssueInstant to allow for peers
// whose clocks lag (Okta dates it five minutes back), that declared lag, up
// to maxIssueLead. The signed NotBefore is the IDP's own statement, so this
// widens nothing an attacker controls; an assertion dated further ahead, or
// with no such NotBefore, is refused.
func (v *SAML) issueLeeway(a *Assertion) time.Duration {
	lead := v.cfg.ClockSkew
	if !a.NotBefore.IsZero() && a.NotBefore.Before(a.IssueInstant) {
		lead = max(lead, min(a.IssueInstant.Sub(a.NotBefore), maxIssueLead))
	}
	return lead
}

// checkConditions holds the assertion to its time window, age, bearer
// confirmation and audience (SAML 2.0 Core §2.5, Profiles §4.1.4.2), and
// returns the instant the subject token expires: the earliest of
// Conditions NotOnOrAfter, the bearer confirmation's NotOnOrAfter and
// IssueInstant plus max_age. Every instant is compared with the clock
// skew, as the Conditions always were.
func (v *SAML) checkConditions(a *Assertion) (time.Time, error) {
	now := v.cfg.Clock()
	skew := v.cfg.ClockSkew
	switch {
	case a.NotOnOrAfter.IsZero():
		return time.Time{}, fmt.Errorf("%w: Conditions has no NotOnOrAfter", ErrInvalid)
	case !a.NotBefore.IsZero() && now.Add(skew).Before(a.NotBefore):
		return time.Time{}, fmt.Errorf("%w: not valid before %s (now %s)", ErrInvalid, instant(a.NotBefore), instant(now))
	case !now.Add(-skew).Before(a.NotOnOrAfter):
		return time.Time{}, fmt.Errorf("%w: expired at %s (now %s)", ErrInvalid, instant(a.NotOnOrAfter), instant(now))
	case a.IssueInstant.IsZero():
		return time.Time{}, fmt.Errorf("%w: the assertion has no IssueInstant", ErrMalformed)
	case now.Add(v.issueLeeway(a)).Before(a.IssueInstant):
		return time.Time{}, fmt.Errorf("%w: IssueInstant %s is in the future (now %s, allowed lead %s)", ErrInvalid, instant(a.IssueInstant), instant(now), v.issueLeeway(a))
	case v.cfg.MaxAge > 0 && !now.Add(-skew).Before(a.IssueInstant.Add(v.cfg.MaxAge)):
		return time.Time{}, fmt.Errorf("%w: issued at %s, older than IDP %s's max_age %s (now %s)", ErrInvalid, instant(a.IssueInstant), v.cfg.Name, v.cfg.MaxAge, instant(now))
	}
	exp := a.NotOnOrAfter
	if v.cfg.MaxAge > 0 && a.IssueInstant.Add(v.cfg.MaxAge).Before(exp) {
		exp = a.IssueInstant.Add(v.cfg.MaxAge)
	}
	bearerUntil, err := v.checkBearer(a, now)
	if err != nil {
		return time.Time{}, err
	}
	if !bearerUntil.IsZero() && bearerUntil.Before(exp) {
		exp = bearerUntil
	}
	return exp, v.checkAudiences(a)
}

// checkBearer requires the subject to be confirmed as a bearer: this STS
// cannot check holder-of-key or sender-vouches confirmations, and takes
// whoever presents the assertion to be its subject.
//
// SAML 2.0 (Core §2.4.1: any one SubjectConfirmation confirms; Profiles
// §4.1.4.2 for a bearer one): at least one bearer SubjectConfirmation
// whose SubjectConfirmationData has a NotOnOrAfter still ahead, no
// NotBefore still ahead, and, when the IDP sets recipients, a Recipient
// among them. It returns the earliest NotOnOrAfter of those that pass;
// when none does, the first one's refusal.
//
// SAML 1.1 (Core §2.4.2) repeats the Subject in every statement: each
// must list the bearer ConfirmationMethod, so that no statement meant for
// a holder of a key is read from a bearer. SAML 1.1 confirmations carry
// no NotOnOrAfter or Recipient: the Conditions' NotOnOrAfter (required)
// bounds the assertion, and the Response's Recipient is checked with the
// recipients in checkResponse.
func (v *SAML) checkBearer(a *Assertion, now time.Time) (time.Time, error) {
	if a.Version == 1 {
		for _, c := range a.confirmations {
			if c.method != bearerSAML1 {
				return time.Time{}, fmt.Errorf("%w: the Subject of the %s has no bearer ConfirmationMethod (%s; found %q): holder-of-key and sender-vouches are refused", ErrInvalid, c.statement, bearerSAML1, clip(c.method))
			}
		}
		return time.Time{}, nil
	}
	var until time.Time
	var first error
	var methods []string
	for _, c := range a.confirmations {
		if c.method != bearerSAML2 {
			methods = append(methods, c.method)
			continue
		}
		err := v.checkBearerData(c, now)
		switch {
		case err == nil && (until.IsZero() || c.notOnOrAfter.Before(until)):
			until = c.notOnOrAfter
		case err != nil && first == nil:
			first = err
		}
	}
	switch {
	case !until.IsZero():
		return until, nil
	case first != nil:
		return time.Time{}, first
	}
	return time.Time{}, fmt.Errorf("%w: the Subject has no bearer SubjectConfirmation (%s; found %q): holder-of-key and sender-vouches are refused", ErrInvalid, bearerSAML2, clipAll(methods))
}

// checkBearerData checks one SAML 2.0 bearer SubjectConfirmationData
// (Profiles §4.1.4.2).
func (v *SAML) checkBearerData(c confirmation, now time.Time) error {
	skew := v.cfg.ClockSkew
	switch {
	case c.notOnOrAfter.IsZero():
		return fmt.Errorf("%w: the bearer SubjectConfirmationData has no NotOnOrAfter (SAML 2.0 Profiles §4.1.4.2)", ErrInvalid)
	case !c.notBefore.IsZero() && now.Add(skew).Before(c.notBefore):
		return fmt.Errorf("%w: the bearer SubjectConfirmationData is not valid before %s (now %s); a bearer confirmation has no NotBefore (SAML 2.0 Profiles §4.1.4.2)", ErrInvalid, instant(c.notBefore), instant(now))
	case !now.Add(-skew).Before(c.notOnOrAfter):
		return fmt.Errorf("%w: bearer confirmation expired at %s (now %s)", ErrInvalid, instant(c.notOnOrAfter), instant(now))
	case len(v.cfg.Recipients) == 0:
		return nil
	case c.recipient == "":
		return fmt.Errorf("%w: the bearer SubjectConfirmationData has no Recipient; IDP %s requires one of its recipients %q", ErrInvalid, v.cfg.Name, v.cfg.Recipients)
	case !slices.Contains(v.cfg.Recipients, c.recipient):
		return fmt.Errorf("%w: bearer SubjectConfirmationData Recipient %q is not one of IDP %s's recipients %q", ErrInvalid, clip(c.recipient), v.cfg.Name, v.cfg.Recipients)
	}
	return nil
}

// checkAudiences requires one of the IDP's audiences in every audience
// restriction: several restrict the assertion to their intersection (SAML
// 2.0 Core §2.5.1.4; AudienceRestrictionCondition likewise in SAML 1.1).
func (v *SAML) checkAudiences(a *Assertion) error {
	if len(a.audienceSets) == 0 {
		return fmt.Errorf("%w: no AudienceRestriction; one naming %q is required", ErrInvalid, v.cfg.Audiences)
	}
	for i, set := range a.audienceSets {
		if !slices.ContainsFunc(set, func(aud string) bool { return slices.Contains(v.cfg.Audiences, aud) }) {
			if len(a.audienceSets) == 1 {
				return fmt.Errorf("%w: audience %q names none of IDP %s's audiences %q", ErrInvalid, clipAll(set), v.cfg.Name, v.cfg.Audiences)
			}
			return fmt.Errorf("%w: AudienceRestriction %d of %d (audience %q) names none of IDP %s's audiences %q; each must (SAML 2.0 Core §2.5.1.4)", ErrInvalid, i+1, len(a.audienceSets), clipAll(set), v.cfg.Name, v.cfg.Audiences)
		}
	}
	for _, aud := range v.cfg.Audiences {
		if !slices.ContainsFunc(a.audienceSets, func(set []string) bool { return !slices.Contains(set, aud) }) {
			return nil
		}
	}
	return fmt.Errorf("%w: no one of IDP %s's audiences %q is in every AudienceRestriction (SAML 2.0 Core §2.5.1.4: the assertion is for their intersection)", ErrInvalid, v.cfg.Name, v.cfg.Audiences)
}

func (v *SAML) identity(a *Assertion, exp time.Time) (*Identity, error) {
	claims := map[string]any{"iss": a.Issuer, "sub": a.Subject}
	for attr, claim := range v.cfg.Claims {
		vals, ok := a.Attributes[attr]
		if !ok {
			continue
		}
		// A mapped attribute becomes a claim that workflows and the
		// issued token compare byte for byte: its values must be plain
		// text, never trimmed ("admins\u00a0" is not "admins").
		if err := a.attributeErrs[attr]; err != nil {
			return nil, fmt.Errorf("attribute %s (claim %s): %w", clip(attr), claim, err)
		}
		for _, s := range vals {
			if err := checkEdges("attribute "+clip(attr)+" value", s); err != nil {
				return nil, err
			}
		}
		if claim == "scope" { // RFC 8693 §4.2: one space-separated string
			claims[claim] = strings.Join(vals, " ")
			continue
		}
		list := make([]any, len(vals))
		for i, s := range vals {
			list[i] = s
		}
		claims[claim] = list
	}
	claims["exp"] = exp.Unix()
	return &Identity{
		IDP: v.cfg.Name, Issuer: a.Issuer, Subject: a.Subject, Claims: claims, Expiry: exp,
		Scopes: scopesOf(claims), Algorithm: a.SignatureAlgorithm, Skew: v.cfg.ClockSkew,
		Route: v.Route(),
	}, nil
}
