package idp

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestScanObject(t *testing.T) {
	tests := []struct {
		in, err string
		alg     string
	}{
		{`{"alg":"RS256","typ":"JWT"}`, "", "RS256"},
		{` { "alg" : "ES256" , "x" : [1, {"a": true}, "s", null, -1.5e3] } `, "", "ES256"},
		{`{"\u0061lg":"PS256"}`, "", "PS256"},
		{`{}`, "", ""},
		{`{"alg":"none","alg":"RS256"}`, `duplicate member "alg"`, ""},
		{`{"alg":"RS256","\u0061lg":"none"}`, `duplicate member "alg"`, ""},
		{`{"aud":"a","AUD":"b"}`, `duplicate member "AUD"`, ""},
		{`{"x":{"sub":"a","sub":"b"}}`, `duplicate member "sub"`, ""},
		{`{"x":[{"k":1,"K":2}]}`, `duplicate member "K"`, ""},
		{`{"alg":1}`, "alg is not a string", ""},
		{"{\"a\xff\":1}", "invalid UTF-8", ""},
		{`[1]`, "not a JSON object", ""},
		{`{"a":1} x`, "trailing data", ""},
		{`{"a":1`, "invalid JSON", ""},
		{`{"a" 1}`, "invalid JSON", ""},
		{`{"a":"unterminated}`, "invalid JSON", ""},
		{strings.Repeat(`{"a":`, 40) + "1" + strings.Repeat("}", 40), "nested deeper", ""},
	}
	for _, tt := range tests {
		o, err := scanObject([]byte(tt.in), "alg")
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("%s: %v", tt.in, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%s: err %v, want %q", tt.in, err, tt.err)
		case tt.err == "" && o.values[0] != tt.alg:
			t.Errorf("%s: alg %q, want %q", tt.in, o.values[0], tt.alg)
		}
	}
}

// FuzzScanObject holds the scanner to encoding/json: whatever it accepts
// without a duplicate, encoding/json sees the same top-level members.
func FuzzScanObject(f *testing.F) {
	for _, s := range []string{`{"alg":"RS256"}`, `{"a":{"b":[1,2]},"c":"\u0041"}`, `{"a":1,"A":2}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := scanObject(data, "alg")
		if err != nil {
			return
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(data, &m) != nil {
			return // not JSON: the decoder after the scanner refuses it
		}
		if len(m) != len(o.keys) {
			t.Fatalf("scanner saw %d members, encoding/json %d: %q", len(o.keys), len(m), data)
		}
		if raw, ok := m["alg"]; ok {
			var alg string
			if json.Unmarshal(raw, &alg) == nil && alg != o.values[0] {
				t.Fatalf("alg %q vs encoding/json %q", o.values[0], alg)
			}
		}
	})
}
