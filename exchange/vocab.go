// Package exchange is the RFC 8693 token exchange: the request, the
// flowchart engine and its steps, policy, minting, the HTTP handler of the
// STS and the client that talks to any STS.
package exchange

import (
	"strings"

	"github.com/idtx/idtx/idp"
)

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

// OAuth error codes (RFC 6749 §5.2, RFC 8707 §2, RFC 8693 §2.2.2).
const (
	CodeInvalidRequest         = "invalid_request"
	CodeInvalidClient          = "invalid_client"
	CodeUnauthorizedClient     = "unauthorized_client"
	CodeUnsupportedGrantType   = "unsupported_grant_type"
	CodeInvalidTarget          = "invalid_target"
	CodeInvalidScope           = "invalid_scope"
	CodeConsentRequired        = "consent_required"
	CodeTemporarilyUnavailable = "temporarily_unavailable"
	CodeServerError            = "server_error"
	// CodeSlowDown answers a client over its rate limit (RFC 8628 §3.5,
	// a token endpoint error in the OAuth Extensions Error Registry).
	CodeSlowDown = "slow_down"
)

// TokenTypes maps the short names users type to token type URNs.
var TokenTypes = map[string]string{
	"access_token":  idp.TokenTypeAccessToken,
	"refresh_token": idp.TokenTypeRefreshToken,
	"id_token":      idp.TokenTypeIDToken,
	"jwt":           idp.TokenTypeJWT,
	"saml1":         idp.TokenTypeSAML1,
	"saml2":         idp.TokenTypeSAML2,
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
