package cmd

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/idtx/idtx/idp"
	"github.com/idtx/idtx/mockidp"
	"github.com/idtx/idtx/oauth"
	"github.com/idtx/idtx/profile"
	"github.com/idtx/idtx/stsclient"
)

// DefaultSTS is the mock's address, where `idtx exchange` goes by default.
const DefaultSTS = "http://127.0.0.1:8080"

type exchangeOptions struct {
	io                 *IO
	httpClient         func(cacert string) (*http.Client, error)
	sts                string
	profile            string
	subjectToken       string
	subjectTokenType   string
	actorToken         string
	actorTokenType     string
	audiences          []string
	resources          []string
	scope              string
	requestedTokenType string
	clientFlags
	params    []string
	output    string
	timeout   time.Duration
	cacert    string
	verbose   bool
	printCurl bool
	// stsGiven is whether --sts was on the command line, which beats
	// IDTX_STS and the profile; set before the run.
	stsGiven bool
	// subjectTokenFrom is where the subject token comes from instead of
	// --subject-token (github-actions, file:PATH, env:VAR), with the
	// audience to ask GitHub for (subjectTokenSource).
	subjectTokenFrom string
	subjectAudience  string
	// subject and subjectType are the token subjectTokenFrom gave and
	// the type its source implies, once read.
	subject, subjectType string
}

// newExchangeCmd is `idtx exchange`; runF, when set, runs instead of the
// exchange once the flags are parsed (gh's options-plus-run pattern):
// tests see the options the command line gave without any network.
func newExchangeCmd(f *Factory, runF func(*exchangeOptions) error) *cobra.Command {
	o := &exchangeOptions{io: f.IO, httpClient: f.HTTPClient}
	c := &cobra.Command{
		Use:   "exchange --subject-token T [flags]",
		Short: "Perform one RFC 8693 token exchange against an STS",
		Long: `Send one token exchange request (RFC 8693) to an STS and print the issued
token. --sts takes a token endpoint, or an issuer URL whose metadata names
it (RFC 8414, then OpenID discovery); default IDTX_STS, the profile's, or
the local mock. With no client given it uses the mock's demo client, and
only when the STS's metadata says it is an idtx mock: any other STS gets
no credentials and the command exits 2.

Client settings are taken from flags, then the environment (IDTX_STS,
IDTX_CLIENT_ID, IDTX_CLIENT_SECRET), then --profile, then the profile's
stored secret. A token given with a "Bearer " prefix, or as the JSON an
'idtx exchange -o json' printed, is taken as the token inside.

In CI, --subject-token-from takes the job's own token instead of
--subject-token: github-actions (GitHub's OIDC token request, for the
audience --subject-audience, default the STS's issuer; sent as id_token),
file:PATH (read at every run: a Kubernetes projected token) or env:VAR
(docs/ci.md).

Token and secret arguments take a literal, - (stdin) or @path (a file).
Secrets never come from a plain flag: use --client-secret-file, the
IDTX_CLIENT_SECRET variable, or a profile (docs/cli.md).

Exit codes: 0 issued, 2 usage, 3 the STS refused (its error on stderr),
4 unreachable or not an OAuth answer, 5 try again later (503, 429,
temporarily_unavailable, slow_down; Retry-After on stderr).`,
		Example: `  $ idtx exchange --subject-token "$(idtx mock token --sub alice)" --audience billing-api --scope billing:read
  $ idtx exchange --sts https://keycloak.example/realms/x --client-id api --client-secret-file secret.txt \
      --subject-token - --subject-token-type access_token --audience orders -o json < token.txt
  $ idtx exchange --sts http://127.0.0.1:5556/dex --param connector_id=upstream \
      --subject-token-type id_token --subject-token @id.jwt --scope openid
  $ idtx exchange --profile corp --subject-token "$T" --resource https://billing.corp.example
  $ idtx exchange --sts https://sts.example.com --subject-token-from github-actions --audience orders-api
  $ idtx exchange --sts https://sts.example.com --subject-token-from file:/var/run/secrets/tokens/sts --audience orders-api
  $ idtx exchange --sts https://sts.example.com --subject-token-from env:CI_JOB_JWT --audience orders-api`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			o.stsGiven = c.Flags().Changed("sts")
			if runF != nil {
				return runF(o)
			}
			return runExchange(c, o)
		},
	}
	fs := c.Flags()
	fs.StringVar(&o.sts, "sts", DefaultSTS, "token endpoint, or issuer URL to discover it (default IDTX_STS, the profile's, or the mock)")
	fs.StringVar(&o.profile, "profile", "", "a saved profile (STS, client, auth method, secret)")
	o.addRequestFlags(fs)
	fs.StringVar(&o.subjectTokenFrom, "subject-token-from", "", "take the subject token from github-actions (the job's OIDC token), file:PATH (read at every run) or env:VAR, instead of --subject-token")
	fs.StringVar(&o.subjectAudience, "subject-audience", "", "with --subject-token-from github-actions: the audience to ask GitHub for (default: the STS's issuer, the --sts URL without a trailing /token)")
	fs.StringVarP(&o.output, "output", "o", "token", "output: token, json or claims")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "time limit for the whole exchange")
	fs.StringVar(&o.cacert, "cacert", "", "PEM file of CA certificates to trust for the STS")
	fs.BoolVarP(&o.verbose, "verbose", "v", false, "print to stderr what was sent (secrets and tokens redacted), what came back, and an idtx STS's trace of a refusal")
	fs.BoolVar(&o.printCurl, "print-curl", false, "print an equivalent curl command instead of sending (secret as $IDTX_CLIENT_SECRET, tokens as $SUBJECT_TOKEN, $ACTOR_TOKEN)")
	registerTokenTypeCompletion(c, "subject-token-type", "actor-token-type", "requested-token-type")
	registerProfileCompletion(c)
	completeWords(c, authMethods, "auth-method")
	completeWords(c, []string{"token", "json", "claims"}, "output")
	return c
}

// addRequestFlags defines the flags of one token request, shared by
// exchange, explain and walk.
func (o *exchangeOptions) addRequestFlags(f *pflag.FlagSet) {
	f.StringVar(&o.subjectToken, "subject-token", "", "the token to exchange: literal, - or @file (required)")
	f.StringVar(&o.subjectTokenType, "subject-token-type", "", "access_token|refresh_token|id_token|jwt|saml1|saml2 or a URN (default: jwt for a JWT, saml2 for XML)")
	f.StringVar(&o.actorToken, "actor-token", "", "actor token for delegation: literal, - or @file")
	f.StringVar(&o.actorTokenType, "actor-token-type", "", "type of the actor token (default by its shape)")
	f.StringArrayVar(&o.audiences, "audience", nil, "target audience, repeatable")
	f.StringArrayVar(&o.resources, "resource", nil, "target resource URI (RFC 8707), repeatable")
	f.StringVar(&o.scope, "scope", "", "space-separated scopes")
	f.StringVar(&o.requestedTokenType, "requested-token-type", "", "token type to ask for (short name or URN)")
	o.clientFlags.add(f)
	f.StringArrayVar(&o.params, "param", nil, "extra form field k=v, repeatable; replaces a field idtx sets (to test an STS's refusals)")
}

func runExchange(c *cobra.Command, o *exchangeOptions) error {
	switch o.output {
	case "token", "json", "claims":
	default:
		return usageError("-o must be token, json or claims, not %q", o.output)
	}
	var params stsclient.ExchangeParams
	var err error
	if o.subjectTokenFrom == "" {
		if params, err = o.requestParams(); err != nil {
			return err
		}
	} else if err = o.checkSubjectSource(); err != nil {
		return err
	}
	rc, err := o.resolveClient(c)
	if err != nil {
		return err
	}

	client, err := o.httpClient(o.cacert)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Context(), o.timeout)
	defer cancel()
	endpoint, err := stsclient.Discover(ctx, client, rc.STS)
	if err != nil {
		if stsclient.IsUnreachable(err) {
			return unreachableError(friendlyNetError(err, rc.STS, o.timeout))
		}
		return usageError("%v", err)
	}
	if o.subjectTokenFrom != "" {
		if o.subject, o.subjectType, err = o.readSubjectSource(ctx, os.Getenv, rc.STS); err != nil {
			return err
		}
		if params, err = o.requestParams(); err != nil {
			return err
		}
	}
	if rc.Demo {
		if rc.Auth, err = demoClient(ctx, client, rc.STS, endpoint, o.timeout, o.io.Err); err != nil {
			return err
		}
	}
	auth := rc.Auth
	to := &stsclient.STS{TokenEndpoint: endpoint, HTTP: client, Auth: auth}
	if o.printCurl {
		return printCurl(o.io.Out, to, params)
	}
	if o.verbose {
		to.OnRequest = func(form url.Values, h http.Header) { printSent(o.io.Err, endpoint, form, h) }
		to.OnResponse = func(status int, h http.Header, body []byte) { printReceived(o.io.Err, status, h, body) }
	}
	res, raw, err := to.Exchange(ctx, params)
	var oerr *oauth.Error
	switch {
	case errors.As(err, &oerr):
		if o.output == "json" {
			if err := printRawJSON(o.io, raw); err != nil {
				return err
			}
		}
		if o.verbose && oerr.TraceID != "" {
			o.printRefusalTrace(ctx, client, endpoint, auth, oerr)
		}
		// The STS's own words, clipped; Run escapes them for the terminal.
		shown := *oerr
		shown.Code, shown.Description = clipRemote(oerr.Code, 64), clipRemote(oerr.Description, maxRemoteText)
		return rejectedError(&shown)
	case stsclient.IsUnreachable(err):
		return unreachableError(friendlyNetError(err, rc.STS, o.timeout))
	case err != nil:
		return err
	}
	return printResult(o.io, o.output, res, raw)
}

// requestParams reads the request's tokens and checks its flags.
func (o *exchangeOptions) requestParams() (stsclient.ExchangeParams, error) {
	var params stsclient.ExchangeParams
	if o.subjectToken == "" && o.subject == "" {
		return params, usageError("--subject-token is required (a literal, - for stdin, or @file)")
	}
	extra := url.Values{}
	for _, p := range o.params {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return params, usageError("--param %q is not k=v", p)
		}
		extra.Add(k, v)
	}
	if o.subjectToken == "-" && (o.actorToken == "-" || o.clientSecretFile == "-") {
		return params, usageError("only one input can come from stdin")
	}

	subject := o.subject
	if subject == "" {
		var err error
		if subject, err = readToken(o.subjectToken, o.io.In); err != nil {
			return params, err
		}
	}
	params = stsclient.ExchangeParams{
		SubjectToken: subject, Audiences: o.audiences, Resources: o.resources, Scope: o.scope, Extra: extra,
	}
	var err error
	if o.subjectTokenType == "" && o.subjectType != "" {
		params.SubjectTokenType = o.subjectType
	} else if params.SubjectTokenType, err = tokenTypeFlag("--subject-token-type", o.subjectTokenType, subject); err != nil {
		return params, err
	}
	if o.actorToken != "" {
		if params.ActorToken, err = readToken(o.actorToken, o.io.In); err != nil {
			return params, err
		}
		if params.ActorTokenType, err = tokenTypeFlag("--actor-token-type", o.actorTokenType, params.ActorToken); err != nil {
			return params, err
		}
	} else if o.actorTokenType != "" {
		return params, usageError("--actor-token-type without --actor-token")
	}
	if o.requestedTokenType != "" {
		if params.RequestedTokenType = oauth.ResolveTokenType(o.requestedTokenType); params.RequestedTokenType == "" {
			return params, usageError("--requested-token-type %q is not a known token type", o.requestedTokenType)
		}
	}

	return params, nil
}

// resolveClient settles the STS and the client's credentials from flags,
// environment and profile (resolveClient in client.go).
func (o *exchangeOptions) resolveClient(c *cobra.Command) (*resolvedClient, error) {
	o.stsGiven = c.Flags().Changed("sts")
	return o.resolve(os.Getenv)
}

// resolve is resolveClient once stsGiven is known, with the environment
// read through getenv.
func (o *exchangeOptions) resolve(getenv func(string) string) (*resolvedClient, error) {
	return resolveClient(clientInput{
		STS: o.sts, STSGiven: o.stsGiven, Profile: o.profile, ClientID: o.clientID,
		ClientSecretFile: o.clientSecretFile, AuthMethod: o.authMethod, KeyFile: o.keyFile,
	}, getenv, o.io.In, o.io.Err)
}

// clientAuth is the client for an engine built here (explain, walk): with
// no client given, the mock's demo client only when the config is the
// mock's (mockDefault), else a usage error.
func (o *exchangeOptions) clientAuth(c *cobra.Command, mockDefault bool) (stsclient.ClientAuth, string, error) {
	rc, err := o.resolveClient(c)
	if err != nil {
		return stsclient.ClientAuth{}, "", err
	}
	if rc.Demo {
		if !mockDefault {
			return stsclient.ClientAuth{}, "", usageError("no client given: use --client-id with --client-secret-file, IDTX_CLIENT_ID/IDTX_CLIENT_SECRET, or --profile (the mock's %s is used only with the mock's config)", mockidp.DemoClient)
		}
		fmt.Fprintf(o.io.Err, "idtx: no client given: using the mock's %s\n", mockidp.DemoClient)
		rc.Auth = stsclient.ClientAuth{Method: oauth.AuthClientSecretBasic, ClientID: mockidp.DemoClient, Secret: mockidp.DemoSecret}
	}
	return rc.Auth, rc.STS, nil
}

// tokenTypeFlag resolves a token type flag, or guesses from the token.
func tokenTypeFlag(name, value, token string) (string, error) {
	if value == "" {
		f, _ := idp.Sniff(token)
		return idp.TokenTypeOf(f), nil
	}
	urn := oauth.ResolveTokenType(value)
	if urn == "" {
		return "", usageError("%s %q is not one of access_token, refresh_token, id_token, jwt, saml1, saml2 or their URNs", name, value)
	}
	return urn, nil
}

func httpClient(cacert string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cacert != "" {
		pem, err := os.ReadFile(cacert)
		if err != nil {
			return nil, usageError("%v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usageError("--cacert %s holds no PEM certificate", cacert)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr}, nil
}

func printResult(io *IO, output string, res *oauth.Result, raw []byte) error {
	switch output {
	case "json":
		var buf bytes.Buffer
		if err := json.Indent(&buf, raw, "", "  "); err != nil {
			return err
		}
		buf.WriteByte('\n')
		_, err := io.Out.Write(safeJSON(buf.Bytes()))
		return err
	case "claims":
		parts := strings.Split(res.AccessToken, ".")
		if len(parts) != 3 {
			// An opaque token has no claims to show; the token itself is
			// still the answer, so a script gets it either way.
			fmt.Fprintln(io.Err, "idtx: the issued token is not a JWT: it has no claims to show; printing the answer")
			return printResult(io, "json", res, raw)
		}
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			return fmt.Errorf("the issued token's claims are not base64url: %w", err)
		}
		var claims map[string]any
		if err := json.Unmarshal(payload, &claims); err != nil {
			return fmt.Errorf("the issued token's claims are not JSON: %w", err)
		}
		return writeJSON(io, claims)
	}
	if i, ok := isTokenText(res.AccessToken); !ok {
		return unreachableError(fmt.Errorf("the issued access_token has byte 0x%02x at offset %d, outside the characters RFC 6749 Appendix A.12 allows (0x20-0x7e): not printed raw; see the answer with -o json", res.AccessToken[i], i))
	}
	fmt.Fprintln(io.Out, res.AccessToken)
	return nil
}

// writeJSON writes v as indented JSON, with no raw control character even
// inside its strings (safeJSON).
func writeJSON(io *IO, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := io.Out.Write(safeJSON(buf.Bytes()))
	return err
}

func registerTokenTypeCompletion(c *cobra.Command, flags ...string) {
	names := make([]string, 0, len(oauth.TokenTypes))
	for n := range oauth.TokenTypes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, f := range flags {
		c.RegisterFlagCompletionFunc(f, func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return names, cobra.ShellCompDirectiveNoFileComp
		})
	}
}

func registerProfileCompletion(c *cobra.Command) {
	c.RegisterFlagCompletionFunc("profile", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		list, _ := profile.List()
		names := make([]string, 0, len(list))
		for _, p := range list {
			names = append(names, p.Name)
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	})
}
