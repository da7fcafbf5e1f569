package tui

import (
	"encoding/base64"
	"slices"
	"testing"
)

// A delegated token's act chain reads as one line in walk's token view
// and under the issued claims.
func TestActChainLine(t *testing.T) {
	enc := base64.RawURLEncoding.EncodeToString
	token := enc([]byte(`{"alg":"ES256","typ":"at+jwt"}`)) + "." +
		enc([]byte(`{"sub":"alice","act":{"sub":"orders-service","iss":"https://mock-idp.idtx.test","act":{"sub":"frontend"}}}`)) + ".c2ln"
	if lines := decodeToken(token, 200); !slices.Contains(lines, "  act chain: alice ← orders-service ← frontend") {
		t.Errorf("token view lacks the act chain:\n%q", lines)
	}
	if got := actChain(map[string]any{"sub": "alice"}); got != "" {
		t.Errorf("no act: %q", got)
	}
}
