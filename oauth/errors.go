package oauth

import (
	"fmt"
	"net/http"
	"time"
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

// Error is an OAuth error response (RFC 6749 §5.2). Handlers return it and
// exchange.WriteError writes it; Cause is logged, never sent.
type Error struct {
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
	// TraceID names the trace of the refused exchange at GET /traces/{id},
	// an extra member RFC 6749 §5.2 allows; set only when traces are on.
	TraceID string `json:"trace_id,omitempty"`
	Status  int    `json:"-"`
	Cause   error  `json:"-"`
	// BasicChallenge adds WWW-Authenticate: Basic to a 401 (RFC 6749 §5.2).
	BasicChallenge bool `json:"-"`
	// RetryAfter, when set, is sent as Retry-After with a 503 (RFC 9110
	// §10.2.3), in whole seconds rounded up.
	RetryAfter time.Duration `json:"-"`
}

func (e *Error) Error() string {
	if e.Description == "" {
		return e.Code
	}
	return e.Code + ": " + e.Description
}

func (e *Error) Unwrap() error { return e.Cause }

func newError(code string, status int, format string, args ...any) *Error {
	return &Error{Code: code, Status: status, Description: fmt.Sprintf(format, args...)}
}

// ErrInvalidRequest is a malformed request, or a subject or actor token
// that does not validate (RFC 8693 §2.2.2).
func ErrInvalidRequest(format string, args ...any) *Error {
	return newError(CodeInvalidRequest, http.StatusBadRequest, format, args...)
}

// ErrUnsupportedGrantType is a grant type other than token exchange.
func ErrUnsupportedGrantType(format string, args ...any) *Error {
	return newError(CodeUnsupportedGrantType, http.StatusBadRequest, format, args...)
}

// ErrInvalidClient is a failed client authentication.
func ErrInvalidClient(format string, args ...any) *Error {
	return newError(CodeInvalidClient, http.StatusUnauthorized, format, args...)
}

// ErrUnauthorizedClient is a client that may not make this exchange.
func ErrUnauthorizedClient(format string, args ...any) *Error {
	return newError(CodeUnauthorizedClient, http.StatusBadRequest, format, args...)
}

// ErrInvalidTarget is an audience or resource the client may not have
// (RFC 8707 §2).
func ErrInvalidTarget(format string, args ...any) *Error {
	return newError(CodeInvalidTarget, http.StatusBadRequest, format, args...)
}

// ErrInvalidScope is a scope the target does not offer or allow.
func ErrInvalidScope(format string, args ...any) *Error {
	return newError(CodeInvalidScope, http.StatusBadRequest, format, args...)
}

// ErrConsentRequired is a granted scope without stored consent.
func ErrConsentRequired(format string, args ...any) *Error {
	return newError(CodeConsentRequired, http.StatusBadRequest, format, args...)
}

// ErrTemporarilyUnavailable is a remote dependency that is down.
func ErrTemporarilyUnavailable(format string, args ...any) *Error {
	return newError(CodeTemporarilyUnavailable, http.StatusServiceUnavailable, format, args...)
}

// ErrServer is a failure of the STS itself.
func ErrServer(cause error) *Error {
	return &Error{Code: CodeServerError, Status: http.StatusInternalServerError, Description: "internal error", Cause: cause}
}
