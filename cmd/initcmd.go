package cmd

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/template"
	"time"

	"github.com/spf13/cobra"

	"github.com/idtx/idtx/idp"
	"github.com/idtx/idtx/secret"
)

type configInitOptions struct {
	io         *IO
	httpClient func(cacert string) (*http.Client, error)

	issuer  string
	output  string
	force   bool
	timeout time.Duration
}

// newConfigInitCmd is `idtx config init`; runF, when set, runs instead of
// writing the config once the flags are parsed (tests).
func newConfigInitCmd(f *Factory, runF func(*configInitOptions) error) *cobra.Command {
	o := &configInitOptions{io: f.IO, httpClient: f.HTTPClient}
	c := &cobra.Command{
		Use:   "init [--issuer URL] [-o FILE]",
		Short: "Write a commented starter config",
		Long: `Write a starter server config, with a comment on every key (docs/config.md
has them all): one JWT IDP, one service and one client whose secret is
generated now, printed once on stderr and stored only as an argon2id
secret_hash. With --issuer URL the IDP is that issuer's, found through
its OpenID Connect discovery document (fetched now, and named with
discovery: true so the server keeps its keys fresh).

The config goes to stdout, or to -o FILE, which is never overwritten
without --force. It passes 'idtx config validate' as written.`,
		Example: `  $ idtx config init -o sts.yaml
  $ idtx config init --issuer https://login.example.com/realms/corp -o sts.yaml
  $ idtx config validate sts.yaml && idtx serve --config sts.yaml`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(o)
			}
			return runConfigInit(c.Context(), o)
		},
	}
	c.Flags().StringVar(&o.issuer, "issuer", "", "a real IDP's issuer URL: its discovery document fills the IDP")
	c.Flags().StringVarP(&o.output, "output", "o", "", "file to write (default stdout)")
	c.Flags().BoolVar(&o.force, "force", false, "overwrite -o FILE if it exists")
	c.Flags().DurationVar(&o.timeout, "timeout", 10*time.Second, "time limit for fetching the discovery document")
	return c
}

type starter struct {
	IDPName, Issuer, Discovered string
	SecretHash                  string
}

var starterTemplate = template.Must(template.New("starter").Parse(`# idtx server config (every key: docs/config.md).
# Check it:  idtx config validate FILE      Run it:  idtx serve --config FILE

# iss of the tokens idtx issues: the URL clients and resource servers reach
# idtx at. Replicas sharing a postgres:// store must all set the same one.
issuer: http://127.0.0.1:8080

# How issued tokens are signed: ES256 (default), RS256 or EdDSA. Without
# key_file, the signing keys live in the store below (table signing_keys),
# where they rotate and replicas share them; kek_file (or IDTX_KEK) seals
# them with a key-encryption key: openssl rand -base64 32 > sts.kek
signing:
  alg: ES256
  # kek_file: sts.kek
  # rotate_every: 720h
  # key_file: sts-key.pem

# Where consents and signing keys are kept: sqlite:PATH (relative to this
# file; created mode 0600), memory:, or postgres://... shared by replicas.
store: sqlite:idtx.db

# Identity providers whose tokens idtx accepts as subject tokens.
idps:
  - name: {{.IDPName}}
    type: jwt                  # jwt | saml | introspection
    issuer: {{.Issuer}}{{if .Discovered}}   # found at {{.Discovered}}{{end}}
    discovery: true            # or jwks_uri: URL, or jwks_file: FILE
    audiences: [idtx-sts]      # the subject token's aud must contain one: use what your IDP puts there
    # algorithms: [RS256, ES256]
    # claims: {groups: realm_access.roles, email: email}

# The services tokens are exchanged for.
services:
  - name: orders-api
    audience: orders-api       # the aud of issued tokens (default: the name)
    scopes:
      orders:read: {}
      orders:write: {consent: true}   # needs a stored consent (idtx consent grant)
    default_scopes: [orders:read]
    token_lifetime: 5m

# The clients that may call POST /token.
clients:
  - id: gateway
    # Made by idtx config init; the secret itself was printed once. Make
    # another with: idtx secret hash
    secret_hash: '{{.SecretHash}}'
    services: [orders-api]     # or ["*"]
    modes: [impersonation]     # and/or delegation
`))

func runConfigInit(ctx context.Context, o *configInitOptions) error {
	s := starter{IDPName: "corp", Issuer: "https://idp.example.com"}
	if o.output != "" && !o.force {
		if _, err := os.Stat(o.output); err == nil {
			return usageError("%s exists: not overwritten (add --force to replace it)", o.output)
		}
	}
	if o.issuer != "" {
		u, err := url.Parse(o.issuer)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return usageError("--issuer %q is not an http(s) URL", o.issuer)
		}
		ctx, cancel := context.WithTimeout(ctx, o.timeout)
		defer cancel()
		doc := strings.TrimSuffix(o.issuer, "/") + "/.well-known/openid-configuration"
		var meta struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		client, err := o.httpClient("")
		if err != nil {
			return err
		}
		status, err := idp.FetchJSON(ctx, client, doc, &meta)
		if err != nil {
			if status == 0 {
				return unreachableError(friendlyNetError(err, o.issuer, o.timeout))
			}
			return unreachableError(fmt.Errorf("%s: %w", doc, err))
		}
		// OpenID Connect Discovery 1.0 §4.3: the document names the issuer
		// it was fetched for.
		if strings.TrimSuffix(meta.Issuer, "/") != strings.TrimSuffix(o.issuer, "/") {
			return unreachableError(fmt.Errorf("%s names issuer %q, not %q (OpenID Connect Discovery 1.0 §4.3)", doc, clipRemote(meta.Issuer, 200), o.issuer))
		}
		if meta.JWKSURI == "" {
			return unreachableError(fmt.Errorf("%s has no jwks_uri: idtx could not check this IDP's tokens", doc))
		}
		s.Issuer, s.Discovered = meta.Issuer, doc
		if name := idpName(u); name != "" {
			s.IDPName = name
		}
	}
	raw := make([]byte, 24)
	rand.Read(raw)
	plain := base64.RawURLEncoding.EncodeToString(raw)
	hash, err := secret.Hash(secret.AlgArgon2id, plain)
	if err != nil {
		return err
	}
	s.SecretHash = hash
	var b strings.Builder
	if err := starterTemplate.Execute(&b, s); err != nil {
		return err
	}
	if o.output == "" {
		fmt.Fprint(o.io.Out, b.String())
	} else if err := os.WriteFile(o.output, []byte(b.String()), 0o600); err != nil {
		return err
	} else {
		fmt.Fprintf(o.io.Err, "wrote %s\n", o.output)
	}
	fmt.Fprintf(o.io.Err, "client gateway's secret (shown once, kept only as secret_hash): %s\n", plain)
	return nil
}

// idpName is a name for the IDP at issuer u: the first label of its host
// name (login.example.com: login), else the last segment of its path
// (http://127.0.0.1:5556/dex: dex); "" when neither makes a name. An IP
// address never gives one: "127" names nothing.
func idpName(u *url.URL) string {
	var candidates []string
	if host := u.Hostname(); net.ParseIP(host) == nil && host != "localhost" {
		candidates = append(candidates, strings.ToLower(strings.Split(host, ".")[0]))
	}
	segs := strings.Split(strings.Trim(u.Path, "/"), "/")
	candidates = append(candidates, strings.ToLower(segs[len(segs)-1]))
	for _, c := range candidates {
		if profileNameOK(c) && strings.ContainsFunc(c, func(r rune) bool { return r >= 'a' && r <= 'z' }) {
			return c
		}
	}
	return ""
}

func profileNameOK(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

func newSecretCmd(f *Factory) *cobra.Command {
	c := &cobra.Command{
		Use:   "secret",
		Short: "Client secret tools",
		Args:  noArgs,
	}
	c.AddCommand(newSecretHashCmd(f, nil))
	return c
}

type secretHashOptions struct {
	io  *IO
	alg string
}

// newSecretHashCmd is `idtx secret hash`; runF, when set, runs instead of
// the hashing once the flags are parsed (tests).
func newSecretHashCmd(f *Factory, runF func(*secretHashOptions) error) *cobra.Command {
	o := &secretHashOptions{io: f.IO}
	hash := &cobra.Command{
		Use:   "hash [--alg argon2id|bcrypt]",
		Short: "Make a secret_hash for a client of the config",
		Long: `Read a client secret from a prompt that does not echo (on a terminal) or
from stdin, and print its hash for a client's secret_hash in the config:
argon2id (RFC 9106, PHC string format; the default) or bcrypt (which reads
at most 72 bytes). The secret is never a flag, and never printed.`,
		Example: `  $ idtx secret hash
  $ openssl rand -base64 32 | tee secret.txt | idtx secret hash --alg bcrypt`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			if runF != nil {
				return runF(o)
			}
			return runSecretHash(o)
		},
	}
	hash.Flags().StringVar(&o.alg, "alg", secret.AlgArgon2id, "argon2id or bcrypt")
	completeWords(hash, []string{secret.AlgArgon2id, secret.AlgBcrypt}, "alg")
	return hash
}

func runSecretHash(o *secretHashOptions) error {
	if o.alg != secret.AlgArgon2id && o.alg != secret.AlgBcrypt {
		return usageError("--alg must be argon2id or bcrypt, not %q", o.alg)
	}
	plain, err := promptSecret(o.io, "client secret: ")
	if err != nil {
		return err
	}
	h, err := secret.Hash(o.alg, plain)
	if err != nil {
		return usageError("%v", err)
	}
	fmt.Fprintln(o.io.Out, h)
	return nil
}
