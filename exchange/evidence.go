package exchange

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/idtx/idtx/idp"
	"github.com/idtx/idtx/internal/fetch"
)

// The detail evidence of Request.Detail (docs/explain.md): built only for
// explain, walk and kept traces. Names, times, key ids, algorithms, scope
// sets and claims; never a token, a secret or a signature.

// identityDetail records which IDP matched the token and why, how it was
// verified, and each time check against now.
func identityDetail(ev map[string]string, id *idp.Identity, now time.Time) {
	ev[EvidenceMatched] = matchedBecause(id)
	if id.KeyID != "" {
		ev[EvidenceKeyID] = id.KeyID
	}
	if id.Algorithm != "" {
		ev[EvidenceAlgorithm] = id.Algorithm
	}
	if id.Endpoint != "" {
		ev[EvidenceIntrospected] = fetch.Redact(id.Endpoint) // a query may hold a credential
	}
	ev[EvidenceNow] = now.UTC().Format(time.RFC3339)
	ev[EvidenceExpiresIn] = id.Expiry.Sub(now).Round(time.Second).String()
	if t, ok := numericDate(id.Claims["nbf"]); ok {
		ev[EvidenceNotBefore] = t.UTC().Format(time.RFC3339)
	}
	if t, ok := numericDate(id.Claims["iat"]); ok {
		ev[EvidenceIssuedAt] = t.UTC().Format(time.RFC3339)
	}
	ev[EvidenceSkew] = id.Skew.String()
}

// matchedBecause says why the registry sent the token to its IDP.
func matchedBecause(id *idp.Identity) string {
	r := id.Route
	switch {
	case id.IDP == SelfIDP:
		return "iss " + id.Issuer + " is the STS's own issuer"
	case r.By == idp.RouteSAML:
		return "SAML Issuer " + id.Issuer + " is IDP " + id.IDP + "'s"
	case r.By == idp.RouteIntrospection && r.TokenPrefix != "":
		return "token_prefix " + r.TokenPrefix + " is IDP " + id.IDP + "'s"
	case r.By == idp.RouteIntrospection:
		return "an opaque token, and IDP " + id.IDP + " is the one introspection IDP"
	}
	return "iss " + id.Issuer + " is IDP " + id.IDP + "'s issuer"
}

// numericDate reads a NumericDate claim (RFC 7519 §2) as any decoder left it.
func numericDate(v any) (time.Time, bool) {
	switch n := v.(type) {
	case float64:
		return time.Unix(int64(n), 0), true
	case int64:
		return time.Unix(n, 0), true
	case int:
		return time.Unix(int64(n), 0), true
	case json.Number:
		if f, err := n.Float64(); err == nil {
			return time.Unix(int64(f), 0), true
		}
	}
	return time.Time{}, false
}

// scopeDetail records the scope sets the scope step weighed.
func scopeDetail(ev map[string]string, s *State, defaults []string) {
	ev[EvidenceRequested] = strings.Join(s.RequestedScopes, " ")
	if defaults != nil {
		ev[EvidenceDefaults] = strings.Join(defaults, " ")
	}
	own := s.Subject.IDP == SelfIDP
	limited := false
	for _, svc := range s.Services {
		ev[EvidenceAllowedPrefix+svc.Name] = strings.Join(slices.Sorted(maps.Keys(svc.Scopes)), " ")
		limited = limited || svc.SubjectScopesOnly || (own && !svc.AllowScopeWidening)
	}
	if limited {
		ev[EvidenceSubjectScopes] = strings.Join(s.Subject.Scopes, " ")
	}
}

// claimsDetail records the claims of the minted token, each as its JSON
// value (a string unquoted). The token and its signature are not claims.
func claimsDetail(ev map[string]string, claims *AccessClaims) {
	raw, err := json.Marshal(claims)
	if err != nil {
		return
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return
	}
	for k, v := range m {
		var str string
		if json.Unmarshal(v, &str) == nil {
			ev[EvidenceClaimPrefix+k] = str
		} else {
			ev[EvidenceClaimPrefix+k] = string(v)
		}
	}
}
