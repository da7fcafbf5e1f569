package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

type healthcheckOptions struct {
	io      *IO
	url     string
	timeout time.Duration
}

// newHealthcheckCmd is `idtx healthcheck`; runF, when set, runs instead
// of the check once the flags are parsed (tests).
func newHealthcheckCmd(f *Factory, runF func(*healthcheckOptions) error) *cobra.Command {
	o := &healthcheckOptions{io: f.IO}
	c := &cobra.Command{
		Use:   "healthcheck [--url URL]",
		Short: "Exit 0 when an idtx STS is ready, 1 when not",
		Long: `Ask an idtx STS's GET /readyz (the store answers, every IDP can validate)
and exit 0 when it answers 200, 1 otherwise: not ready, unreachable, or too
slow. It is the image's HEALTHCHECK, which has no curl.

Without --url it asks the address 'idtx serve' listens on, read from the
same variables (IDTX_LISTEN, PORT; 127.0.0.1:8080 without them), at
127.0.0.1 when that is every interface. A --url without a path asks its
/readyz. The answer's body is printed on stdout, the reason for a failure
on stderr.`,
		Example: `  $ idtx healthcheck
  $ idtx healthcheck --url http://127.0.0.1:9000
  HEALTHCHECK CMD ["/idtx", "healthcheck"]`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(o)
			}
			return runHealthcheck(c.Context(), o, os.Getenv)
		},
	}
	fs := c.Flags()
	fs.StringVar(&o.url, "url", "", "the STS's base URL or its /readyz URL (default: where idtx serve listens, from IDTX_LISTEN and PORT)")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Second, "time limit for the answer")
	return c
}

// readyzURL is the URL healthcheck asks: --url (its /readyz when it has
// no path), else the address serve would listen on with this environment.
func readyzURL(flag string, getenv func(string) string) (string, error) {
	if flag == "" {
		addr, err := listenFrom("", false, getenv)
		if err != nil {
			return "", err
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return "", usageError("listen address %q is not host:port", addr)
		}
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			host = "127.0.0.1"
		}
		return "http://" + net.JoinHostPort(host, port) + "/readyz", nil
	}
	u, err := url.Parse(flag)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", usageError("--url %q is not an http(s) URL", flag)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/readyz"
	}
	return u.String(), nil
}

func runHealthcheck(ctx context.Context, o *healthcheckOptions, getenv func(string) string) error {
	target, err := readyzURL(o.url, getenv)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return usageError("%v", err)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("not ready: GET %s: %w", target, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	text := safeText(strings.TrimSpace(string(body)))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("not ready: GET %s answered %s: %s", target, resp.Status, clipRemote(text, maxRemoteText))
	}
	fmt.Fprintln(o.io.Out, clipRemote(text, maxRemoteText))
	return nil
}
