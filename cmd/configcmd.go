package cmd

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/exchange"
	"github.com/idtx/idtx/idp"
)

func newConfigCmd(f *Factory) *cobra.Command {
	c := &cobra.Command{
		Use:   "config",
		Short: "Check and start server configuration files",
		Args:  noArgs,
	}
	c.AddCommand(newConfigValidateCmd(f, nil), newConfigInitCmd(f, nil))
	return c
}

type configValidateOptions struct {
	io     *IO
	file   string // FILE
	output string
}

// newConfigValidateCmd is `idtx config validate`; runF, when set, runs
// instead of the validation once the flags are parsed (tests).
func newConfigValidateCmd(f *Factory, runF func(*configValidateOptions) error) *cobra.Command {
	o := &configValidateOptions{io: f.IO}
	validate := &cobra.Command{
		Use:   "validate FILE [-o text|json]",
		Short: "Check a config file and everything it references (a CI gate)",
		Long: `Check a server config (docs/config.md) as 'idtx serve' would: strict
decoding (an unknown key is an error naming it and the nearest known
key), every value, and every file it references (signing.key_file,
jwks_file, certificate_file, metadata_file, client_secret_file) read and
parsed by the same constructors the server uses. Nothing is fetched:
jwks_uri, discovery and introspection endpoints are named in warnings,
not contacted.

Problems go to stderr, one a line as FILE:LINE: message, every one at
once, and exit 1; a valid config is summarised on stdout. -o json prints
{"valid", "problems": [{"file", "line", "message", "path", "severity"}],
"warnings"} on stdout for tools (path: the key path, such as
services[0].token_lifetime). Exit 2 is kept for usage errors (no such
FILE).`,
		Example: `  $ idtx config validate sts.yaml
  $ idtx config validate sts.yaml -o json | jq '.problems[].message'`,
		Args: exactArgs(1, "one FILE"),
		RunE: func(c *cobra.Command, args []string) error {
			o.file = args[0]
			if runF != nil {
				return runF(o)
			}
			return runConfigValidate(c.Context(), o)
		},
	}
	validate.Flags().StringVarP(&o.output, "output", "o", "text", "output: text or json")
	completeWords(validate, []string{"text", "json"}, "output")
	return validate
}

func runConfigValidate(ctx context.Context, o *configValidateOptions) error {
	if o.output != "text" && o.output != "json" {
		return usageError("-o must be text or json, not %q", o.output)
	}
	v, err := validateConfig(ctx, o.file)
	if err != nil {
		return err
	}
	if o.output == "json" {
		if err := writeJSON(o.io, v); err != nil {
			return err
		}
	} else {
		for _, p := range v.Warnings {
			fmt.Fprintf(o.io.Err, "%s: warning: %s\n", where(p), safeText(p.Message))
		}
		for _, p := range v.Problems {
			fmt.Fprintf(o.io.Err, "%s: %s\n", where(p), safeText(p.Message))
		}
		if v.Valid {
			fmt.Fprintf(o.io.Out, "%s: valid\n%s", safeText(o.file), v.cfg.Summary())
		}
	}
	if !v.Valid {
		return &exitError{ExitFailure, fmt.Errorf("%s: %d problem(s)", o.file, len(v.Problems))}
	}
	return nil
}

// where is a problem's place for stderr: FILE:LINE, or FILE.
func where(p config.Problem) string {
	if p.Line > 0 {
		return safeText(p.File) + ":" + strconv.Itoa(p.Line)
	}
	return safeText(p.File)
}

// validation is what config validate found; -o json encodes it as it is.
type validation struct {
	Valid    bool             `json:"valid"`
	Problems []config.Problem `json:"problems"`
	Warnings []config.Problem `json:"warnings"`

	cfg  *config.Config
	file string
}

// add records p, an error or a warning, in v's file, its message on one
// line.
func (v *validation) add(p config.Problem) {
	p.File = v.file
	p.Message = strings.Join(strings.Fields(strings.ReplaceAll(p.Message, "\n", "; ")), " ")
	if p.Severity == config.SeverityWarning {
		v.Warnings = append(v.Warnings, p)
	} else {
		v.Problems = append(v.Problems, p)
	}
}

// validateConfig checks path as serve would, without the network.
func validateConfig(ctx context.Context, path string) (*validation, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, usageError("%v", err)
	}
	// IDTX_ISSUER stands in for a missing issuer: as serve reads it.
	g, err := issuerFrom("", os.Getenv)
	if err != nil {
		return nil, err
	}
	v := &validation{file: path, Problems: []config.Problem{}, Warnings: []config.Problem{}}
	dir := filepath.Dir(path)
	cfg, err := config.ParseGiven(data, dir, func(name string) ([]byte, error) {
		if !filepath.IsAbs(name) {
			name = filepath.Join(dir, name)
		}
		return os.ReadFile(name)
	}, g)
	var problems config.Problems
	switch {
	case errors.As(err, &problems):
		for _, p := range problems {
			v.add(p)
		}
	case err != nil:
		v.add(config.Problem{Message: err.Error(), Severity: config.SeverityError})
	}
	if cfg != nil {
		v.cfg = cfg
		v.checkBuild(ctx, cfg, len(v.Problems) == 0)
		for _, w := range cfg.ChainedWarnings() {
			v.add(w)
		}
		if len(cfg.IDPs) == 0 && len(cfg.Services) == 0 && len(cfg.Clients) == 0 {
			v.add(cfg.Root().Warning("the config defines no idps, services or clients: serve would start and refuse every exchange (idtx config init writes a starter)"))
		}
	}
	v.Valid = len(v.Problems) == 0
	return v, nil
}

// offline is an HTTP client that fetches nothing: config validate says
// what it did not fetch instead.
var offline = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
	return nil, fmt.Errorf("config validate does not fetch %s", r.URL)
})}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// checkBuild builds what serve builds from cfg, through the same
// constructors: the signing key, each IDP (its files read and parsed),
// and, when the rest is clean, the whole engine (clients' jwks_file and
// secret_hash, issuer clashes).
func (v *validation) checkBuild(ctx context.Context, cfg *config.Config, clean bool) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends any background key refresh
	ok := true
	root := cfg.Root()
	var signer *exchange.Signer
	if cfg.Signing.KeyFile != "" {
		s, err := exchange.LoadSigner(cfg.Signing.Alg, exchange.SigningKeyFile(cfg, ""), "")
		if err != nil {
			v.add(root.Child("signing").Child("key_file").Problem("signing.key_file: %v", err))
			ok = false
		}
		signer = s
	}
	for i, d := range cfg.IDPs {
		where := fmt.Sprintf("idps[%d] (%s)", i, d.Name)
		at := root.Child("idps").Index(i)
		switch s := d.Spec.(type) {
		case *idp.JWTSpec:
			switch {
			case s.JWKSURI != "":
				v.add(at.Child("jwks_uri").Warning("%s: jwks_uri %s was not fetched (config validate works offline)", where, s.JWKSURI))
			case s.Discovery:
				v.add(at.Child("discovery").Warning("%s: discovery for %s was not fetched (config validate works offline)", where, d.Issuer))
			}
		case *idp.IntrospectionSpec:
			switch {
			case s.Discovery:
				v.add(at.Child("discovery").Warning("%s: discovery for %s was not fetched (config validate works offline)", where, d.Issuer))
			case s.IntrospectionEndpoint != "":
				v.add(at.Child("introspection_endpoint").Warning("%s: introspection_endpoint %s was not contacted (config validate works offline)", where, s.IntrospectionEndpoint))
			}
		}
		if _, err := buildIDP(ctx, d, cfg.ReadFile); err != nil {
			msg := strings.TrimPrefix(err.Error(), "idp "+d.Name+": ")
			key := fileKey(d)
			if key != "" && !strings.Contains(msg, key) {
				msg = key + ": " + msg
			}
			if key != "" {
				at = at.Child(key)
			}
			v.add(at.Problem("%s: %s", where, msg))
			ok = false
		}
	}
	if !clean || !ok {
		return
	}
	reg, err := idp.FromConfig(ctx, cfg.IDPs, idp.Options{HTTPClient: offline, ReadFile: cfg.ReadFile})
	if err != nil {
		v.add(root.Child("idps").Problem("idps: %v", err))
		return
	}
	if signer == nil {
		tmp, err := os.MkdirTemp("", "idtx-validate-")
		if err != nil {
			v.add(root.Problem("%v", err))
			return
		}
		defer os.RemoveAll(tmp)
		if signer, err = exchange.LoadSigner(cfg.Signing.Alg, "", tmp); err != nil {
			v.add(root.Child("signing").Problem("signing: %v", err))
			return
		}
	}
	c := *cfg
	if c.Issuer == "" {
		c.Issuer = DefaultSTS // serve uses its listen address
	}
	if _, err := exchange.NewEngine(&c, exchange.Options{Registry: reg, Signer: signer}); err != nil {
		v.add(clientProblem(cfg, err))
	}
}

// buildIDP runs the IDP's constructor offline, turning a panic on a
// config that already has problems into one more problem.
func buildIDP(ctx context.Context, d config.IDP, readFile func(string) ([]byte, error)) (_ *idp.Registry, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("cannot be built: %v", r)
		}
	}()
	if d.Type == "" || d.Name == "" {
		return nil, nil // already a problem of its own
	}
	return idp.FromConfig(ctx, []config.IDP{d}, idp.Options{HTTPClient: offline, ReadFile: readFile})
}

// fileKey is the key naming the file an IDP is built from, if any.
func fileKey(d config.IDP) string {
	switch s := d.Spec.(type) {
	case *idp.JWTSpec:
		if s.JWKSFile != "" {
			return "jwks_file"
		}
	case *idp.SAMLSpec:
		switch {
		case s.CertificateFile != "":
			return "certificate_file"
		case s.MetadataFile != "":
			return "metadata_file"
		}
	case *idp.IntrospectionSpec:
		if s.ClientSecretFile != "" {
			return "client_secret_file"
		}
	}
	return ""
}

// clientProblem places the engine's "client ID: …" at clients[i] (ID),
// on the key it is about.
func clientProblem(cfg *config.Config, err error) config.Problem {
	msg := err.Error()
	for i, cl := range cfg.Clients {
		if rest, ok := strings.CutPrefix(msg, "client "+cl.ID+": "); ok {
			key := "jwks_file"
			if strings.HasPrefix(rest, "secret_hash") {
				key = "secret_hash"
			} else if !strings.Contains(rest, key) {
				rest = key + ": " + rest
			}
			return cfg.Root().Child("clients").Index(i).Child(key).Problem("clients[%d] (%s): %s", i, cl.ID, rest)
		}
	}
	return cfg.Root().Problem("%s", msg)
}
