package exchange_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/idtx/idtx/oauth"
)

// FuzzTokenRequest sends arbitrary bodies and Basic credentials to POST
// /token. Whatever arrives, the STS answers with a success holding a token
// or an RFC 6749 §5.2 error object of a known code and status, never a
// panic or a server_error.
func FuzzTokenRequest(f *testing.F) {
	e := newEnv(f)
	valid := e.form(e.subject(nil)).Encode()
	f.Add(valid, "demo-client:demo-secret", "application/x-www-form-urlencoded")
	f.Add(valid+"&audience=billing-api&scope=billing%3Aread", "demo-client:demo-secret", "application/x-www-form-urlencoded")
	f.Add(valid+"&client_id=demo-client&client_secret=demo-secret", "", "application/x-www-form-urlencoded; charset=utf-8")
	f.Add("grant_type=x&grant_type=y", "a:b", "application/x-www-form-urlencoded")
	f.Add("%zz", "", "application/x-www-form-urlencoded")
	f.Add(valid, "", "application/json")
	statuses := map[string]int{
		oauth.CodeInvalidRequest: 400, oauth.CodeUnsupportedGrantType: 400, oauth.CodeInvalidClient: 401,
		oauth.CodeUnauthorizedClient: 400, oauth.CodeInvalidTarget: 400, oauth.CodeInvalidScope: 400,
		oauth.CodeConsentRequired: 400, oauth.CodeTemporarilyUnavailable: 503,
	}
	f.Fuzz(func(t *testing.T, body, basic, contentType string) {
		req := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		if id, secret, ok := strings.Cut(basic, ":"); ok {
			req.SetBasicAuth(id, secret)
		}
		rec := httptest.NewRecorder()
		e.handler.ServeHTTP(rec, req)
		var got map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatalf("status %d, body is not JSON: %q", rec.Code, rec.Body.String())
		}
		if rec.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("no Cache-Control: no-store on %d", rec.Code)
		}
		if rec.Code == http.StatusOK {
			if tok, _ := got["access_token"].(string); strings.Count(tok, ".") != 2 {
				t.Fatalf("200 without a JWT access_token: %v", got)
			}
			return
		}
		code, _ := got["error"].(string)
		want, known := statuses[code]
		if !known || want != rec.Code {
			t.Fatalf("status %d with error %q (%v)", rec.Code, code, got["error_description"])
		}
	})
}
