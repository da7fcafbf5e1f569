package exchange

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/idtx/idtx/oauth"
)

// Error is the OAuth error response of package oauth, named here for the
// engine and handler, which return it.
type Error = oauth.Error

// The error constructors of package oauth, for the engine's steps.

// ErrInvalidRequest is oauth.ErrInvalidRequest.
func ErrInvalidRequest(format string, args ...any) *Error {
	return oauth.ErrInvalidRequest(format, args...)
}

// ErrUnsupportedGrantType is oauth.ErrUnsupportedGrantType.
func ErrUnsupportedGrantType(format string, args ...any) *Error {
	return oauth.ErrUnsupportedGrantType(format, args...)
}

// ErrInvalidClient is oauth.ErrInvalidClient.
func ErrInvalidClient(format string, args ...any) *Error {
	return oauth.ErrInvalidClient(format, args...)
}

// ErrUnauthorizedClient is oauth.ErrUnauthorizedClient.
func ErrUnauthorizedClient(format string, args ...any) *Error {
	return oauth.ErrUnauthorizedClient(format, args...)
}

// ErrInvalidTarget is oauth.ErrInvalidTarget.
func ErrInvalidTarget(format string, args ...any) *Error {
	return oauth.ErrInvalidTarget(format, args...)
}

// ErrInvalidScope is oauth.ErrInvalidScope.
func ErrInvalidScope(format string, args ...any) *Error {
	return oauth.ErrInvalidScope(format, args...)
}

// ErrConsentRequired is oauth.ErrConsentRequired.
func ErrConsentRequired(format string, args ...any) *Error {
	return oauth.ErrConsentRequired(format, args...)
}

// ErrTemporarilyUnavailable is oauth.ErrTemporarilyUnavailable.
func ErrTemporarilyUnavailable(format string, args ...any) *Error {
	return oauth.ErrTemporarilyUnavailable(format, args...)
}

// ErrServer is oauth.ErrServer.
func ErrServer(cause error) *Error { return oauth.ErrServer(cause) }

func newError(code string, status int, format string, args ...any) *Error {
	return &Error{Code: code, Status: status, Description: fmt.Sprintf(format, args...)}
}

// WriteError writes e as the JSON error body of RFC 6749 §5.2.
func WriteError(w http.ResponseWriter, e *Error) {
	h := w.Header()
	if e.Status == http.StatusUnauthorized && e.BasicChallenge {
		h.Set("WWW-Authenticate", `Basic realm="idtx", charset="UTF-8"`)
	}
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
	writeJSON(w, e.Status, e)
}

// writeJSON writes v with the no-store caching RFC 6749 §5.1 requires of
// token responses.
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	// Canonical keys and shared, never-modified values: no per-response
	// canonicalisation or allocation.
	h["Content-Type"] = contentTypeJSON
	h["Cache-Control"] = noStore
	h["Pragma"] = noCache
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// writeResult writes a token response (RFC 8693 §2.2.1) as writeJSON
// would, byte for byte (TestWriteResult), without reflection: it ends
// every exchange.
func writeResult(w http.ResponseWriter, res *Result) {
	h := w.Header()
	h["Content-Type"] = contentTypeJSON
	h["Cache-Control"] = noStore
	h["Pragma"] = noCache
	w.WriteHeader(http.StatusOK)
	w.Write(appendResult(make([]byte, 0, 128+len(res.AccessToken)), res))
}

func appendResult(b []byte, res *Result) []byte {
	b = append(b, `{"access_token":`...)
	b = appendJSONString(b, res.AccessToken)
	b = append(b, `,"issued_token_type":`...)
	b = appendJSONString(b, res.IssuedTokenType)
	b = append(b, `,"token_type":`...)
	b = appendJSONString(b, res.TokenType)
	b = append(b, `,"expires_in":`...)
	b = strconv.AppendInt(b, res.ExpiresIn, 10)
	if res.Scope != "" {
		b = append(b, `,"scope":`...)
		b = appendJSONString(b, res.Scope)
	}
	return append(b, "}\n"...)
}

var (
	contentTypeJSON = []string{"application/json"}
	noStore         = []string{"no-store"}
	noCache         = []string{"no-cache"}
)
