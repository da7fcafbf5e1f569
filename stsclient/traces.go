package stsclient

import (
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"time"

	"github.com/idtx/idtx/internal/safetext"
	"github.com/idtx/idtx/oauth"
)

// GetJSON GETs the JSON document at u from an idtx STS into v (its
// /traces, README Endpoints), with the client's secret as Basic
// authentication when it has one (RFC 6749 §2.3.1). An OAuth error answer
// is an *oauth.Error, a failure to reach the STS or a non-OAuth answer an
// *UnreachableError.
//
// Every string decoded, in v or in the error, has been through
// safetext.Sanitize: a trace is the STS's text, and an STS may be hostile
// (docs/security.md), so nothing that shows it can pass a control through.
func GetJSON(ctx context.Context, client *http.Client, u string, auth ClientAuth, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if auth.Method == oauth.AuthClientSecretBasic || (auth.ClientID != "" && auth.Secret != "") {
		req.SetBasicAuth(url.QueryEscape(auth.ClientID), url.QueryEscape(auth.Secret))
	}
	resp, err := client.Do(req)
	if err != nil {
		return &UnreachableError{URL: u, Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8*maxResponse))
	if err != nil {
		return &UnreachableError{URL: u, Err: err}
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode != http.StatusOK {
		return answerError(u, resp, body, mt == "application/json", time.Now())
	}
	if mt != "application/json" {
		return &UnreachableError{URL: u, Status: resp.StatusCode, Excerpt: excerpt(body)}
	}
	if err := json.Unmarshal(body, v); err != nil {
		return &UnreachableError{URL: u, Status: resp.StatusCode, Excerpt: excerpt(body)}
	}
	safetext.Sanitize(v)
	return nil
}
