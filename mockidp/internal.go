package mockidp

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/fixtures"
	"github.com/idtx/idtx/idp"
)

// The mock internal IDP (fixtures/mock.yaml; the serve --mock banner lists them): a workflow IDP whose opaque tokens
// only the mock can validate, through its own introspection endpoint.
const (
	InternalName   = "mock-internal"
	InternalIssuer = "https://mock-idp.idtx.test/internal"
	// InternalPrefix starts every opaque token; the mock config routes
	// opaque tokens to mock-internal by it (token_prefix).
	InternalPrefix = "mock_"
	// IntrospectPath is the mock's RFC 7662 endpoint, under the STS.
	IntrospectPath = "/mock/introspect"
	// The credentials the STS authenticates to IntrospectPath with, as
	// fixtures/mock.yaml names them (public, for local development only).
	InternalClientID     = "idtx-sts"
	InternalClientSecret = "mock-introspect-secret"
)

// maxIntrospectBody caps a request to IntrospectPath.
const maxIntrospectBody = 64 << 10

func internalKey() ([]byte, error) {
	k, err := fixtures.FS.ReadFile(fixtures.MockInternalKey)
	if err != nil {
		return nil, err
	}
	return []byte(strings.TrimSpace(string(k))), nil
}

// Opaque mints an opaque token of the mock internal IDP, offline:
// InternalPrefix, the claims as base64url JSON, ".", and an HMAC-SHA256
// of what precedes the dot under the fixture key. Only the mock reads it:
// to anyone else it is an opaque string.
func Opaque(o TokenOptions) (string, error) {
	if err := CheckBreaks(o.Breaks, "opaque"); err != nil {
		return "", err
	}
	key, err := internalKey()
	if err != nil {
		return "", fmt.Errorf("mock internal key: %w", err)
	}
	claims := o.claims(InternalIssuer)
	body, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	signed := InternalPrefix + base64.RawURLEncoding.EncodeToString(body)
	return signed + "." + base64.RawURLEncoding.EncodeToString(mac(key, signed)), nil
}

func mac(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// ValidateOpaque checks an opaque token of the mock internal IDP at now:
// its MAC, then its lifetime. It returns the token's claims.
func ValidateOpaque(token string, now time.Time) (map[string]any, error) {
	key, err := internalKey()
	if err != nil {
		return nil, err
	}
	signed, sig, ok := strings.Cut(token, ".")
	if !ok || !strings.HasPrefix(signed, InternalPrefix) {
		return nil, errors.New("not a mock internal token")
	}
	got, err := base64.RawURLEncoding.Strict().DecodeString(sig)
	if err != nil || !hmac.Equal(got, mac(key, signed)) {
		return nil, errors.New("MAC does not verify")
	}
	body, err := base64.RawURLEncoding.Strict().DecodeString(strings.TrimPrefix(signed, InternalPrefix))
	if err != nil {
		return nil, errors.New("claims are not base64url")
	}
	var claims map[string]any
	if err := json.Unmarshal(body, &claims); err != nil {
		return nil, errors.New("claims are not a JSON object")
	}
	exp, ok := claims["exp"].(float64)
	if !ok || !time.Unix(int64(exp), 0).After(now) {
		return nil, errors.New("expired")
	}
	return claims, nil
}

// introspect is the mock internal IDP's RFC 7662 endpoint: the client
// authenticates with client_secret_basic (§2.1), and the answer is the
// token's claims with active true, or just active false (§2.2).
func introspect(clock func() time.Time) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		r.Body = http.MaxBytesReader(w, r.Body, maxIntrospectBody)
		if err := r.ParseForm(); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_request", "error_description": "the body is not a form"})
			return
		}
		if !clientAuthenticated(r) {
			w.Header().Set("WWW-Authenticate", `Basic realm="mock-internal"`)
			writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_client", "error_description": "client_secret_basic with the fixture credentials is required"})
			return
		}
		token := r.PostForm.Get("token")
		if token == "" {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_request", "error_description": "token is missing"})
			return
		}
		claims, err := ValidateOpaque(token, clock())
		if err != nil {
			writeJSON(w, http.StatusOK, map[string]any{"active": false})
			return
		}
		claims["active"] = true
		claims["token_type"] = "Bearer"
		writeJSON(w, http.StatusOK, claims)
	}
}

// clientAuthenticated checks client_secret_basic, in constant time; the
// id and secret are form-encoded inside Basic (RFC 6749 §2.3.1).
func clientAuthenticated(r *http.Request) bool {
	id, secret, ok := r.BasicAuth()
	if !ok {
		return false
	}
	id, err1 := url.QueryUnescape(id)
	secret, err2 := url.QueryUnescape(secret)
	idOK := subtle.ConstantTimeCompare([]byte(id), []byte(InternalClientID))
	secretOK := subtle.ConstantTimeCompare([]byte(secret), []byte(InternalClientSecret))
	return err1 == nil && err2 == nil && idOK&secretOK == 1
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// UseBaseURL points the mock internal IDP of cfg at the introspection
// endpoint of the mock served at base (the STS's own address), as the
// server fills in its issuer from the address it listens on; and lets the
// github-actions IDP accept cfg.Issuer as an audience.
func UseBaseURL(cfg *config.Config, base string) {
	for i := range cfg.IDPs {
		if s, ok := cfg.IDPs[i].Spec.(*idp.IntrospectionSpec); ok && cfg.IDPs[i].Name == InternalName {
			s.IntrospectionEndpoint = strings.TrimSuffix(base, "/") + IntrospectPath
		}
	}
	trustIssuerAudience(cfg)
}
