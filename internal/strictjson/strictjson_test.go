package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
)

func TestCheck(t *testing.T) {
	deep := func(n int) string { return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) }
	tests := []struct {
		name, in, err string
	}{
		{"object", `{"alg":"RS256","typ":"JWT"}`, ""},
		{"spaces and nesting", ` { "alg" : "ES256" , "x" : [1, {"a": true}, "s", null, -1.5e3] } `, ""},
		{"same name in sibling objects", `{"x":[{"a":1},{"a":2}],"y":{"a":3}}`, ""},
		{"empty string values", `{"a":"","b":"","c":{"d":"","e":""}}`, ""},
		{"scalar", `"x"`, ""},
		{"depth 16", deep(16), ""},
		{"exact", `{"alg":"none","alg":"RS256"}`, `duplicate member "alg"`},
		{"escaped", `{"alg":"RS256","\u0061lg":"none"}`, `duplicate member "alg"`},
		{"case", `{"aud":"a","AUD":"b"}`, `duplicate member "AUD"`},
		{"nested object", `{"x":{"sub":"a","sub":"b"}}`, `duplicate member "sub"`},
		{"object in array", `{"x":[{"k":1,"K":2}]}`, `duplicate member "K"`},
		// The webhook scanner this package replaces lost its place after
		// an object inside an array, and took "" for a member name.
		{"after an object in an array", `{"allow": false, "reason": "x", "c": [{"a":1}], "ALLOW": true, "y": ""}`, `duplicate member "ALLOW"`},
		{"Kelvin sign", "{\"k\":1,\"\u212a\":2}", "duplicate member \"\u212a\""},
		{"long s", "{\"s\":1,\"\u017f\":2}", "duplicate member \"\u017f\""},
		{"dotted capital I, as encoding/json folds it", "{\"id\":1,\"\u0130d\":2}", "duplicate member \"\u0130d\""},
		{"invalid UTF-8", "{\"a\xff\":1}", "invalid JSON: invalid UTF-8"},
		{"lone surrogate", `{"a":"\ud800"}`, "invalid JSON: invalid surrogate"},
		{"two values", `{"a":1} {"a":2}`, "invalid JSON: data after the top-level value"},
		{"trailing garbage", `{"a":1} x`, "invalid JSON: data after the top-level value"},
		{"cut short", `{"a":1`, "invalid JSON: unexpected EOF"},
		{"no colon", `{"a" 1}`, "invalid JSON: invalid character '1' after object name"},
		{"empty", ` `, "invalid JSON: empty document"},
		{"depth 17", deep(17), "invalid JSON: nested deeper than 16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check([]byte(tt.in))
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("Check(%s) = %v", tt.in, err)
			case tt.err == "":
				return
			case err == nil || !strings.HasPrefix(err.Error(), tt.err):
				t.Fatalf("Check(%s) = %v, want %q", tt.in, err, tt.err)
			}
			var dup *DuplicateError
			if errors.As(err, &dup) == errors.Is(err, ErrInvalid) {
				t.Errorf("%v: exactly one of DuplicateError and ErrInvalid", err)
			}
		})
	}
}

func TestUnmarshalAndObject(t *testing.T) {
	var a struct {
		Allow *bool `json:"allow"`
	}
	err := Unmarshal([]byte(`{"allow": false, "reason": "x", "c": [{"a":1}], "ALLOW": true, "y": ""}`), &a)
	if err == nil || err.Error() != `duplicate member "ALLOW"` || a.Allow != nil {
		t.Fatalf("Unmarshal = %v, allow %v", err, a.Allow)
	}
	if err := Unmarshal([]byte(`{"ALLOW": true}`), &a); err != nil || a.Allow == nil || !*a.Allow {
		t.Fatalf("one member in another case is still read: %v", err)
	}
	if _, err := Object([]byte(`[1]`)); err == nil || err.Error() != "invalid JSON: not a JSON object" {
		t.Fatalf("Object([1]) = %v", err)
	}
	m, err := Object([]byte(`{"n":1,"o":{"p":[true]}}`))
	if err != nil || m["n"] != 1.0 || !reflect.DeepEqual(m["o"], map[string]any{"p": []any{true}}) {
		t.Fatalf("Object = %v, %v", m, err)
	}
}

// FuzzCheck holds Check to a reference built from encoding/json alone: a
// recursive walk over its tokens that compares every pair of names in an
// object (strings.EqualFold, or equal once each rune is lower- then
// upper-cased, as encoding/json matches fields). Check refuses a duplicate
// iff the walk finds one first; it refuses anything else only where
// encoding/json finds no single valid value, or where jsontext is stricter
// on purpose (invalid UTF-8, a lone surrogate escape), or nesting exceeds
// MaxDepth; and on what it accepts, encoding/json and jsontext's v2
// decoder read the same value.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		`{"alg":"RS256"}`, `{"a":{"b":[1,2]},"c":"\u0041"}`, `{"a":1,"A":2}`,
		`{"allow": false, "reason": "x", "c": [{"a":1}], "ALLOW": true, "y": ""}`,
		`[{"a":1},{"a":1}]`, `{"x":[{"k":1,"K":2}]}`, "{\"k\":1,\"\u212a\":2}", `"s"`, `{"a":1} {}`,
		`{"a":"\ud800"}`, strings.Repeat("[", 17) + strings.Repeat("]", 17),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := Check(data)
		var dup *DuplicateError
		isDup := errors.As(err, &dup)
		ref := reference(data)
		stricter := !utf8.Valid(data) || bytes.Contains(bytes.ToLower(data), []byte(`\ud`))
		switch {
		case err == nil && ref != refOK:
			t.Fatalf("Check accepted %q; reference: %s", data, ref)
		case isDup && ref != refDuplicate:
			t.Fatalf("Check: %v in %q; reference: %s", err, data, ref)
		case err != nil && !isDup && ref == refOK && !stricter:
			t.Fatalf("Check: %v in %q; reference accepts", err, data)
		case ref == refDuplicate && !isDup && !stricter:
			t.Fatalf("reference finds a duplicate in %q; Check: %v", data, err)
		}
		if err != nil {
			return
		}
		var v1, v2 any
		e1, e2 := json.Unmarshal(data, &v1), jsonv2.Unmarshal(data, &v2)
		if (e1 == nil) != (e2 == nil) {
			return // a number out of range, reported differently; not a question of names
		}
		if e1 == nil && !reflect.DeepEqual(v1, v2) {
			t.Fatalf("%q: encoding/json reads %#v, v2 %#v", data, v1, v2)
		}
	})
}

type refResult string

const (
	refOK        refResult = "ok"
	refDuplicate refResult = "duplicate"
	refDeep      refResult = "too deep"
	refInvalid   refResult = "not one JSON value"
)

func reference(data []byte) refResult {
	if !json.Valid(data) {
		// Where a duplicate comes before the error, Check finds it first.
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber() // a number's range is not a question of syntax
		if r := walk(dec, 0); r == refDuplicate || r == refDeep {
			return r
		}
		return refInvalid
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return walk(dec, 0)
}

// walk reads one value recursively and returns the first problem in
// document order.
func walk(dec *json.Decoder, depth int) refResult {
	tok, err := dec.Token()
	if err != nil {
		return refInvalid
	}
	switch tok {
	case json.Delim('{'):
		if depth+1 > MaxDepth {
			return refDeep
		}
		var names []string
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return refInvalid
			}
			name, _ := tok.(string)
			for _, n := range names {
				if strings.EqualFold(n, name) || upperLower(n) == upperLower(name) {
					return refDuplicate
				}
			}
			names = append(names, name)
			if r := walk(dec, depth+1); r != refOK {
				return r
			}
		}
		if _, err := dec.Token(); err != nil {
			return refInvalid
		}
	case json.Delim('['):
		if depth+1 > MaxDepth {
			return refDeep
		}
		for dec.More() {
			if r := walk(dec, depth+1); r != refOK {
				return r
			}
		}
		if _, err := dec.Token(); err != nil {
			return refInvalid
		}
	}
	if depth == 0 {
		if _, err := dec.Token(); err != io.EOF {
			return refInvalid
		}
	}
	return refOK
}

func upperLower(s string) string {
	return strings.Map(func(r rune) rune { return unicode.ToUpper(unicode.ToLower(r)) }, s)
}
