package cmd

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/idtx/idtx/mockidp"
)

type mockTokenOptions struct {
	io     *IO
	sub    string
	format string
	aud    string
	scope  string
	ttl    time.Duration
	claims []string
	mayAct string
	at     string
	breaks []string
	preset string
	issuer string
	// subGiven and audGiven: --sub and --aud were on the command line,
	// and beat a preset's own subject and audience.
	subGiven, audGiven bool
}

func newMockCmd(f *Factory) *cobra.Command {
	c := &cobra.Command{
		Use:   "mock",
		Short: "The built-in mock identity provider",
		Args:  noArgs,
	}
	c.AddCommand(newMockTokenCmd(f, nil))
	return c
}

// newMockTokenCmd is `idtx mock token`; runF, when set, runs instead of
// the minting once the flags are parsed (tests).
func newMockTokenCmd(f *Factory, runF func(*mockTokenOptions) error) *cobra.Command {
	o := &mockTokenOptions{io: f.IO}
	c := &cobra.Command{
		Use:   "token",
		Short: "Mint a subject token from the mock IDP, offline",
		Long: `Print one subject token that 'idtx serve --mock' trusts, signed offline
with the mock IDP's fixture key (public, for local development only): a
JWT, or a SAML 2.0 or 1.1 assertion (base64url, as RFC 8693 sends it)
whose attributes are --scope and the --claim values.

--format opaque mints a token of the mock internal IDP (mock-internal):
opaque to everyone but the running mock, which validates it through its
own introspection endpoint (RFC 7662, POST /mock/introspect). Send it as
subject_token_type access_token.

--preset NAME mints a token shaped as a platform's (github-actions,
gitlab-ci, kubernetes, google, entra, auth0, keycloak, dex): its claims
(repository, ref, job_workflow_ref; project_path, pipeline_source;
kubernetes.io's namespace and service account; ...), its typ and its
audience, under an issuer of the mock that 'idtx serve --mock' trusts as
an IDP of the same name (docs/mock.md). --claim overrides any claim;
--sub and --aud replace the platform's; a GitHub or GitLab subject follows
the repository and ref claims. --issuer gives any token another issuer,
for a production config whose IDP takes its keys from the mock's JWKS.

--break KIND (repeatable) mints a token wrong in one way, which the mock
refuses as docs/testing.md shows (format: which --format it applies to):
` + mockidp.BreakHelp(),
		Example: `  $ idtx mock token --sub alice
  $ idtx mock token --sub bob --scope "billing:read" --ttl 10m
  $ idtx mock token --claim groups='["admins"]' --claim email=alice@example.com
  $ idtx mock token --sub alice --may-act gateway
  $ idtx mock token --format saml2 --sub bob --claim groups='["ops","dev"]'
  $ idtx mock token --format opaque --sub alice --scope orders:read
  $ idtx mock token --at 2025-01-01T12:00:00Z   # for idtx serve --mock --clock 2025-01-01T12:00:00Z
  $ idtx mock token --break expired
  $ idtx mock token --format saml2 --break wrapped
  $ idtx mock token --preset github-actions --claim ref=refs/heads/dev
  $ idtx mock token --preset kubernetes --aud https://sts.example.com
  $ idtx mock token --preset github-actions --issuer https://token.actions.githubusercontent.com`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			o.subGiven, o.audGiven = c.Flags().Changed("sub"), c.Flags().Changed("aud")
			if runF != nil {
				return runF(o)
			}
			return runMockToken(o)
		},
	}
	fs := c.Flags()
	fs.StringVar(&o.sub, "sub", mockidp.DefaultSub, "subject (sub claim)")
	fs.StringVar(&o.format, "format", "jwt", "token format: jwt, saml2, saml1 (SAML base64url-encoded) or opaque (the mock internal IDP's)")
	fs.StringVar(&o.aud, "aud", mockidp.Audience, "audience (aud claim)")
	fs.StringVar(&o.scope, "scope", "", "space-separated scopes (scope claim)")
	fs.DurationVar(&o.ttl, "ttl", mockidp.DefaultTTL, "lifetime")
	fs.StringArrayVar(&o.claims, "claim", nil, "extra claim k=v, repeatable; v may be JSON")
	fs.StringVar(&o.mayAct, "may-act", "", "add a may_act claim naming this actor subject (delegation)")
	fs.StringVar(&o.at, "at", "", "mint as of this instant (for 'idtx serve --clock'): RFC 3339, a date, or an offset such as -24h")
	fs.StringVar(&o.preset, "preset", "", "mint a platform's token: "+strings.Join(mockidp.PresetNames(), ", "))
	fs.StringVar(&o.issuer, "issuer", "", "issuer (iss) instead of the mock's, for a config whose IDP takes its keys from the mock's JWKS")
	completeWords(c, []string{"jwt", "saml2", "saml1", "opaque"}, "format")
	fs.StringArrayVar(&o.breaks, "break", nil, "mint a token the mock refuses: a failure scenario KIND, repeatable (listed above)")
	completeWords(c, mockidp.PresetNames(), "preset")
	kinds := make([]string, len(mockidp.Breaks))
	for i, b := range mockidp.Breaks {
		kinds[i] = string(b.Kind)
	}
	completeWords(c, kinds, "break")
	return c
}

func runMockToken(o *mockTokenOptions) error {
	if o.ttl <= 0 {
		return usageError("--ttl must be positive")
	}
	claims, err := parseClaims(o.claims)
	if err != nil {
		return err
	}
	opts := mockidp.TokenOptions{Issuer: o.issuer, Sub: o.sub, Aud: o.aud, Scope: o.scope, TTL: o.ttl, MayAct: o.mayAct, Claims: claims}
	for _, b := range o.breaks {
		opts.Breaks = append(opts.Breaks, mockidp.Break(b))
	}
	format := map[string]string{"saml2": "saml", "saml1": "saml"}[o.format]
	if format == "" {
		format = o.format
	}
	if err := mockidp.CheckBreaks(opts.Breaks, format); err != nil && slices.Contains([]string{"jwt", "saml", "opaque"}, format) {
		return usageError("--%v", err)
	}
	if o.at != "" {
		if opts.Now, err = parseTime("--at", o.at, time.Now()); err != nil {
			return err
		}
	}
	if o.issuer != "" {
		if u, err := url.Parse(o.issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return usageError("--issuer %q is not an http(s) URL", o.issuer)
		}
	}
	if o.preset != "" {
		p, ok := mockidp.LookupPreset(o.preset)
		if !ok {
			return usageError("--preset %q is not one of %s", o.preset, strings.Join(mockidp.PresetNames(), ", "))
		}
		if o.format != "jwt" {
			return usageError("--preset mints JWTs: --format %s does not go with it", o.format)
		}
		if len(o.breaks) > 0 {
			return usageError("--break does not go with --preset: a preset mints the platform's token as it is")
		}
		if !o.subGiven {
			opts.Sub = ""
		}
		if !o.audGiven {
			opts.Aud = ""
		}
		tok, err := p.JWT(opts)
		if err != nil {
			return err
		}
		fmt.Fprintln(o.io.Out, tok)
		return nil
	}
	var tok string
	switch o.format {
	case "jwt":
		tok, err = mockidp.JWT(opts)
	case "saml2", "saml1":
		if o.mayAct != "" {
			return usageError("--may-act is for --format jwt (SAML has no may_act)")
		}
		version := map[string]int{"saml2": 2, "saml1": 1}[o.format]
		tok, err = mockidp.SAML(opts, version)
	case "opaque":
		tok, err = mockidp.Opaque(opts)
	default:
		return usageError("--format %q is not supported (supported: jwt, saml2, saml1, opaque)", o.format)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(o.io.Out, tok)
	return nil
}

// parseClaims reads k=v pairs; a v that parses as JSON is taken as JSON.
func parseClaims(pairs []string) (map[string]any, error) {
	out := map[string]any{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, usageError("--claim %q is not k=v", p)
		}
		var j any
		if err := json.Unmarshal([]byte(v), &j); err == nil {
			out[k] = j
		} else {
			out[k] = v
		}
	}
	return out, nil
}
