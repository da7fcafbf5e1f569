package cmd

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/idtx/idtx/oauth"
	"github.com/idtx/idtx/profile"
)

type profileOptions struct {
	io               *IO
	sts              string
	clientID         string
	authMethod       string
	keyFile          string
	clientSecretFile string
	secretStore      string
	output           string
	name             string // NAME of add, show and remove
}

// newProfileCmd is `idtx profile` and its subcommands, which share one
// profileOptions; runF, when set, runs instead of the subcommand once its
// flags are parsed (tests).
func newProfileCmd(f *Factory, runF func(*profileOptions) error) *cobra.Command {
	o := &profileOptions{io: f.IO}
	c := &cobra.Command{
		Use:   "profile",
		Short: "Named STS profiles; secrets in the OS keyring or a 0600 file",
		Long: `Save an STS, client id and authentication method under a name, for
'idtx exchange --profile NAME'. The non-secret fields go to
$XDG_CONFIG_HOME/idtx/profiles.yaml. A client secret, read from
--client-secret-file, IDTX_CLIENT_SECRET or a no-echo prompt (never from
a flag, and never printed), goes to the OS keyring (service "idtx"); where
no keyring answers (CI, containers, WSL), or with --secret-store file, to
a secrets file of mode 0600 ($IDTX_HOME/secrets.yaml, else secrets.yaml
next to profiles.yaml), with a warning. Keys for private_key_jwt are
referenced by path. See docs/cli.md.`,
		Args: noArgs,
	}
	add := &cobra.Command{
		Use:   "add NAME --sts URL [--client-id ID] [--auth-method M] [--key-file F] [--client-secret-file F|-]",
		Short: "Save a profile (replacing one of the same name)",
		Example: `  $ idtx profile add corp --sts https://sts.corp.example --client-id gateway --auth-method private_key_jwt --key-file gw.pem
  $ idtx profile add kc --sts https://keycloak.example/realms/x --client-id api --client-secret-file secret.txt
  $ pass show kc-secret | idtx profile add kc --sts https://keycloak.example/realms/x --client-id api --client-secret-file -`,
		Args: exactArgs(1, "one NAME"),
		RunE: func(_ *cobra.Command, args []string) error { return runProfileAdd(o, args[0]) },
	}
	add.Flags().StringVar(&o.sts, "sts", "", "token endpoint or issuer URL (required)")
	add.Flags().StringVar(&o.clientID, "client-id", "", "client id")
	add.Flags().StringVar(&o.authMethod, "auth-method", "", "client_secret_basic|client_secret_post|private_key_jwt|none (default by what is given)")
	add.Flags().StringVar(&o.keyFile, "key-file", "", "private key (PEM) for private_key_jwt, kept by path")
	add.Flags().StringVar(&o.clientSecretFile, "client-secret-file", "", "file holding the client secret, or - for stdin (default IDTX_CLIENT_SECRET)")
	add.Flags().StringVar(&o.secretStore, "secret-store", "", "where the secret goes: keyring or file (default the keyring when one answers, else the file)")
	completeWords(add, authMethods, "auth-method")
	completeWords(add, []string{profile.StoreKeyring, profile.StoreFile}, "secret-store")

	list := &cobra.Command{
		Use:     "list [-o text|json]",
		Short:   "List profiles",
		Example: "  $ idtx profile list",
		Args:    noArgs,
		RunE: func(*cobra.Command, []string) error {
			ps, err := profile.List()
			if err != nil {
				return err
			}
			if o.output == "json" {
				if ps == nil {
					ps = []*profile.Profile{}
				}
				return writeJSON(o.io, ps)
			}
			tw := tabwriter.NewWriter(o.io.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSTS\tCLIENT\tAUTH")
			for _, p := range ps {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", safeText(p.Name), safeText(p.STS), safeText(p.ClientID), safeText(p.AuthMethod))
			}
			return tw.Flush()
		},
	}
	show := &cobra.Command{
		Use:     "show NAME [-o text|json]",
		Short:   "Show a profile (never its secret)",
		Example: "  $ idtx profile show corp",
		Args:    exactArgs(1, "one NAME"),
		RunE: func(_ *cobra.Command, args []string) error {
			p, err := profile.Get(args[0])
			if err != nil {
				return usageError("%v", err)
			}
			if o.output == "json" {
				return writeJSON(o.io, p)
			}
			secret := p.SecretLocation()
			fmt.Fprintf(o.io.Out, "name:         %s\nsts:          %s\nclient_id:    %s\nauth_method:  %s\n", safeText(p.Name), safeText(p.STS), safeText(p.ClientID), safeText(p.AuthMethod))
			if p.KeyFile != "" {
				fmt.Fprintf(o.io.Out, "key_file:     %s\n", safeText(p.KeyFile))
			}
			fmt.Fprintf(o.io.Out, "secret:       %s\n", secret)
			return nil
		},
	}
	remove := &cobra.Command{
		Use:     "remove NAME",
		Short:   "Remove a profile and its secret",
		Example: "  $ idtx profile remove corp",
		Args:    exactArgs(1, "one NAME"),
		RunE: func(_ *cobra.Command, args []string) error {
			if err := profile.Remove(args[0]); err != nil {
				if errors.Is(err, profile.ErrNotFound) {
					return usageError("%v", err) // as profile show: exit 2
				}
				return err
			}
			fmt.Fprintf(o.io.Err, "removed profile %s\n", args[0])
			return nil
		},
	}
	for _, sub := range []*cobra.Command{list, show} {
		sub.Flags().StringVarP(&o.output, "output", "o", "text", "output: text or json")
		completeWords(sub, []string{"text", "json"}, "output")
	}
	for _, sub := range []*cobra.Command{show, remove} {
		sub.ValidArgsFunction = func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			ps, _ := profile.List()
			var names []string
			for _, p := range ps {
				names = append(names, p.Name)
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		}
	}
	for _, sub := range []*cobra.Command{add, list, show, remove} {
		run := sub.RunE
		sub.RunE = func(c *cobra.Command, args []string) error {
			if runF != nil {
				if len(args) == 1 {
					o.name = args[0]
				}
				return runF(o)
			}
			return run(c, args)
		}
	}
	c.AddCommand(add, list, show, remove)
	return c
}

func runProfileAdd(o *profileOptions, name string) error {
	if o.sts == "" {
		return usageError("--sts is required")
	}
	if err := profile.CheckName(name); err != nil {
		return usageError("%v", err)
	}
	switch o.secretStore {
	case "", profile.StoreKeyring, profile.StoreFile:
	default:
		return usageError("--secret-store %q is not one of keyring, file", o.secretStore)
	}
	// A secret given by file or environment is read now, so that it is
	// never silently dropped by the method chosen below.
	var secret, secretFrom string
	switch {
	case o.clientSecretFile != "":
		var err error
		if secret, err = readSecret(o); err != nil {
			return err
		}
		secretFrom = "--client-secret-file"
	case os.Getenv("IDTX_CLIENT_SECRET") != "":
		secret, secretFrom = os.Getenv("IDTX_CLIENT_SECRET"), "IDTX_CLIENT_SECRET"
	}
	method := o.authMethod
	if method == "" {
		switch {
		case o.keyFile != "":
			method = oauth.AuthPrivateKeyJWT
		case secret != "":
			method = oauth.AuthClientSecretBasic
		case o.clientID != "":
			if !o.io.InIsTerminal() {
				return usageError("--client-id %s without a secret: give --client-secret-file FILE|-, IDTX_CLIENT_SECRET, or --auth-method none for a public client", o.clientID)
			}
			method = oauth.AuthClientSecretBasic // prompted for below
		}
	}
	p := &profile.Profile{Name: name, STS: o.sts, ClientID: o.clientID, AuthMethod: method}
	switch method {
	case oauth.AuthClientSecretBasic, oauth.AuthClientSecretPost:
		if o.clientID == "" {
			return usageError("%s needs --client-id", method)
		}
		if secret == "" {
			var err error
			if secret, err = readSecret(o); err != nil {
				return err
			}
		}
	case oauth.AuthPrivateKeyJWT:
		if o.clientID == "" || o.keyFile == "" {
			return usageError("private_key_jwt needs --client-id and --key-file")
		}
		if secret != "" {
			return usageError("private_key_jwt signs with --key-file, but a client secret was given by %s: drop one of them", secretFrom)
		}
		abs, err := absPath(o.keyFile)
		if err != nil {
			return usageError("%v", err)
		}
		p.KeyFile = abs
	case oauth.AuthNone:
		if secret != "" {
			return usageError("--auth-method none, but a client secret was given by %s: drop one of them", secretFrom)
		}
		if o.clientID == "" {
			return usageError("--auth-method none needs --client-id (a public client still names itself)")
		}
	case "":
		// No client: exchange uses the mock's demo client, and only
		// against an idtx mock.
	default:
		return usageError("--auth-method %q is not one of %s", method, strings.Join(authMethods, ", "))
	}
	store, err := profile.Add(p, secret, o.secretStore)
	if err != nil {
		return err
	}
	where := ""
	switch store {
	case profile.StoreKeyring:
		where = ", secret in the OS keyring"
	case profile.StoreFile:
		path, _ := profile.SecretsPath()
		why := "no OS keyring answered"
		if o.secretStore == profile.StoreFile {
			why = "--secret-store file"
		}
		fmt.Fprintf(o.io.Err, "idtx: warning: %s: the secret of profile %s is kept in %s (mode 0600, readable by whoever can read your files)\n", why, name, path)
		where = ", secret in " + path
	}
	if method == "" {
		method = "no client"
	}
	fmt.Fprintf(o.io.Err, "saved profile %s (%s%s)\n", name, method, where)
	return nil
}

// readSecret reads the secret from --client-secret-file, or stdin (with a
// prompt that does not echo on a terminal).
func readSecret(o *profileOptions) (string, error) {
	switch {
	case o.clientSecretFile == "-":
		return readValue("-", o.io.In)
	case o.clientSecretFile != "":
		return readValue("@"+o.clientSecretFile, o.io.In)
	}
	return promptSecret(o.io, "client secret: ")
}

// promptSecret reads a secret from stdin: with a prompt and no echo on a
// terminal, else the whole of stdin.
func promptSecret(io *IO, prompt string) (string, error) {
	if f, ok := io.In.(*os.File); ok && io.InIsTerminal() {
		fmt.Fprint(io.Err, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(io.Err)
		if err != nil {
			return "", usageError("read secret: %v", err)
		}
		if s := strings.TrimSpace(string(b)); s != "" {
			return s, nil
		}
		return "", usageError("empty secret")
	}
	return readValue("-", io.In)
}
