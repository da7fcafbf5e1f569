// Package strictjson decodes the JSON documents a remote party writes and
// idtx acts on: webhook answers, introspection answers (RFC 7662), JWT
// headers and claims (RFC 7515, RFC 7519). It refuses any object that
// holds a member name twice, exactly or folded, at any depth.
//
// encoding/json lets the last of two equal names win and matches a struct
// field to a name in any case, so {"allow": false, "ALLOW": true} reads
// as allow, and {"alg":"none","alg":"RS256"} means one thing to one
// reader and another to the next (RFC 8725 §2.1, RFC 8259 §4: names
// "SHOULD be unique"). One decoder for all of them, so no hand-written
// scanner can lose its place in one of them.
//
// The grammar, UTF-8 and exact duplicate names are checked by jsontext
// (github.com/go-json-experiment/json, the basis of Go's encoding/json/v2);
// this package adds folded names and a depth bound, then decodes with
// encoding/json, whose numbers (float64) and field matching the rest of
// idtx expects.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// MaxDepth bounds the nesting of objects and arrays: claims flow into CEL
// rules and traces, and nothing a real IDP or webhook sends is deeper.
const MaxDepth = 16

// ErrInvalid is wrapped by every refusal that is not a duplicate name.
var ErrInvalid = errors.New("invalid JSON")

// DuplicateError is a name an object holds twice. Name is the second one,
// as written (unescaped): "AUD" after "aud".
type DuplicateError struct {
	Name string
}

func (e *DuplicateError) Error() string {
	return fmt.Sprintf("duplicate member %q", clip(e.Name))
}

// Check refuses data unless it is exactly one JSON value (RFC 8259, valid
// UTF-8, surrounding whitespace allowed) in which no object holds two
// names that are equal, equal under strings.EqualFold, or equal as
// encoding/json folds names to match struct fields; and nesting is at
// most MaxDepth.
func Check(data []byte) error {
	dec := jsontext.NewDecoder(bytes.NewReader(data)) // duplicate names and invalid UTF-8 refused by default
	var names []map[string]struct{}                   // per open object or array (nil)
	for {
		tok, err := dec.ReadToken()
		if err == io.EOF { // before any value: a value cut short is io.ErrUnexpectedEOF
			return fmt.Errorf("%w: empty document", ErrInvalid)
		}
		if err != nil {
			var serr *jsontext.SyntacticError
			if errors.As(err, &serr) && serr.Err == jsontext.ErrDuplicateName {
				return &DuplicateError{Name: serr.JSONPointer.LastToken()}
			}
			return fmt.Errorf("%w: %s", ErrInvalid, clip(strings.TrimPrefix(err.Error(), "jsontext: ")))
		}
		depth := dec.StackDepth()
		switch tok.Kind() {
		case '{', '[':
			if depth > MaxDepth {
				return fmt.Errorf("%w: nested deeper than %d", ErrInvalid, MaxDepth)
			}
			var set map[string]struct{}
			if tok.Kind() == '{' {
				set = map[string]struct{}{}
			}
			names = append(names, set)
		case '}', ']':
			names = names[:len(names)-1]
		case '"':
			// jsontext knows whether this string was a member name: the
			// object's length counts names and values, so it is odd just
			// after a name.
			if kind, n := dec.StackIndex(depth); kind == '{' && n%2 == 1 {
				name := tok.String()
				set := names[len(names)-1]
				for _, k := range foldKeys(name) {
					if _, seen := set[k]; seen {
						return &DuplicateError{Name: name}
					}
					set[k] = struct{}{}
				}
			}
		}
		if depth == 0 {
			// One value only: what follows must be whitespace.
			if _, err := dec.ReadToken(); err != io.EOF {
				return fmt.Errorf("%w: data after the top-level value", ErrInvalid)
			}
			return nil
		}
	}
}

// Unmarshal checks data as Check does, then decodes it into v with
// encoding/json.
func Unmarshal(data []byte, v any) error {
	if err := Check(data); err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return nil
}

// Object decodes data, which must be a JSON object, as Unmarshal does.
func Object(data []byte) (map[string]any, error) {
	if err := Check(data); err != nil {
		return nil, err
	}
	if b := bytes.TrimLeft(data, " \t\r\n"); len(b) == 0 || b[0] != '{' {
		return nil, fmt.Errorf("%w: not a JSON object", ErrInvalid)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return m, nil
}

// foldKeys are the two keys under which name is kept in its object's set:
// one for strings.EqualFold (each rune replaced by the smallest rune of
// its unicode.SimpleFold orbit), one for encoding/json's field matching
// (each rune upper-cased after lower-casing, as its foldName does; it also
// joins U+0130 "İ" with "i", which EqualFold does not). The prefixes keep
// the two apart.
func foldKeys(name string) [2]string {
	var orbit, upper strings.Builder
	orbit.WriteByte('e')
	upper.WriteByte('u')
	for _, r := range name {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			m = min(m, f)
		}
		orbit.WriteRune(m)
		upper.WriteRune(unicode.ToUpper(unicode.ToLower(r)))
	}
	return [2]string{orbit.String(), upper.String()}
}

// clip keeps an error short and printable: a name or a message may come
// from a remote party and reach a client.
func clip(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, s)
	if r := []rune(s); len(r) > 100 {
		return string(r[:100]) + "…"
	}
	return s
}
