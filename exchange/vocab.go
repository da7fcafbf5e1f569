// Package exchange is the RFC 8693 token exchange: the request, the
// flowchart engine and its steps, policy, minting, the HTTP handler of the
// STS. The shared vocabulary is package oauth, the client package
// stsclient.
package exchange

import "github.com/idtx/idtx/oauth"

// The vocabulary of package oauth, named here for the engine's steps.
const (
	GrantTypeTokenExchange       = oauth.GrantTypeTokenExchange
	ClientAssertionTypeJWTBearer = oauth.ClientAssertionTypeJWTBearer

	AuthClientSecretBasic = oauth.AuthClientSecretBasic
	AuthClientSecretPost  = oauth.AuthClientSecretPost
	AuthPrivateKeyJWT     = oauth.AuthPrivateKeyJWT
	AuthNone              = oauth.AuthNone

	CodeInvalidRequest         = oauth.CodeInvalidRequest
	CodeInvalidClient          = oauth.CodeInvalidClient
	CodeUnauthorizedClient     = oauth.CodeUnauthorizedClient
	CodeUnsupportedGrantType   = oauth.CodeUnsupportedGrantType
	CodeInvalidTarget          = oauth.CodeInvalidTarget
	CodeInvalidScope           = oauth.CodeInvalidScope
	CodeConsentRequired        = oauth.CodeConsentRequired
	CodeTemporarilyUnavailable = oauth.CodeTemporarilyUnavailable
	CodeServerError            = oauth.CodeServerError
	CodeSlowDown               = oauth.CodeSlowDown
)

// Result is the token response of package oauth (RFC 8693 §2.2.1).
type Result = oauth.Result
