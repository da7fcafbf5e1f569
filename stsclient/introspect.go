package stsclient

import (
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strings"
)

// Introspect asks an STS's introspection endpoint about token (RFC 7662
// §2.1), authenticated as s.Auth (a private_key_jwt assertion names
// s.TokenEndpoint as its aud, which idtx accepts for either endpoint). It
// returns the answer and its raw JSON; an OAuth error answer is an
// *oauth.Error, a failure to reach the STS or a non-OAuth answer an
// *UnreachableError.
func (s *STS) Introspect(ctx context.Context, endpoint, token string) (map[string]any, []byte, error) {
	form, header, err := s.form(ExchangeParams{})
	if err != nil {
		return nil, nil, err
	}
	// form is a token request's; an introspection request carries only
	// the token and the client's authentication.
	for _, k := range []string{"grant_type", "subject_token", "subject_token_type"} {
		form.Del(k)
	}
	form.Set("token", token)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := s.HTTP.Do(req)
	if err != nil {
		return nil, nil, &UnreachableError{URL: endpoint, Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, nil, &UnreachableError{URL: endpoint, Err: err}
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	isJSON := mt == "application/json" || strings.HasSuffix(mt, "+json")
	if resp.StatusCode != http.StatusOK {
		return nil, body, answerError(endpoint, resp, body, isJSON, s.now())
	}
	var answer map[string]any
	if !isJSON || json.Unmarshal(body, &answer) != nil {
		return nil, body, &UnreachableError{URL: endpoint, Status: resp.StatusCode, Excerpt: excerpt(body)}
	}
	// RFC 7662 §2.2: active is REQUIRED and a boolean.
	if _, ok := answer["active"].(bool); !ok {
		return nil, body, &UnreachableError{URL: endpoint, Status: resp.StatusCode, Excerpt: excerpt(body)}
	}
	return answer, body, nil
}
