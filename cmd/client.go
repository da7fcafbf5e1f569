package cmd

import (
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/idtx/idtx/idp"
	"github.com/idtx/idtx/oauth"
	"github.com/idtx/idtx/profile"
	"github.com/idtx/idtx/stsclient"
)

// authMethods are the --auth-method values, for help and completion.
var authMethods = []string{oauth.AuthClientSecretBasic, oauth.AuthClientSecretPost, oauth.AuthPrivateKeyJWT, oauth.AuthNone}

// clientFlags are the flags that name the client, defined once for every
// command that talks to an STS as a client (exchange, introspect, explain,
// walk).
type clientFlags struct {
	clientID         string
	clientSecretFile string
	authMethod       string
	keyFile          string
}

func (c *clientFlags) add(f *pflag.FlagSet) {
	f.StringVar(&c.clientID, "client-id", "", "client id (default IDTX_CLIENT_ID, the profile's, or the mock's demo-client)")
	f.StringVar(&c.clientSecretFile, "client-secret-file", "", "file holding the client secret, or - for stdin (default IDTX_CLIENT_SECRET)")
	f.StringVar(&c.authMethod, "auth-method", "", "client_secret_basic|client_secret_post|private_key_jwt|none (default by what is given)")
	f.StringVar(&c.keyFile, "key-file", "", "private key (PEM) for private_key_jwt")
}

// envSTS names the STS of every client command (exchange, introspect,
// explain --sts, walk --sts) when --sts is not given.
const envSTS = "IDTX_STS"

// chooseSTS is the STS a client command talks to, the one definition all
// of them share: --sts when given, else IDTX_STS, else fallback (the
// profile's, or the flag's default). from is "--sts" or "IDTX_STS" when
// one of them chose, else "".
func chooseSTS(flag string, given bool, getenv func(string) string, fallback string) (sts, from string) {
	switch {
	case given:
		return flag, "--sts"
	case getenv(envSTS) != "":
		return getenv(envSTS), envSTS
	}
	return fallback, ""
}

// clientInput is what the command line says about the STS and the client:
// the flag values, and whether --sts was given.
type clientInput struct {
	STS              string
	STSGiven         bool
	Profile          string
	ClientID         string
	ClientSecretFile string
	AuthMethod       string
	KeyFile          string
}

// resolvedClient is the STS and the client credentials to use. Demo is
// set when no client was given at all: the mock's demo client, to be
// sent only to an idtx mock (see demoAllowed).
type resolvedClient struct {
	Auth stsclient.ClientAuth
	STS  string
	Demo bool
}

// resolveClient settles the STS and the client from, in this order of
// precedence: flags, then the environment (IDTX_STS, IDTX_CLIENT_ID,
// IDTX_CLIENT_SECRET), then the profile, then the profile's stored secret
// (OS keyring or secrets file). A secret that was given is never dropped:
// it either authenticates the client or is a usage error saying why not.
// Notes for stderr go to warn.
func resolveClient(in clientInput, getenv func(string) string, stdin io.Reader, warn io.Writer) (*resolvedClient, error) {
	var p *profile.Profile
	if in.Profile != "" {
		var err error
		if p, err = profile.Get(in.Profile); err != nil {
			return nil, usageError("%v", err)
		}
	}
	r := &resolvedClient{STS: DefaultSTS}
	fallback := in.STS
	if p != nil && p.STS != "" {
		fallback = p.STS
	}
	var stsFrom string
	r.STS, stsFrom = chooseSTS(in.STS, in.STSGiven, getenv, fallback)
	if r.STS == "" {
		r.STS = DefaultSTS
	}

	id, idFrom := in.ClientID, "--client-id"
	if id == "" && getenv("IDTX_CLIENT_ID") != "" {
		id, idFrom = getenv("IDTX_CLIENT_ID"), "IDTX_CLIENT_ID"
	}
	// The profile's client, method, key and secret count only for the
	// profile's own client: never send its secret under another id.
	fromProfile := p != nil && p.ClientID != "" && (id == "" || id == p.ClientID)
	if id == "" && fromProfile {
		id, idFrom = p.ClientID, "profile "+p.Name
	}

	var secret, secretFrom string
	switch {
	case in.ClientSecretFile != "":
		arg := in.ClientSecretFile
		if arg != "-" {
			arg = "@" + arg
		}
		s, err := readValue(arg, stdin)
		if err != nil {
			return nil, err
		}
		secret, secretFrom = s, "--client-secret-file"
	case getenv("IDTX_CLIENT_SECRET") != "":
		secret, secretFrom = getenv("IDTX_CLIENT_SECRET"), "IDTX_CLIENT_SECRET"
	}
	keyFile, keyFromProfile := in.KeyFile, false
	method, methodFrom := in.AuthMethod, "--auth-method"
	if fromProfile {
		if keyFile == "" {
			keyFile, keyFromProfile = p.KeyFile, p.KeyFile != ""
		}
		if method == "" && p.AuthMethod != "" {
			method, methodFrom = p.AuthMethod, "profile "+p.Name
		}
	}

	if id == "" {
		if secret != "" || keyFile != "" {
			what := secretFrom
			if secret == "" {
				what = "--key-file"
			}
			return nil, usageError("%s was given without a client id: add --client-id or IDTX_CLIENT_ID", what)
		}
		if in.AuthMethod != "" {
			return nil, usageError("--auth-method %s was given without a client id: add --client-id or IDTX_CLIENT_ID", in.AuthMethod)
		}
		r.Demo = true
		return r, nil
	}

	if method == oauth.AuthNone && secret != "" {
		if methodFrom == "--auth-method" {
			return nil, usageError("--auth-method none, but a client secret was given by %s: drop one of them", secretFrom)
		}
		// The profile predates the secret (saved as none where no keyring
		// answered): the secret given now wins, and says so.
		fmt.Fprintf(warn, "idtx: %s says auth_method none, but a secret was given by %s: using client_secret_basic\n", methodFrom, secretFrom)
		method = oauth.AuthClientSecretBasic
	}
	storedSecret := secret == "" && fromProfile && p.HasSecret && method != oauth.AuthNone && method != oauth.AuthPrivateKeyJWT
	if (storedSecret || (keyFromProfile && secret == "")) && stsFrom != "" && !sameOrigin(r.STS, p.STS) {
		// A stored credential is bound to the STS it was saved for: an
		// IDTX_STS left over in a shell, or a --sts typed for another
		// server, must not carry prod's secret there.
		what, explicit := "secret is kept for its STS "+p.STS+": not sending it to", "the client's secret explicitly with --client-secret-file or IDTX_CLIENT_SECRET"
		if !storedSecret {
			what, explicit = "key file is kept for its STS "+p.STS+": not signing for", "the key explicitly with --key-file"
		}
		return nil, usageError("profile %s's %s %s (from %s); drop %s, or give %s", p.Name, what, r.STS, stsFrom, stsFrom, explicit)
	}
	if storedSecret {
		s, err := p.Secret()
		if err != nil {
			return nil, err
		}
		secret, secretFrom = s, "profile "+p.Name
	}
	if method == "" {
		switch {
		case keyFile != "":
			method = oauth.AuthPrivateKeyJWT
		case secret != "":
			method = oauth.AuthClientSecretBasic
		default:
			return nil, usageError("client %s (from %s) has no secret: give --client-secret-file FILE, IDTX_CLIENT_SECRET, or --auth-method none for a public client", id, idFrom)
		}
	}
	auth := stsclient.ClientAuth{Method: method, ClientID: id, Secret: secret}
	switch method {
	case oauth.AuthClientSecretBasic, oauth.AuthClientSecretPost:
		if secret == "" {
			return nil, usageError("%s needs a secret: --client-secret-file FILE, IDTX_CLIENT_SECRET or a profile with a secret", method)
		}
	case oauth.AuthPrivateKeyJWT:
		if keyFile == "" {
			return nil, usageError("private_key_jwt needs --key-file")
		}
		if secret != "" {
			return nil, usageError("private_key_jwt signs with --key-file, but a client secret was given by %s: drop one of them", secretFrom)
		}
		data, err := os.ReadFile(keyFile)
		if err != nil {
			return nil, usageError("%v", err)
		}
		if auth.Key, err = idp.ParsePrivateKey(data); err != nil {
			return nil, usageError("--key-file %s: %v", keyFile, err)
		}
		if _, err := stsclient.SigningMethodFor(auth.Key); err != nil {
			return nil, usageError("--key-file %s: %v", keyFile, err)
		}
		auth.Secret = ""
	case oauth.AuthNone:
	default:
		return nil, usageError("--auth-method %q is not one of %s", method, strings.Join(authMethods, ", "))
	}
	r.Auth = auth
	return r, nil
}

// sameOrigin reports whether two STS URLs are the same origin (RFC 6454
// §4: scheme, host and port): the server that would receive a secret.
func sameOrigin(a, b string) bool {
	origin := func(s string) string {
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil || u.Host == "" {
			return "\x00" + s // not a URL: equal only to itself
		}
		scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
		if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
			port = ""
		}
		return scheme + "://" + host + ":" + port
	}
	return origin(a) == origin(b)
}

// completeWords registers a fixed list of values as the completion of
// each named flag of c.
func completeWords(c *cobra.Command, words []string, flags ...string) {
	for _, f := range flags {
		c.RegisterFlagCompletionFunc(f, cobra.FixedCompletions(words, cobra.ShellCompDirectiveNoFileComp))
	}
}
