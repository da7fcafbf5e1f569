package idp

import (
	"strings"
)

// ClaimMap maps a canonical claim name (groups, roles, email, scope, ...)
// to the path where one IDP keeps it, so that workflows and scope checks
// see one shape whatever the IDP.
//
// A path is looked up in two ways, in order:
//
//  1. as the exact name of a top-level claim, so that names holding dots
//     work as they are: Auth0's namespaced "https://example.com/roles";
//  2. else as dot-separated member names into nested objects:
//     Keycloak's "realm_access.roles" is claims["realm_access"]["roles"].
//     A member name may hold dots itself, the longest one present first:
//     Kubernetes' "kubernetes.io.namespace" is
//     claims["kubernetes.io"]["namespace"].
//
// The canonical name is set on the identity's claims, or
// removed when the path is absent, so that subject.groups always means
// what the mapping says. groups and roles become lists of strings (a lone
// string is a one-element list); scope accepts a space-separated string
// or a list (Entra's scp, Okta's scp) and is stored as RFC 8693 §4.2's
// space-separated string, and feeds Identity.Scopes.
type ClaimMap map[string]string

// listClaims are canonical names whose value is always a list.
var listClaims = map[string]bool{"groups": true, "roles": true}

// Lookup finds path in claims, by the rules of ClaimMap.
func Lookup(claims map[string]any, path string) (any, bool) {
	if v, ok := claims[path]; ok {
		return v, true
	}
	// The longest member name that is a prefix of path first; a path
	// comes from config and a token nests at most strictjson.MaxDepth deep.
	for i := strings.LastIndex(path, "."); i > 0; i = strings.LastIndex(path[:i], ".") {
		if obj, ok := claims[path[:i]].(map[string]any); ok {
			if v, ok := Lookup(obj, path[i+1:]); ok {
				return v, true
			}
		}
	}
	return nil, false
}

// apply adds the canonical claims of m to claims, in place. Every
// mapping reads the token's own claims, never another mapping's result:
// with {groups: roles, roles: realm_access.roles}, groups is the token's
// roles whatever order the map is walked in (config refuses such a pair;
// this keeps the outcome fixed for a config that did not go through it).
func (m ClaimMap) apply(claims map[string]any) {
	if len(m) == 0 {
		return
	}
	mapped := make(map[string]any, len(m))
	for name, path := range m {
		v, ok := Lookup(claims, path)
		if !ok || v == nil {
			mapped[name] = nil
			continue
		}
		switch {
		case name == "scope":
			mapped[name] = strings.Join(stringList(v), " ")
		case listClaims[name]:
			list := stringList(v)
			if s, ok := v.(string); ok {
				list = []string{s}
			}
			out := make([]any, len(list))
			for i, s := range list {
				out[i] = s
			}
			mapped[name] = out
		default:
			mapped[name] = v
		}
	}
	for name, v := range mapped {
		if v == nil {
			delete(claims, name)
		} else {
			claims[name] = v
		}
	}
}

// stringList reads a list of strings, a space-separated string for scope,
// or a single string for a list claim; other members are dropped.
func stringList(v any) []string {
	switch x := v.(type) {
	case string:
		return strings.Fields(x)
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	case []string:
		return x
	}
	return nil
}

// identityClaims applies m to claims and returns the identity's scopes:
// the mapped scope when m maps one, else scope or scp as the token has it.
func (m ClaimMap) identityClaims(claims map[string]any) []string {
	m.apply(claims)
	if _, mapped := m["scope"]; mapped {
		s, _ := claims["scope"].(string)
		return strings.Fields(s)
	}
	return scopesOf(claims)
}
