package idp

import (
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/internal/strictjson"
	"github.com/idtx/idtx/oauth"
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
	// One strict decoder for the header and the claims: golang-jwt and
	// encoding/json let the last of two equal members win, and match
	// "ALG" to alg, so an attacker would choose which one a reader sees
	// (RFC 8725 §2.1).
	hdr, err := strictjson.Object(p.header)
	if err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrMalformed, err)
	}
	for k := range hdr {
		if why, bad := refusedHeaders[k]; bad {
			return nil, fmt.Errorf("%w: header %q is refused: %s", ErrInvalid, k, why)
		}
	}
	if p.alg, err = stringMember(hdr, "alg"); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	if p.typ, err = stringMember(hdr, "typ"); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
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
	cl, err := strictjson.Object(p.claims)
	if err != nil {
		return nil, fmt.Errorf("%w: claims: %w", ErrMalformed, err)
	}
	if p.iss, err = stringMember(cl, "iss"); err != nil {
		return nil, fmt.Errorf("%w: claims: %v", ErrMalformed, err)
	}
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
	case tokenType == oauth.TokenTypeIDToken && t == "at+jwt":
		return fmt.Errorf("%w: typ at+jwt is an access token, presented as an id_token", ErrInvalid)
	}
	return nil
}

// stringMember is o's member key, which must be a string when present.
func stringMember(o map[string]any, key string) (string, error) {
	v, ok := o[key]
	if !ok {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%s is not a string", key)
	}
	return s, nil
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
