package oauth_test

import (
	"testing"

	"github.com/idtx/idtx/oauth"
)

func TestActChain(t *testing.T) {
	deep := map[string]any{"sub": "a"}
	for range 20 {
		deep = map[string]any{"sub": "a", "act": deep}
	}
	for _, c := range []struct {
		sub  string
		act  any
		want string
	}{
		{"alice", nil, ""},
		{"alice", map[string]any{"sub": "orders-service", "iss": "x", "act": map[string]any{"sub": "frontend"}}, "alice ← orders-service ← frontend"},
		{"alice", map[string]any{"iss": "x"}, "alice ← ?"},
		{"", "gateway", "? ← ?"},
		{"alice", deep, "alice ← a ← a ← a ← a ← a ← a ← a ← a ← a ← a ← a ← a ← a ← a ← a ← a ← …"},
	} {
		if got := oauth.ActChain(c.sub, c.act); got != c.want {
			t.Errorf("ActChain(%q, %v) = %q, want %q", c.sub, c.act, got, c.want)
		}
	}
}
