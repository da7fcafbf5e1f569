package stsclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// The variables a GitHub Actions job with `permissions: id-token: write`
// has, to ask GitHub for an OIDC ID token (docs.github.com, "Configuring
// OpenID Connect in cloud providers").
const (
	EnvActionsRequestURL   = "ACTIONS_ID_TOKEN_REQUEST_URL"
	EnvActionsRequestToken = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
)

// maxActionsAnswer caps GitHub's answer: a JWT in a small JSON object.
const maxActionsAnswer = 64 << 10

// GitHubActionsToken asks a GitHub Actions job's OIDC token endpoint
// for an ID token whose aud is audience: GET requestURL with
// &audience=... added, Authorization: Bearer requestToken, and the token
// in the answer's "value". A failure to reach the endpoint, or an answer
// that is not 200 with a value, is an *UnreachableError; its excerpt
// never holds requestToken.
func GitHubActionsToken(ctx context.Context, client *http.Client, requestURL, requestToken, audience string) (string, error) {
	u, err := url.Parse(requestURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("%s %q is not an http(s) URL", EnvActionsRequestURL, clipText(requestURL))
	}
	if audience != "" {
		q := u.Query()
		q.Set("audience", audience)
		u.RawQuery = q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+requestToken)
	req.Header.Set("Accept", "application/json")
	shown := u.Scheme + "://" + u.Host + u.Path
	resp, err := client.Do(req)
	if err != nil {
		return "", &UnreachableError{URL: shown, Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxActionsAnswer))
	if err != nil {
		return "", &UnreachableError{URL: shown, Err: err}
	}
	var answer struct {
		Value string `json:"value"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &answer) != nil || answer.Value == "" {
		// Not an STS: the error says what came back, in its own words.
		return "", &UnreachableError{URL: shown, Err: fmt.Errorf("answered %d %s, not {\"value\": token}: %q",
			resp.StatusCode, http.StatusText(resp.StatusCode), strings.ReplaceAll(excerpt(body), requestToken, "[redacted]"))}
	}
	return answer.Value, nil
}
