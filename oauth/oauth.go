// Package oauth is the vocabulary the idtx client and server share: the
// grant and assertion type URNs, client authentication method names, token
// type URNs and the short names users type for them (RFC 8693 §3), the
// OAuth error response and its codes (RFC 6749 §5.2, RFC 8693 §2.2.2) and
// the token response (RFC 6749 §5.1, RFC 8693 §2.2.1). It holds no
// behaviour beyond that: the STS is package exchange, the client package
// stsclient.
package oauth

import "strings"

// GrantTypeTokenExchange is the grant type of RFC 8693 §2.1.
const GrantTypeTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"

// ClientAssertionTypeJWTBearer is the client_assertion_type of RFC 7523 §2.2.
const ClientAssertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// Client authentication methods (RFC 7591 §2, OpenID Connect Core §9).
const (
	AuthClientSecretBasic = "client_secret_basic"
	AuthClientSecretPost  = "client_secret_post"
	AuthPrivateKeyJWT     = "private_key_jwt"
	AuthNone              = "none"
)

// Token type URNs (RFC 8693 §3).
const (
	TokenTypeAccessToken  = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeRefreshToken = "urn:ietf:params:oauth:token-type:refresh_token"
	TokenTypeIDToken      = "urn:ietf:params:oauth:token-type:id_token"
	TokenTypeJWT          = "urn:ietf:params:oauth:token-type:jwt"
	TokenTypeSAML1        = "urn:ietf:params:oauth:token-type:saml1"
	TokenTypeSAML2        = "urn:ietf:params:oauth:token-type:saml2"
)

// TokenTypes maps the short names users type to token type URNs.
var TokenTypes = map[string]string{
	"access_token":  TokenTypeAccessToken,
	"refresh_token": TokenTypeRefreshToken,
	"id_token":      TokenTypeIDToken,
	"jwt":           TokenTypeJWT,
	"saml1":         TokenTypeSAML1,
	"saml2":         TokenTypeSAML2,
}

// ResolveTokenType turns a short name or a URN into a URN it knows, or "".
func ResolveTokenType(s string) string {
	if urn, ok := TokenTypes[s]; ok {
		return urn
	}
	if strings.HasPrefix(s, "urn:") {
		for _, urn := range TokenTypes {
			if urn == s {
				return s
			}
		}
	}
	return ""
}

// Result is a successful token exchange response (RFC 8693 §2.2.1).
type Result struct {
	AccessToken     string `json:"access_token"`
	IssuedTokenType string `json:"issued_token_type"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
	Scope           string `json:"scope,omitempty"`
}
