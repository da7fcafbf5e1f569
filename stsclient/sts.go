// Package stsclient is the client side of RFC 8693 token exchange: it
// finds an STS's token endpoint (RFC 8414), authenticates the client to it
// (RFC 6749 §2.3, RFC 7523), exchanges tokens (RFC 8693 §2), asks its
// introspection endpoint (RFC 7662) and reads an idtx STS's traces. It
// speaks the vocabulary of package oauth and imports nothing of the STS
// itself, so a client stays free of its storage and metrics.
package stsclient

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/golang-jwt/jwt/v5"

	"github.com/idtx/idtx/internal/fetch"
	"github.com/idtx/idtx/internal/safetext"
	"github.com/idtx/idtx/oauth"
)

// STS is a Security Token Service this client talks to: idtx itself,
// Keycloak, Dex, Okta, zitadel, Google STS (RFC 8693 §2).
type STS struct {
	TokenEndpoint string
	HTTP          *http.Client
	Auth          ClientAuth
	Now           func() time.Time

	// OnRequest, if set, sees the form and headers just before they are
	// sent, and OnResponse the answer (`idtx exchange -v`). Both hold
	// secrets and tokens: redact before showing.
	OnRequest  func(form url.Values, header http.Header)
	OnResponse func(status int, header http.Header, body []byte)
}

// Form is the token request body and headers Exchange would send for p
// (RFC 8693 §2.1, RFC 6749 §2.3), for showing the request another way
// (`idtx exchange --print-curl`).
func (s *STS) Form(p ExchangeParams) (url.Values, http.Header, error) { return s.form(p) }

// ClientAuth is how the client authenticates to the STS.
type ClientAuth struct {
	Method   string // client_secret_basic, client_secret_post, private_key_jwt, none
	ClientID string
	Secret   string
	Key      crypto.Signer // for private_key_jwt
}

// ExchangeParams are the parameters of one token exchange (RFC 8693 §2.1).
type ExchangeParams struct {
	SubjectToken, SubjectTokenType string
	ActorToken, ActorTokenType     string
	Audiences, Resources           []string
	Scope                          string
	RequestedTokenType             string
	Extra                          url.Values // other form fields (Dex's connector_id, …); they replace idtx's own
}

// UnreachableError is an STS that could not be reached, or that answered
// with something that is not OAuth (an HTML error page, a 502).
type UnreachableError struct {
	URL     string
	Status  int    // 0 when there was no answer
	Excerpt string // the start of a non-OAuth answer
	Err     error
	// RetryAfter is the wait a 503 or 429 asked for (Retry-After).
	RetryAfter time.Duration
}

func (e *UnreachableError) Error() string {
	switch {
	case e.Status != 0 && e.Excerpt != "":
		return fmt.Sprintf("%s answered %d %s, not OAuth JSON: %q", e.URL, e.Status, http.StatusText(e.Status), e.Excerpt)
	case e.Status != 0:
		return fmt.Sprintf("%s answered %d %s, not OAuth JSON", e.URL, e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("%s: %v", e.URL, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// Discover finds the token endpoint of an STS named by its issuer URL:
// RFC 8414 metadata first, then OpenID Connect discovery. A URL whose path
// ends in /token, or one with no metadata, is taken as the endpoint itself.
func Discover(ctx context.Context, client *http.Client, sts string) (string, error) {
	u, err := url.Parse(sts)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("--sts %q is not an http(s) URL", sts)
	}
	if strings.HasSuffix(u.Path, "/token") {
		return sts, nil
	}
	issuer := strings.TrimSuffix(sts, "/")
	path := strings.TrimSuffix(u.Path, "/")
	// RFC 8414 §3.1: the well-known segment goes between host and path.
	candidates := []string{
		u.Scheme + "://" + u.Host + "/.well-known/oauth-authorization-server" + path,
		issuer + "/.well-known/openid-configuration",
	}
	for _, c := range candidates {
		var meta struct {
			Issuer        string `json:"issuer"`
			TokenEndpoint string `json:"token_endpoint"`
		}
		status, err := fetch.JSON(ctx, client, c, &meta)
		if err != nil && status == 0 {
			return "", &UnreachableError{URL: c, Err: err}
		}
		if err == nil && meta.TokenEndpoint != "" {
			// RFC 8414 §3.3: the metadata must name the issuer it was
			// fetched for, or a document planted elsewhere could send the
			// client's credentials to a host of its choosing.
			if strings.TrimSuffix(meta.Issuer, "/") != issuer {
				return "", fmt.Errorf("metadata at %s names issuer %q, not %q (RFC 8414 §3.3): not sending credentials to its token_endpoint; give the token endpoint itself with --sts", c, clipText(meta.Issuer), issuer)
			}
			if t, err := url.Parse(meta.TokenEndpoint); err != nil || (t.Scheme != "https" && t.Scheme != "http") || t.Host == "" {
				return "", fmt.Errorf("metadata at %s has token_endpoint %q, not an http(s) URL", c, clipText(meta.TokenEndpoint))
			}
			return meta.TokenEndpoint, nil
		}
	}
	// No metadata at either place: the URL is the token endpoint itself.
	return sts, nil
}

// Form builds the token request body (RFC 8693 §2.1) and authenticates the
// client in it or in the returned header (RFC 6749 §2.3).
func (s *STS) form(p ExchangeParams) (url.Values, http.Header, error) {
	f := url.Values{}
	f.Set("grant_type", oauth.GrantTypeTokenExchange)
	f.Set("subject_token", p.SubjectToken)
	f.Set("subject_token_type", p.SubjectTokenType)
	set := func(k, v string) {
		if v != "" {
			f.Set(k, v)
		}
	}
	set("actor_token", p.ActorToken)
	set("actor_token_type", p.ActorTokenType)
	set("scope", p.Scope)
	set("requested_token_type", p.RequestedTokenType)
	for _, a := range p.Audiences {
		f.Add("audience", a)
	}
	for _, r := range p.Resources {
		f.Add("resource", r)
	}
	// Extra fields come last and replace a field of the same name, so a
	// user can send what an STS should refuse (--param grant_type=…);
	// the client's authentication below still has the last word.
	for k, v := range p.Extra {
		f[k] = append([]string(nil), v...)
	}
	h := http.Header{}
	a := s.Auth
	switch a.Method {
	case oauth.AuthClientSecretBasic:
		// RFC 6749 §2.3.1: url-encode each part before Basic encoding.
		req := &http.Request{Header: h}
		req.SetBasicAuth(url.QueryEscape(a.ClientID), url.QueryEscape(a.Secret))
	case oauth.AuthClientSecretPost:
		f.Set("client_id", a.ClientID)
		f.Set("client_secret", a.Secret)
	case oauth.AuthPrivateKeyJWT:
		assertion, err := s.assertion()
		if err != nil {
			return nil, nil, err
		}
		f.Set("client_id", a.ClientID)
		f.Set("client_assertion_type", oauth.ClientAssertionTypeJWTBearer)
		f.Set("client_assertion", assertion)
	case oauth.AuthNone:
		f.Set("client_id", a.ClientID)
	default:
		return nil, nil, fmt.Errorf("unknown auth method %q", a.Method)
	}
	return f, h, nil
}

// AssertionLifetime is the life of a private_key_jwt client assertion.
const AssertionLifetime = 60 * time.Second

// assertion signs a fresh private_key_jwt client assertion (RFC 7523 §3).
func (s *STS) assertion() (string, error) {
	method, err := SigningMethodFor(s.Auth.Key)
	if err != nil {
		return "", err
	}
	t := s.now()
	claims := jwt.RegisteredClaims{
		Issuer:    s.Auth.ClientID,
		Subject:   s.Auth.ClientID,
		Audience:  jwt.ClaimStrings{s.TokenEndpoint},
		IssuedAt:  jwt.NewNumericDate(t),
		ExpiresAt: jwt.NewNumericDate(t.Add(AssertionLifetime)),
		ID:        newJTI(),
	}
	return jwt.NewWithClaims(method, claims).SignedString(s.Auth.Key)
}

func (s *STS) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// SigningMethodFor picks the JWS algorithm by key type: RS256 for RSA,
// ES256/384/512 by curve, EdDSA for Ed25519.
func SigningMethodFor(key crypto.Signer) (jwt.SigningMethod, error) {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return jwt.SigningMethodRS256, nil
	case *ecdsa.PrivateKey:
		switch k.Curve.Params().BitSize {
		case 256:
			return jwt.SigningMethodES256, nil
		case 384:
			return jwt.SigningMethodES384, nil
		case 521:
			return jwt.SigningMethodES512, nil
		}
	case ed25519.PrivateKey:
		return jwt.SigningMethodEdDSA, nil
	}
	return nil, fmt.Errorf("unsupported private key %T for private_key_jwt", key)
}

// maxResponse caps an STS answer.
const maxResponse = 1 << 20

// Exchange performs one token exchange. It returns the decoded result and
// the raw JSON; an OAuth error answer is an *oauth.Error, a failure to reach the
// STS or a non-OAuth answer an *UnreachableError.
//
// The strings of the decoded error and result have been through
// safetext.Sanitize, except the access token itself, which is returned as
// sent: a caller prints it raw only if it is VSCHAR (RFC 6749 Appendix
// A.12). The raw JSON is as sent.
func (s *STS) Exchange(ctx context.Context, p ExchangeParams) (*oauth.Result, []byte, error) {
	form, header, err := s.form(p)
	if err != nil {
		return nil, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.TokenEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if s.OnRequest != nil {
		s.OnRequest(form, req.Header)
	}
	resp, err := s.HTTP.Do(req)
	if err != nil {
		return nil, nil, &UnreachableError{URL: s.TokenEndpoint, Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, nil, &UnreachableError{URL: s.TokenEndpoint, Err: err}
	}
	if s.OnResponse != nil {
		s.OnResponse(resp.StatusCode, resp.Header, body)
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	isJSON := mt == "application/json" || strings.HasSuffix(mt, "+json")
	if resp.StatusCode != http.StatusOK {
		return nil, body, answerError(s.TokenEndpoint, resp, body, isJSON, s.now())
	}
	var res oauth.Result
	if !isJSON || json.Unmarshal(body, &res) != nil || res.AccessToken == "" {
		return nil, body, &UnreachableError{URL: s.TokenEndpoint, Status: resp.StatusCode, Excerpt: excerpt(body)}
	}
	token := res.AccessToken
	safetext.Sanitize(&res)
	res.AccessToken = token
	return &res, body, nil
}

// excerpt is the start of a body, printable, for an error message.
func excerpt(body []byte) string {
	s := strings.Join(strings.Fields(string(body)), " ")
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return -1
	}, s)
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}

// IsUnreachable reports whether err is an *UnreachableError.
func IsUnreachable(err error) bool {
	var u *UnreachableError
	return errors.As(err, &u)
}

// clipText shortens server-sent text before it is echoed in an error.
func clipText(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

// newJTI is a random jti for a client assertion (RFC 7523 §3).
func newJTI() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
