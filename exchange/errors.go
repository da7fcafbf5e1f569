package exchange

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/idtx/idtx/oauth"
)

func newError(code string, status int, format string, args ...any) *oauth.Error {
	return &oauth.Error{Code: code, Status: status, Description: fmt.Sprintf(format, args...)}
}

// WriteError writes e as the JSON error body of RFC 6749 §5.2.
func WriteError(w http.ResponseWriter, e *oauth.Error) {
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
func writeResult(w http.ResponseWriter, res *oauth.Result) {
	h := w.Header()
	h["Content-Type"] = contentTypeJSON
	h["Cache-Control"] = noStore
	h["Pragma"] = noCache
	w.WriteHeader(http.StatusOK)
	w.Write(appendResult(make([]byte, 0, 128+len(res.AccessToken)), res))
}

func appendResult(b []byte, res *oauth.Result) []byte {
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
