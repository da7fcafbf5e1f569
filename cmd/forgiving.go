package cmd

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/idtx/idtx/idp"
	"github.com/idtx/idtx/mockidp"
	"github.com/idtx/idtx/oauth"
	"github.com/idtx/idtx/stsclient"
)

// readToken is readValue for a token: it also takes the token out of an
// "Authorization: Bearer" value (RFC 6750 §2.1) or out of the JSON
// document `idtx exchange -o json` prints (RFC 6749 §5.1 access_token),
// so that one command's output is the next one's input.
func readToken(arg string, stdin io.Reader) (string, error) {
	v, err := readValue(arg, stdin)
	if err != nil {
		return "", err
	}
	return cleanToken(v)
}

func cleanToken(v string) (string, error) {
	v = strings.TrimSpace(v)
	v = strings.TrimSpace(strings.TrimPrefix(v, "Authorization:"))
	if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		v = strings.TrimSpace(v[7:])
	}
	if strings.HasPrefix(v, "{") {
		var doc struct {
			AccessToken string `json:"access_token"`
		}
		if err := json.Unmarshal([]byte(v), &doc); err != nil || doc.AccessToken == "" {
			return "", usageError("the input is JSON without an access_token member: give the token itself, or the JSON 'idtx exchange -o json' prints")
		}
		return doc.AccessToken, nil
	}
	if v == "" {
		return "", usageError("the token is empty")
	}
	return v, nil
}

// demoClient is the mock's demo client, for an STS whose RFC 8414
// metadata says it is an idtx mock ("idtx_mock": true). Any other STS
// gets no credentials: they are public, but sending them to a real STS
// would try a password nobody set there, in its logs.
func demoClient(ctx context.Context, client *http.Client, sts, endpoint string, timeout time.Duration, warn io.Writer) (stsclient.ClientAuth, error) {
	meta, err := fetchMetadata(ctx, client, sts, endpoint)
	if meta == nil && err != nil {
		return stsclient.ClientAuth{}, unreachableError(friendlyNetError(err, sts, timeout))
	}
	if mock, _ := meta["idtx_mock"].(bool); !mock {
		return stsclient.ClientAuth{}, usageError("no client given: use --client-id with --client-secret-file, IDTX_CLIENT_ID/IDTX_CLIENT_SECRET, or --profile (%s is not an idtx mock, so the mock's demo client is not sent to it)", sts)
	}
	fmt.Fprintf(warn, "idtx: no client given: using the mock's %s\n", mockidp.DemoClient)
	return stsclient.ClientAuth{Method: oauth.AuthClientSecretBasic, ClientID: mockidp.DemoClient, Secret: mockidp.DemoSecret}, nil
}

// fetchMetadata reads an STS's RFC 8414 metadata (§3.1: the well-known
// segment between host and path) for its issuer: --sts itself, or the
// token endpoint without its /token, then the host's root. nil when
// there is none; the error only when no server answered.
func fetchMetadata(ctx context.Context, client *http.Client, sts, endpoint string) (map[string]any, error) {
	issuer := strings.TrimSuffix(sts, "/")
	if strings.HasSuffix(issuer, "/token") {
		issuer = strings.TrimSuffix(issuer, "/token")
	} else if issuer == "" {
		issuer = strings.TrimSuffix(endpoint, "/token")
	}
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("%q is not an http(s) URL", sts)
	}
	var meta map[string]any
	var unreachable error // set when no server answered at all
	for _, c := range []string{
		u.Scheme + "://" + u.Host + "/.well-known/oauth-authorization-server" + strings.TrimSuffix(u.Path, "/"),
		issuer + "/.well-known/openid-configuration",
		u.Scheme + "://" + u.Host + "/.well-known/oauth-authorization-server", // the mock serves at the root
	} {
		status, err := idp.FetchJSON(ctx, client, c, &meta)
		if err == nil && meta != nil {
			return meta, nil
		}
		if status == 0 && err != nil {
			unreachable = err
		}
	}
	return nil, unreachable
}

// friendly is an error said in the user's words, keeping the cause.
type friendly struct {
	msg string
	err error
}

func (f *friendly) Error() string { return f.msg }
func (f *friendly) Unwrap() error { return f.err }

// friendlyNetError says what a failure to reach addr means and what to
// do: a timeout, an unknown certificate authority, nothing listening on
// the default address. Other errors are returned as they are.
func friendlyNetError(err error, addr string, timeout time.Duration) error {
	host := addr
	if u, perr := url.Parse(addr); perr == nil && u.Host != "" {
		host = u.Host
	}
	var ua x509.UnknownAuthorityError
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()):
		return &friendly{fmt.Sprintf("no answer from %s within %s (raise --timeout if it is slow)", host, timeout), err}
	case errors.As(err, &ua) || strings.Contains(err.Error(), "certificate signed by unknown authority"):
		return &friendly{fmt.Sprintf("%s presents a certificate signed by an authority this system does not trust: give its CA certificate with --cacert FILE", host), err}
	case errors.Is(err, syscall.ECONNREFUSED) && strings.TrimSuffix(addr, "/") == DefaultSTS && os.Getenv(envSTS) == "":
		return &friendly{fmt.Sprintf("nothing listens on %s, the default --sts: start the mock with `idtx serve --mock`, or name an STS with --sts or IDTX_STS", host), err}
	case errors.Is(err, syscall.ECONNREFUSED):
		return &friendly{fmt.Sprintf("nothing listens on %s (connection refused): is the STS running, and is the address right?", host), err}
	}
	return err
}

// parseTime reads a time flag: RFC 3339 (2026-11-27T12:00:00Z), a date
// (2026-11-27, midnight UTC), "now", or an offset from now (-24h, +90m).
func parseTime(flag, v string, now time.Time) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "now" {
		return now, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	if strings.HasPrefix(v, "-") || strings.HasPrefix(v, "+") {
		if d, err := time.ParseDuration(v); err == nil {
			return now.Add(d), nil
		}
	}
	return time.Time{}, usageError("%s %q is not a time: write RFC 3339 such as %s, a date such as %s, or an offset from now such as -24h",
		flag, v, now.UTC().Truncate(time.Second).Format(time.RFC3339), now.UTC().Format(time.DateOnly))
}

// listenError says what to do when the address is taken.
func listenError(err error, addr string) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return usageError("%s is already in use (another idtx serve?): choose another port, such as --listen 127.0.0.1:9090, or --listen :0 for a free one", addr)
	}
	return err
}
