package stsclient

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/idtx/idtx/internal/safetext"
	"github.com/idtx/idtx/oauth"
)

// Retryable reports whether err is an answer that says to come back
// later rather than no: HTTP 503 (RFC 9110 §15.6.4) or 429 (RFC 6585 §4),
// or the OAuth errors temporarily_unavailable (RFC 6749 §5.2) and
// slow_down (RFC 8628 §3.5), whatever their status. The wait the STS
// asked for, when it sent Retry-After, is returned with it.
func Retryable(err error) (retry bool, after time.Duration) {
	var oerr *oauth.Error
	if errors.As(err, &oerr) {
		switch {
		case oerr.Code == oauth.CodeTemporarilyUnavailable, oerr.Code == oauth.CodeSlowDown,
			oerr.Status == http.StatusServiceUnavailable, oerr.Status == http.StatusTooManyRequests:
			return true, oerr.RetryAfter
		}
		return false, 0
	}
	var u *UnreachableError
	if errors.As(err, &u) && (u.Status == http.StatusServiceUnavailable || u.Status == http.StatusTooManyRequests) {
		return true, u.RetryAfter
	}
	return false, 0
}

// retryAfter reads a Retry-After header (RFC 9110 §10.2.3): delay-seconds
// or an HTTP-date, as a wait from now; 0 when absent or unreadable.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 32); err == nil {
		if n < 0 {
			return 0
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now).Round(time.Second)
	}
	return 0
}

// answerError is the error of a non-200 answer: the OAuth error it
// carries (RFC 6749 §5.2), else an *UnreachableError; either with the
// answer's Retry-After.
func answerError(u string, resp *http.Response, body []byte, isJSON bool, now time.Time) error {
	wait := retryAfter(resp.Header, now)
	var oerr oauth.Error
	if isJSON && json.Unmarshal(body, &oerr) == nil && oerr.Code != "" {
		oerr.Status, oerr.RetryAfter = resp.StatusCode, wait
		safetext.Sanitize(&oerr) // the STS's words reach a terminal
		return &oerr
	}
	return &UnreachableError{URL: u, Status: resp.StatusCode, Excerpt: excerpt(body), RetryAfter: wait}
}
