package cmd

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/idtx/idtx/exchange"
	"github.com/idtx/idtx/profile"
)

type profileOptions struct {
	io               *IO
	sts              string
	clientID         string
	authMethod       string
	keyFile          string
	clientSecretFile string
	output           string
}

func newProfileCmd(io *IO) *cobra.Command {
	o := &profileOptions{io: io}
	c := &cobra.Command{
		Use:   "profile",
		Short: "Named STS profiles; secrets in the OS keyring",
		Long: `Save an STS, client id and authentication method under a name, for
'idtx exchange --profile NAME'. The non-secret fields go to
$XDG_CONFIG_HOME/idtx/profiles.yaml; a client secret goes to the OS keyring
(service "idtx"), read from --client-secret-file or stdin, never from a
flag, and never printed. Keys for private_key_jwt are referenced by path.`,
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
	add.Flags().StringVar(&o.clientSecretFile, "client-secret-file", "", "file holding the client secret, or - for stdin")

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
			secret := "none"
			if p.HasSecret {
				secret = "in the OS keyring (service idtx)"
			}
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
				return err
			}
			fmt.Fprintf(o.io.Err, "removed profile %s\n", args[0])
			return nil
		},
	}
	for _, sub := range []*cobra.Command{list, show} {
		sub.Flags().StringVarP(&o.output, "output", "o", "text", "output: text or json")
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
	method := o.authMethod
	if method == "" {
		switch {
		case o.keyFile != "":
			method = exchange.AuthPrivateKeyJWT
		case o.clientSecretFile != "":
			method = exchange.AuthClientSecretBasic
		default:
			method = exchange.AuthNone
		}
	}
	p := &profile.Profile{Name: name, STS: o.sts, ClientID: o.clientID, AuthMethod: method}
	var secret string
	switch method {
	case exchange.AuthClientSecretBasic, exchange.AuthClientSecretPost:
		if o.clientID == "" {
			return usageError("%s needs --client-id", method)
		}
		var err error
		if secret, err = readSecret(o); err != nil {
			return err
		}
	case exchange.AuthPrivateKeyJWT:
		if o.clientID == "" || o.keyFile == "" {
			return usageError("private_key_jwt needs --client-id and --key-file")
		}
		abs, err := absPath(o.keyFile)
		if err != nil {
			return usageError("%v", err)
		}
		p.KeyFile = abs
	case exchange.AuthNone:
	default:
		return usageError("--auth-method %q is not one of client_secret_basic, client_secret_post, private_key_jwt, none", method)
	}
	if err := profile.Add(p, secret); err != nil {
		return err
	}
	where := ""
	if secret != "" {
		where = ", secret in the OS keyring"
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
	if f, ok := o.io.In.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(o.io.Err, "client secret: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(o.io.Err)
		if err != nil {
			return "", usageError("read secret: %v", err)
		}
		if s := strings.TrimSpace(string(b)); s != "" {
			return s, nil
		}
		return "", usageError("empty secret")
	}
	return readValue("-", o.io.In)
}
