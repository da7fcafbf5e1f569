package cmd

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/exchange"
	"github.com/idtx/idtx/idp"
)

func newConfigCmd(io *IO) *cobra.Command {
	c := &cobra.Command{
		Use:   "config",
		Short: "Check and start server configuration files",
		Args:  noArgs,
	}
	var output string
	validate := &cobra.Command{
		Use:   "validate FILE [-o text|json]",
		Short: "Check a config file and everything it references (a CI gate)",
		Long: `Check a server config (docs/config.md) as 'idtx serve' would: strict
decoding (an unknown key is an error naming it), every value, and every
file it references (signing.key_file, jwks_file, certificate_file,
metadata_file, client_secret_file) read and parsed by the same
constructors the server uses. Nothing is fetched: jwks_uri, discovery and
introspection endpoints are named in warnings, not contacted.

Problems go to stderr, one a line as FILE:LINE: message, every one at
once, and exit 1; a valid config is summarised on stdout. -o json prints
{"valid", "problems": [{"file", "line", "message"}], "warnings"} on stdout
for tools. Exit 2 is kept for usage errors (no such FILE).`,
		Example: `  $ idtx config validate sts.yaml
  $ idtx config validate sts.yaml -o json | jq '.problems[].message'`,
		Args: exactArgs(1, "one FILE"),
		RunE: func(c *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return usageError("-o must be text or json, not %q", output)
			}
			v, err := validateConfig(c.Context(), args[0])
			if err != nil {
				return err
			}
			if output == "json" {
				if err := writeJSON(io, v); err != nil {
					return err
				}
			} else {
				for _, p := range v.Warnings {
					fmt.Fprintf(io.Err, "%s: warning: %s\n", p.where(), safeText(p.Message))
				}
				for _, p := range v.Problems {
					fmt.Fprintf(io.Err, "%s: %s\n", p.where(), safeText(p.Message))
				}
				if v.Valid {
					fmt.Fprintf(io.Out, "%s: valid\n%s", safeText(args[0]), v.cfg.Summary())
				}
			}
			if !v.Valid {
				return &exitError{ExitFailure, fmt.Errorf("%s: %d problem(s)", args[0], len(v.Problems))}
			}
			return nil
		},
	}
	validate.Flags().StringVarP(&output, "output", "o", "text", "output: text or json")
	completeWords(validate, []string{"text", "json"}, "output")
	c.AddCommand(validate, newConfigInitCmd(io))
	return c
}

// configProblem is one problem or warning, with its place.
type configProblem struct {
	File    string `json:"file"`
	Line    int    `json:"line,omitempty"`
	Message string `json:"message"`
}

func (p configProblem) where() string {
	if p.Line > 0 {
		return safeText(p.File) + ":" + strconv.Itoa(p.Line)
	}
	return safeText(p.File)
}

type validation struct {
	Valid    bool            `json:"valid"`
	Problems []configProblem `json:"problems"`
	Warnings []configProblem `json:"warnings"`

	cfg  *config.Config
	file string
	root *yaml.Node
}

func (v *validation) problem(msg string) { v.Problems = append(v.Problems, v.place(msg)) }
func (v *validation) warn(msg string)    { v.Warnings = append(v.Warnings, v.place(msg)) }
func (v *validation) place(msg string) configProblem {
	msg = strings.Join(strings.Fields(strings.ReplaceAll(msg, "\n", "; ")), " ")
	line, msg := lineOf(v.root, msg)
	return configProblem{File: v.file, Line: line, Message: msg}
}

// validateConfig checks path as serve would, without the network.
func validateConfig(ctx context.Context, path string) (*validation, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, usageError("%v", err)
	}
	v := &validation{file: path, Problems: []configProblem{}, Warnings: []configProblem{}}
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) == nil && len(doc.Content) > 0 {
		v.root = doc.Content[0]
	}
	dir := filepath.Dir(path)
	cfg, err := config.Parse(data, dir, func(name string) ([]byte, error) {
		if !filepath.IsAbs(name) {
			name = filepath.Join(dir, name)
		}
		return os.ReadFile(name)
	})
	var problems config.Problems
	switch {
	case errors.As(err, &problems):
		for _, p := range problems {
			v.problem(p)
		}
	case err != nil:
		v.problem(err.Error())
	}
	if cfg != nil {
		v.cfg = cfg
		v.checkBuild(ctx, cfg, len(v.Problems) == 0)
		if len(cfg.IDPs) == 0 && len(cfg.Services) == 0 && len(cfg.Clients) == 0 {
			v.warn("the config defines no idps, services or clients: serve would start and refuse every exchange (idtx config init writes a starter)")
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
	var signer *exchange.Signer
	if cfg.Signing.KeyFile != "" {
		s, err := exchange.LoadSigner(cfg.Signing.Alg, exchange.SigningKeyFile(cfg, ""), "")
		if err != nil {
			v.problem("signing.key_file: " + err.Error())
			ok = false
		}
		signer = s
	}
	for i, d := range cfg.IDPs {
		where := fmt.Sprintf("idps[%d] (%s)", i, d.Name)
		switch {
		case d.JWKSURI != "":
			v.warn(where + ": jwks_uri " + d.JWKSURI + " was not fetched (config validate works offline)")
		case d.Discovery:
			v.warn(where + ": discovery for " + d.Issuer + " was not fetched (config validate works offline)")
		case d.IntrospectionEndpoint != "":
			v.warn(where + ": introspection_endpoint " + d.IntrospectionEndpoint + " was not contacted (config validate works offline)")
		}
		if _, err := buildIDP(ctx, d, cfg.ReadFile); err != nil {
			msg := strings.TrimPrefix(err.Error(), "idp "+d.Name+": ")
			if key := fileKey(d); key != "" && !strings.Contains(msg, key) {
				msg = key + ": " + msg
			}
			v.problem(where + ": " + msg)
			ok = false
		}
	}
	if !clean || !ok {
		return
	}
	reg, err := idp.FromConfig(ctx, cfg.IDPs, idp.Options{HTTPClient: offline, ReadFile: cfg.ReadFile})
	if err != nil {
		v.problem("idps: " + err.Error())
		return
	}
	if signer == nil {
		tmp, err := os.MkdirTemp("", "idtx-validate-")
		if err != nil {
			v.problem(err.Error())
			return
		}
		defer os.RemoveAll(tmp)
		if signer, err = exchange.LoadSigner(cfg.Signing.Alg, "", tmp); err != nil {
			v.problem("signing: " + err.Error())
			return
		}
	}
	c := *cfg
	if c.Issuer == "" {
		c.Issuer = DefaultSTS // serve uses its listen address
	}
	if _, err := exchange.NewEngine(&c, exchange.Options{Registry: reg, Signer: signer}); err != nil {
		v.problem(clientPlace(cfg, err.Error()))
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
	switch {
	case d.JWKSFile != "":
		return "jwks_file"
	case d.CertificateFile != "":
		return "certificate_file"
	case d.MetadataFile != "":
		return "metadata_file"
	case d.ClientSecretFile != "":
		return "client_secret_file"
	}
	return ""
}

// clientPlace turns the engine's "client ID: …" into "clients[i] (ID): …".
func clientPlace(cfg *config.Config, msg string) string {
	for i, cl := range cfg.Clients {
		if rest, ok := strings.CutPrefix(msg, "client "+cl.ID+": "); ok {
			key := "jwks_file"
			if strings.HasPrefix(rest, "secret_hash") {
				key = ""
			}
			if key != "" && !strings.Contains(rest, key) {
				rest = key + ": " + rest
			}
			return fmt.Sprintf("clients[%d] (%s): %s", i, cl.ID, rest)
		}
	}
	return msg
}

var (
	lineRe   = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	pathRe   = regexp.MustCompile(`^(idps|services|clients|workflows)\[(\d+)\](?: \([^)]*\))?: (.*)$`)
	keyRe    = regexp.MustCompile(`^([a-z_]+)[: ]`)
	quotedRe = regexp.MustCompile(`"([^"]+)"`)
)

// lineOf finds the line a problem is about: yaml.v3's own "line N: …",
// else the list item it names ("idps[0] (corp): …") and within it the key
// the message starts with, else a top-level key ("issuer: …"). 0 when
// none is found: the problem is then about the whole file.
func lineOf(root *yaml.Node, msg string) (int, string) {
	if m := lineRe.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n, m[2]
	}
	if root == nil || root.Kind != yaml.MappingNode {
		return 0, msg
	}
	if m := pathRe.FindStringSubmatch(msg); m != nil {
		list := mapValue(root, m[1])
		i, _ := strconv.Atoi(m[2])
		if list == nil || list.Kind != yaml.SequenceNode || i >= len(list.Content) {
			return 0, msg
		}
		item := list.Content[i]
		if k := keyRe.FindStringSubmatch(m[3]); k != nil {
			if key := mapKey(item, k[1]); key != nil {
				return key.Line, msg
			}
		}
		if q := quotedRe.FindStringSubmatch(m[3]); q != nil {
			if n := findScalar(item, q[1]); n != nil {
				return n.Line, msg
			}
		}
		return item.Line, msg
	}
	top, rest, _ := strings.Cut(msg, ":")
	parts := strings.Split(top, ".")
	node := root
	var key *yaml.Node
	for _, p := range parts {
		if key = mapKey(node, p); key == nil {
			return 0, msg
		}
		node = mapValue(node, p)
	}
	_ = rest
	return key.Line, msg
}

func mapKey(m *yaml.Node, name string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == name {
			return m.Content[i]
		}
	}
	return nil
}

func mapValue(m *yaml.Node, name string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == name {
			return m.Content[i+1]
		}
	}
	return nil
}

// findScalar finds the first scalar below n whose value is v.
func findScalar(n *yaml.Node, v string) *yaml.Node {
	if n.Kind == yaml.ScalarNode && n.Value == v {
		return n
	}
	for _, c := range n.Content {
		if f := findScalar(c, v); f != nil {
			return f
		}
	}
	return nil
}
