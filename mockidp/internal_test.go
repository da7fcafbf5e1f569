package mockidp_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/idp"
	"github.com/idtx/idtx/mockidp"
	"github.com/idtx/idtx/oauth"
)

// The mock config's internal IDP names the credentials and prefix the
// mock's introspection endpoint uses, and UseBaseURL points it at a
// running mock, through which an opaque token validates.
func TestMockInternalUnderMockConfig(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cfg, err := mockidp.Config()
	if err != nil {
		t.Fatal(err)
	}
	var d *config.IDP
	for i := range cfg.IDPs {
		if cfg.IDPs[i].Name == mockidp.InternalName {
			d = &cfg.IDPs[i]
		}
	}
	if d == nil || d.Type != config.IDPTypeIntrospection || d.Issuer != mockidp.InternalIssuer {
		t.Fatalf("mock-internal in mock.yaml: %+v", d)
	}
	s, _ := d.Spec.(*idp.IntrospectionSpec)
	if s == nil || s.ClientID != mockidp.InternalClientID || s.ClientSecret != mockidp.InternalClientSecret || s.TokenPrefix != mockidp.InternalPrefix {
		t.Fatalf("mock-internal in mock.yaml: %+v", d)
	}
	srv := httptest.NewServer(mockidp.Handler(func() time.Time { return now }))
	defer srv.Close()
	mockidp.UseBaseURL(cfg, srv.URL)
	if s.IntrospectionEndpoint != srv.URL+mockidp.IntrospectPath {
		t.Fatalf("introspection_endpoint = %s", s.IntrospectionEndpoint)
	}
	reg, err := idp.FromConfig(t.Context(), cfg.IDPs, idp.Options{Clock: func() time.Time { return now }, ReadFile: cfg.ReadFile})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := mockidp.Opaque(mockidp.TokenOptions{Sub: "dave", Scope: "orders:read", Now: now, Claims: map[string]any{"groups": []any{"ops"}}})
	if err != nil {
		t.Fatal(err)
	}
	id, err := reg.Validate(t.Context(), tok, oauth.TokenTypeAccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if id.IDP != mockidp.InternalName || id.Subject != "dave" || len(id.Scopes) != 1 || !id.Expiry.Equal(now.Add(mockidp.DefaultTTL)) {
		t.Fatalf("identity %+v", id)
	}
	if g, _ := id.Claims["groups"].([]any); len(g) != 1 || g[0] != "ops" {
		t.Errorf("groups %v", id.Claims["groups"])
	}
}

func TestValidateOpaque(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tok, _ := mockidp.Opaque(mockidp.TokenOptions{Sub: "alice", Now: now, TTL: time.Minute})
	signed, mac, _ := strings.Cut(tok, ".")
	tests := []struct{ name, token, want string }{
		{"valid", tok, ""},
		{"no prefix", strings.TrimPrefix(tok, mockidp.InternalPrefix), "not a mock internal token"},
		{"no dot", signed, "not a mock internal token"},
		{"MAC of another token", signed + "x." + mac, "MAC does not verify"},
		{"MAC not base64url", signed + ".!!", "MAC does not verify"},
	}
	for _, tt := range tests {
		_, err := mockidp.ValidateOpaque(tt.token, now)
		if (tt.want == "" && err != nil) || (tt.want != "" && (err == nil || err.Error() != tt.want)) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
	if _, err := mockidp.ValidateOpaque(tok, now.Add(time.Minute)); err == nil || err.Error() != "expired" {
		t.Errorf("at exp: %v", err)
	}
}

// The mock's introspection endpoint authenticates its client (RFC 7662
// §2.1) and answers active false for what it did not issue.
func TestMockIntrospectEndpoint(t *testing.T) {
	srv := httptest.NewServer(mockidp.Handler(nil))
	defer srv.Close()
	post := func(id, secret, token string) int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+mockidp.IntrospectPath, strings.NewReader(url.Values{"token": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if id != "" {
			req.SetBasicAuth(id, secret)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	tok, _ := mockidp.Opaque(mockidp.TokenOptions{})
	if got := post("", "", tok); got != 401 {
		t.Errorf("no client auth: %d", got)
	}
	if got := post(mockidp.InternalClientID, "wrong", tok); got != 401 {
		t.Errorf("wrong secret: %d", got)
	}
	if got := post(mockidp.InternalClientID, mockidp.InternalClientSecret, ""); got != 400 {
		t.Errorf("no token: %d", got)
	}
	if got := post(mockidp.InternalClientID, mockidp.InternalClientSecret, tok); got != 200 {
		t.Errorf("valid: %d", got)
	}
}
