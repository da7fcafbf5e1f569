package idp

import (
	"encoding/base64"
	"strings"
	"testing"
)

// TestPeekJWTJSON: the header and the claims go through the one strict
// decoder (internal/strictjson), and its refusals reach the caller with
// the part they were found in.
func TestPeekJWTJSON(t *testing.T) {
	const claims = `{"iss":"https://idp.test","sub":"alice"}`
	const header = `{"alg":"RS256","typ":"JWT"}`
	tests := []struct {
		name, header, claims, err string
		alg                       string
	}{
		{"plain", header, claims, "", "RS256"},
		{"spaces and nesting", ` { "alg" : "ES256" , "x" : [1, {"a": true}, "s", null, -1.5e3] } `, claims, "", "ES256"},
		{"escaped alg", `{"\u0061lg":"PS256"}`, claims, "", "PS256"},
		{"duplicate alg", `{"alg":"none","alg":"RS256"}`, claims, `malformed token: header: duplicate member "alg"`, ""},
		{"escaped duplicate alg", `{"alg":"RS256","\u0061lg":"none"}`, claims, `malformed token: header: duplicate member "alg"`, ""},
		{"alg and ALG", `{"alg":"RS256","ALG":"none"}`, claims, `malformed token: header: duplicate member "ALG"`, ""},
		{"sub twice", header, `{"iss":"https://idp.test","sub":"alice","sub":"admin"}`, `malformed token: claims: duplicate member "sub"`, ""},
		{"aud and AUD", header, `{"iss":"https://idp.test","aud":"a","AUD":"b"}`, `malformed token: claims: duplicate member "AUD"`, ""},
		{"nested duplicate", header, `{"iss":"https://idp.test","x":[{"k":1},{"k":1,"K":2}]}`, `malformed token: claims: duplicate member "K"`, ""},
		{"alg not a string", `{"alg":1}`, claims, "malformed token: header: alg is not a string", ""},
		{"iss not a string", header, `{"iss":1}`, "malformed token: claims: iss is not a string", ""},
		{"invalid UTF-8", "{\"alg\":\"RS256\",\"a\xff\":1}", claims, "malformed token: header: invalid JSON: invalid UTF-8 after offset 17", ""},
		{"array", `[1]`, claims, "malformed token: header: invalid JSON: not a JSON object", ""},
		{"trailing data", `{"alg":"RS256"} x`, claims, "malformed token: header: invalid JSON: data after the top-level value", ""},
		{"too deep", header, `{"iss":"https://idp.test","a":` + strings.Repeat(`{"a":`, 16) + "1" + strings.Repeat("}", 17), "malformed token: claims: invalid JSON: nested deeper than 16", ""},
	}
	enc := base64.RawURLEncoding.EncodeToString
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := peekJWT(enc([]byte(tt.header))+"."+enc([]byte(tt.claims))+".c2ln", anyTyp)
			switch {
			case tt.err == "" && err != nil:
				t.Fatal(err)
			case tt.err != "" && (err == nil || err.Error() != tt.err):
				t.Fatalf("err %v, want %q", err, tt.err)
			case tt.err == "" && p.alg != tt.alg:
				t.Fatalf("alg %q, want %q", p.alg, tt.alg)
			}
		})
	}
}
