package oauth

import "strings"

// maxActChain bounds how many actors ActChain names: the STS refuses
// deeper chains, and a decoded token may hold any depth.
const maxActChain = 16

// ActChain is the act claim of a token (RFC 8693 §4.1) as one line: the
// subject, then each actor newest first, the outermost act being the
// party acting now: "alice ← orders-service ← frontend". It is "" when
// the token has no act. An actor without a sub string is shown as "?".
func ActChain(sub string, act any) string {
	if act == nil {
		return ""
	}
	if sub == "" {
		sub = "?"
	}
	parts := []string{sub}
	for act != nil {
		if len(parts) > maxActChain {
			parts = append(parts, "…")
			break
		}
		m, ok := act.(map[string]any)
		if !ok {
			parts = append(parts, "?")
			break
		}
		name, _ := m["sub"].(string)
		if name == "" {
			name = "?"
		}
		parts = append(parts, name)
		act = m["act"]
	}
	return strings.Join(parts, " ← ")
}
