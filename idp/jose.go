package idp

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/idtx/idtx/config"
)

// peeked is a compact JWT split and pre-checked, before any signature is
// verified: enough to pick the IDP and to refuse the RFC 8725 attacks that
// golang-jwt leaves to its caller. Nothing here is trusted yet.
type peeked struct {
	raw    string
	alg    string
	typ    string
	iss    string
	ttype  string // the subject_token_type it was presented as
	header []byte
	claims []byte
}

// refusedHeaders name keys whose values would let a token choose its own
// verification key (RFC 8725 §3.10) or change how it is processed.
var refusedHeaders = map[string]string{
	"jku":  "keys come from config only",
	"x5u":  "keys come from config only",
	"jwk":  "keys come from config only",
	"x5c":  "keys come from config only",
	"crit": "no critical header extension is understood (RFC 7515 §4.1.11)",
	"cty":  "nested JWTs are refused (RFC 8725 §2.8)",
	"enc":  "encrypted JWTs are refused",
	"zip":  "compressed JWTs are refused",
}

// maxJSONDepth bounds nesting in a token's header and claims.
const maxJSONDepth = 16

func peekJWT(token, tokenType string) (*peeked, error) {
	switch n := strings.Count(token, "."); {
	case n == 4:
		return nil, fmt.Errorf("%w: five-part JWE tokens are refused", ErrMalformed)
	case n != 2:
		return nil, fmt.Errorf("%w: not a compact JWT (expected three dot-separated parts)", ErrMalformed)
	}
	h, rest, _ := strings.Cut(token, ".")
	c, _, _ := strings.Cut(rest, ".")
	p := &peeked{raw: token, ttype: tokenType}
	var err error
	if p.header, err = decodeSegment(h); err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrMalformed, err)
	}
	if p.claims, err = decodeSegment(c); err != nil {
		return nil, fmt.Errorf("%w: claims: %w", ErrMalformed, err)
	}
	hdr, err := scanObject(p.header, "alg", "typ")
	if err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrMalformed, err)
	}
	for _, k := range hdr.keys {
		if why, bad := refusedHeaders[k]; bad {
			return nil, fmt.Errorf("%w: header %q is refused: %s", ErrInvalid, k, why)
		}
	}
	p.alg, p.typ = hdr.values[0], hdr.values[1]
	if p.alg == "" {
		return nil, fmt.Errorf("%w: header has no alg", ErrMalformed)
	}
	if strings.EqualFold(p.alg, "none") {
		return nil, fmt.Errorf("%w: alg %q is refused: tokens must be signed", ErrInvalid, clip(p.alg))
	}
	if tokenType != anyTyp {
		if err := checkTyp(p.typ, tokenType); err != nil {
			return nil, err
		}
	}
	cl, err := scanObject(p.claims, "iss")
	if err != nil {
		return nil, fmt.Errorf("%w: claims: %w", ErrMalformed, err)
	}
	p.iss = cl.values[0]
	if p.iss == "" {
		return nil, fmt.Errorf("%w: token has no iss claim", ErrUntrusted)
	}
	return p, nil
}

// decodeSegment decodes unpadded base64url strictly (RFC 7515 §2): no
// padding, no other alphabet, no non-zero trailing bits.
func decodeSegment(s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not strict base64url")
	}
	return b, nil
}

// checkTyp holds the JWT typ header to the token type it was presented as
// (RFC 8725 §3.11, RFC 9068 §2.1). Real IDPs issue access tokens with typ
// at+jwt (RFC 9068), JWT (Keycloak, Entra ID, Auth0) or none (Dex), so
// all three pass here; an IDP's access_token_typ narrows that. What is
// refused everywhere: any other typ (a logout token, a DPoP proof, ...),
// and an at+jwt presented as an id_token. typ is compared as RFC 7515
// §4.1.9 says: case-insensitively, "application/" optional.
func checkTyp(typ, tokenType string) error {
	switch t := config.NormalizeTyp(typ); {
	case t != "" && t != "jwt" && t != "at+jwt":
		return fmt.Errorf("%w: typ %q is not a subject token type (at+jwt, JWT or none)", ErrInvalid, clip(typ))
	case tokenType == TokenTypeIDToken && t == "at+jwt":
		return fmt.Errorf("%w: typ at+jwt is an access token, presented as an id_token", ErrInvalid)
	}
	return nil
}

// object is what scanObject found: every top-level key, and the string
// values of the keys it was asked for.
type object struct {
	keys   []string
	values []string
}

// scanObject reads one JSON object and refuses duplicate member names at
// any depth, compared case-insensitively: golang-jwt and encoding/json let
// the last duplicate win, and an attacker chooses which one a reader sees.
// Keys are compared unescaped, as encoding/json sees them, so "\u0061lg"
// is "alg". It is a scanner, not a validator: encoding/json parses the
// same bytes afterwards and refuses what is not JSON.
func scanObject(data []byte, want ...string) (*object, error) {
	sc := &jsonScanner{data: data}
	o := &object{values: make([]string, len(want))}
	sc.ws()
	if sc.peek() != '{' {
		return nil, fmt.Errorf("not a JSON object")
	}
	err := sc.object(0, func(key string) error {
		o.keys = append(o.keys, key)
		for i, w := range want {
			if key == w {
				if sc.peek() != '"' {
					return fmt.Errorf("%s is not a string", key)
				}
				v, err := sc.str()
				o.values[i] = v
				return err
			}
		}
		return sc.value(1)
	})
	if err != nil {
		return nil, err
	}
	if sc.ws(); sc.i != len(sc.data) {
		return nil, fmt.Errorf("trailing data after the object")
	}
	return o, nil
}

type jsonScanner struct {
	data []byte
	i    int
}

var errJSON = fmt.Errorf("invalid JSON")

func (s *jsonScanner) peek() byte {
	if s.i < len(s.data) {
		return s.data[s.i]
	}
	return 0
}

func (s *jsonScanner) ws() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// object reads {...}, calling member with the reader placed at each value.
func (s *jsonScanner) object(depth int, member func(key string) error) error {
	s.i++ // '{'
	var seen []string
	for first := true; ; first = false {
		s.ws()
		if s.peek() == '}' && first {
			s.i++
			return nil
		}
		if s.peek() != '"' {
			return errJSON
		}
		key, err := s.str()
		if err != nil {
			return err
		}
		for _, k := range seen {
			if strings.EqualFold(k, key) {
				return fmt.Errorf("duplicate member %q", clip(key))
			}
		}
		seen = append(seen, key)
		if s.ws(); s.peek() != ':' {
			return errJSON
		}
		s.i++
		s.ws()
		if err := member(key); err != nil {
			return err
		}
		s.ws()
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return errJSON
		}
	}
}

func (s *jsonScanner) value(depth int) error {
	if depth > maxJSONDepth {
		return fmt.Errorf("nested deeper than %d", maxJSONDepth)
	}
	s.ws()
	switch s.peek() {
	case '{':
		return s.object(depth, func(string) error { return s.value(depth + 1) })
	case '[':
		s.i++
		for first := true; ; first = false {
			s.ws()
			if s.peek() == ']' && first {
				s.i++
				return nil
			}
			if err := s.value(depth + 1); err != nil {
				return err
			}
			s.ws()
			switch s.peek() {
			case ',':
				s.i++
			case ']':
				s.i++
				return nil
			default:
				return errJSON
			}
		}
	case '"':
		_, err := s.str()
		return err
	case 0:
		return errJSON
	}
	// A number, true, false or null: up to the next delimiter.
	start := s.i
	for s.i < len(s.data) && !strings.ContainsRune(",]} \t\n\r", rune(s.data[s.i])) {
		s.i++
	}
	if s.i == start {
		return errJSON
	}
	return nil
}

// str reads a string at s.i and returns it unescaped.
func (s *jsonScanner) str() (string, error) {
	start := s.i
	s.i++ // opening quote
	escaped := false
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case '\\':
			escaped = true
			s.i += 2
			continue
		case '"':
			s.i++
			raw := s.data[start:s.i]
			if !utf8.Valid(raw) {
				// encoding/json would fold invalid bytes to U+FFFD, and
				// two distinct keys into one.
				return "", fmt.Errorf("invalid UTF-8")
			}
			if !escaped {
				return string(raw[1 : len(raw)-1]), nil
			}
			var out string
			if err := json.Unmarshal(raw, &out); err != nil {
				return "", errJSON
			}
			return out, nil
		}
		s.i++
	}
	return "", errJSON
}

// Precheck refuses a compact JWT with the header and structure attacks of
// RFC 8725 (alg none, key-bearing or critical headers, duplicate members,
// nested or encrypted tokens) before any key is looked up. The typ header
// is left to the caller: a client assertion has its own
// (client-authentication+jwt, draft-ietf-oauth-rfc7523bis).
func Precheck(token string) error {
	_, err := peekJWT(token, anyTyp)
	return err
}

// anyTyp makes peekJWT leave the typ header to its caller.
const anyTyp = "\x00any"
