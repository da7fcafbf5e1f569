package cmd

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/idtx/idtx/oauth"
	"github.com/idtx/idtx/stsclient"
)

type introspectOptions struct {
	io         *IO
	httpClient func(cacert string) (*http.Client, error)

	token string // TOKEN: a literal, - or @file
	// stsGiven is whether --sts was on the command line, which beats
	// IDTX_STS and the profile; set before the run.
	stsGiven bool

	sts     string
	profile string
	clientFlags
	output  string
	timeout time.Duration
	cacert  string
}

// newIntrospectCmd is `idtx introspect`; runF, when set, runs instead of
// the request once the flags are parsed (tests).
func newIntrospectCmd(f *Factory, runF func(*introspectOptions) error) *cobra.Command {
	o := &introspectOptions{io: f.IO, httpClient: f.HTTPClient}
	c := &cobra.Command{
		Use:   "introspect TOKEN",
		Short: "Ask an STS's /introspect about a token (RFC 7662)",
		Long: `Ask an STS whether a token is active, and what it says about it (RFC 7662):
POST to the introspection_endpoint of the STS's RFC 8414 metadata (or
--sts itself when it ends in /introspect), authenticated as a client, with
the same --sts, --profile, client flags and variables as 'idtx exchange'.
TOKEN is a literal, - or @file; a "Bearer " prefix or the JSON of
'idtx exchange -o json' is understood.

idtx answers only to the client the token was issued to, or to one that
serves its audience; to any other client every token is inactive.

Exit codes: 0 active, 3 not active or the STS refused (with -o json the
answer or the OAuth error object is still printed on stdout), 2 usage,
4 unreachable, 5 try again later.`,
		Example: `  $ T=$(idtx exchange --subject-token "$(idtx mock token)" --audience orders-api)
  $ idtx introspect "$T"
  $ idtx introspect @token.jwt --profile corp -o text`,
		Args: exactArgs(1, "one TOKEN"),
		RunE: func(c *cobra.Command, args []string) error {
			o.token = args[0]
			o.stsGiven = c.Flags().Changed("sts")
			if runF != nil {
				return runF(o)
			}
			return runIntrospect(c, o, o.token)
		},
	}
	fs := c.Flags()
	fs.StringVar(&o.sts, "sts", DefaultSTS, "issuer URL, or the introspection endpoint itself (default IDTX_STS, the profile's, or the mock)")
	fs.StringVar(&o.profile, "profile", "", "a saved profile (STS, client, auth method, secret)")
	o.clientFlags.add(fs)
	fs.StringVarP(&o.output, "output", "o", "json", "output: json or text")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "time limit")
	fs.StringVar(&o.cacert, "cacert", "", "PEM file of CA certificates to trust for the STS")
	registerProfileCompletion(c)
	completeWords(c, authMethods, "auth-method")
	completeWords(c, []string{"json", "text"}, "output")
	return c
}

// resolve settles the STS and the client (resolveClient in client.go),
// with the environment read through getenv.
func (o *introspectOptions) resolve(getenv func(string) string) (*resolvedClient, error) {
	return resolveClient(clientInput{
		STS: o.sts, STSGiven: o.stsGiven, Profile: o.profile, ClientID: o.clientID,
		ClientSecretFile: o.clientSecretFile, AuthMethod: o.authMethod, KeyFile: o.keyFile,
	}, getenv, o.io.In, o.io.Err)
}

func runIntrospect(c *cobra.Command, o *introspectOptions, arg string) error {
	if o.output != "json" && o.output != "text" {
		return usageError("-o must be json or text, not %q", o.output)
	}
	if arg == "-" && o.clientSecretFile == "-" {
		return usageError("only one input can come from stdin")
	}
	rc, err := o.resolve(os.Getenv)
	if err != nil {
		return err
	}
	token, err := readToken(arg, o.io.In)
	if err != nil {
		return err
	}
	client, err := o.httpClient(o.cacert)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Context(), o.timeout)
	defer cancel()
	endpoint, tokenEndpoint, err := introspectionEndpoint(ctx, client, rc.STS)
	if err != nil {
		return err
	}
	if rc.Demo {
		if rc.Auth, err = demoClient(ctx, client, rc.STS, tokenEndpoint, o.timeout, o.io.Err); err != nil {
			return err
		}
	}
	sts := &stsclient.STS{TokenEndpoint: tokenEndpoint, HTTP: client, Auth: rc.Auth}
	answer, raw, err := sts.Introspect(ctx, endpoint, token)
	var oerr *oauth.Error
	switch {
	case errors.As(err, &oerr):
		shown := *oerr
		shown.Code, shown.Description = clipRemote(oerr.Code, 64), clipRemote(oerr.Description, maxRemoteText)
		if o.output == "json" {
			if err := writeJSON(o.io, map[string]string{"error": shown.Code, "error_description": shown.Description}); err != nil {
				return err
			}
		}
		return rejectedError(&shown)
	case stsclient.IsUnreachable(err):
		return unreachableError(friendlyNetError(err, rc.STS, o.timeout))
	case err != nil:
		return err
	}
	_ = raw
	if o.output == "json" {
		if err := writeJSON(o.io, answer); err != nil {
			return err
		}
	} else {
		keys := make([]string, 0, len(answer))
		for k := range answer {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(o.io.Out, "%-12s %s\n", safeText(k), safeText(compact(answer[k])))
		}
	}
	if active, _ := answer["active"].(bool); !active {
		return rejectedError(errors.New("the token is not active (expired, not issued by this STS, or not this client's to ask about)"))
	}
	return nil
}

// introspectionEndpoint finds the introspection and token endpoints of
// the STS at sts: from its RFC 8414 metadata, else by their idtx paths.
func introspectionEndpoint(ctx context.Context, client *http.Client, sts string) (string, string, error) {
	base := strings.TrimSuffix(sts, "/")
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		return "", "", usageError("--sts %q is not an http(s) URL", sts)
	}
	if b, ok := strings.CutSuffix(base, "/introspect"); ok {
		return base, b + "/token", nil
	}
	meta, _ := fetchMetadata(ctx, client, base, "")
	if iss, _ := meta["issuer"].(string); meta != nil && strings.TrimSuffix(iss, "/") != base {
		// RFC 8414 §3.3: metadata naming another issuer could send the
		// client's credentials to a host of its choosing.
		return "", "", usageError("the metadata of %s names issuer %q: not sending credentials to its endpoints; give the introspection endpoint itself with --sts", sts, clipRemote(iss, 200))
	}
	ie, _ := meta["introspection_endpoint"].(string)
	te, _ := meta["token_endpoint"].(string)
	if ie == "" {
		ie = base + "/introspect"
	}
	if te == "" {
		te = base + "/token"
	}
	return ie, te, nil
}
