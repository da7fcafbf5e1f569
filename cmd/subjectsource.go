package cmd

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/idtx/idtx/oauth"
	"github.com/idtx/idtx/stsclient"
)

// The sources of `exchange --subject-token-from` (docs/ci.md): a CI
// job's own token, without copying it into a flag.
const (
	sourceGitHubActions = "github-actions"
	sourceFilePrefix    = "file:"
	sourceEnvPrefix     = "env:"
)

// checkSubjectSource refuses a --subject-token-from the run cannot use,
// before anything is sent.
func (o *exchangeOptions) checkSubjectSource() error {
	if o.subjectToken != "" {
		return usageError("give --subject-token or --subject-token-from, not both")
	}
	src := o.subjectTokenFrom
	switch {
	case src == sourceGitHubActions:
	case strings.HasPrefix(src, sourceFilePrefix) && len(src) > len(sourceFilePrefix):
	case strings.HasPrefix(src, sourceEnvPrefix) && len(src) > len(sourceEnvPrefix):
	default:
		return usageError("--subject-token-from %q is not github-actions, file:PATH or env:VAR", src)
	}
	if o.subjectAudience != "" && src != sourceGitHubActions {
		return usageError("--subject-audience is for --subject-token-from github-actions: a token from a file or a variable has its audience already")
	}
	return nil
}

// readSubjectSource reads the subject token from --subject-token-from,
// and the token type its source implies ("" to sniff it): a GitHub
// Actions token is an OIDC ID token (RFC 8693 §3 id_token). A file is
// read at every run, so a rotated token (a Kubernetes projected service
// account token) is always the current one. sts is the STS's URL, whose
// issuer is the default audience asked of GitHub.
func (o *exchangeOptions) readSubjectSource(ctx context.Context, getenv func(string) string, sts string) (token, tokenType string, err error) {
	src := o.subjectTokenFrom
	switch {
	case strings.HasPrefix(src, sourceFilePrefix):
		token, err = readValue("@"+strings.TrimPrefix(src, sourceFilePrefix), nil)
		return token, "", err
	case strings.HasPrefix(src, sourceEnvPrefix):
		name := strings.TrimPrefix(src, sourceEnvPrefix)
		if token = strings.TrimSpace(getenv(name)); token == "" {
			return "", "", usageError("--subject-token-from %s: %s is not set or empty", src, name)
		}
		return token, "", nil
	}
	reqURL, reqToken := getenv(stsclient.EnvActionsRequestURL), getenv(stsclient.EnvActionsRequestToken)
	if reqURL == "" || reqToken == "" {
		return "", "", usageError("--subject-token-from github-actions: %s and %s are not set: run in a GitHub Actions job with permissions: id-token: write (docs/ci.md), or point them at idtx serve --mock's %s",
			stsclient.EnvActionsRequestURL, stsclient.EnvActionsRequestToken, "/mock/github-actions/token")
	}
	aud := o.subjectAudience
	if aud == "" {
		aud = strings.TrimSuffix(strings.TrimSuffix(sts, "/"), "/token")
	}
	client := &http.Client{Timeout: 30 * time.Second}
	token, err = stsclient.GitHubActionsToken(ctx, client, reqURL, reqToken, aud)
	if err != nil {
		return "", "", unreachableError(fmt.Errorf("--subject-token-from github-actions: %w", err))
	}
	if o.verbose {
		fmt.Fprintf(o.io.Err, "idtx: subject token from GitHub Actions, audience %s\n", safeText(aud))
	}
	return token, oauth.TokenTypeIDToken, nil
}
