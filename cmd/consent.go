package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/consent"
	"github.com/idtx/idtx/mockidp"
	"github.com/idtx/idtx/store"
)

type consentOptions struct {
	io             *IO
	loadConfigFile func(path string) (*config.Config, error)
	openStoreURL   func(url string) (store.Store, error)

	store   string
	config  string
	idp     string
	user    string
	service string
	scope   string
	output  string
	file    string // FILE of seed

	cfg *config.Config // loaded from --config, if given
}

// newConsentCmd is `idtx consent` and its subcommands, which share one
// consentOptions; runF, when set, runs instead of the subcommand once its
// flags are parsed (tests).
func newConsentCmd(f *Factory, runF func(*consentOptions) error) *cobra.Command {
	o := &consentOptions{io: f.IO, loadConfigFile: f.LoadConfig, openStoreURL: f.OpenStore}
	c := &cobra.Command{
		Use:   "consent",
		Short: "Manage stored consents",
		Long: `Manage the consents the STS checks (step 7 of docs/flowchart.md): which scopes a
user of an IDP lets a service have. The exchange never asks; it only looks
here. A running server sees a change at its next request.

A consent belongs to one IDP's user: (idp, user, service, scope). A user of
another IDP with the same subject string never rides on it. Without --idp,
grant and revoke use the only IDP of --config's file, or else the mock's
JWT IDP "mock", and say so on stderr.`,
		Args: noArgs,
	}
	addStoreFlag(c.PersistentFlags(), &o.store, "")
	c.PersistentFlags().StringVar(&o.config, "config", "", "a server config: its IDPs check --idp (and its only IDP is the default), its store is used")

	grant := &cobra.Command{
		Use:   "grant [--idp I] --user U --service S --scope \"a b\"",
		Short: "Record a user's consent to a service's scopes",
		Example: `  $ idtx consent grant --idp corp --user bob --service billing-api --scope billing:read
  $ idtx consent grant --config sts.yaml --user bob --service billing-api --scope billing:read`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			scopes := strings.Fields(o.scope)
			if o.user == "" || o.service == "" || len(scopes) == 0 {
				return usageError("grant needs --user, --service and --scope")
			}
			idp, err := o.idpFor()
			if err != nil {
				return err
			}
			if err := o.checkIDP(idp); err != nil {
				return err
			}
			return o.withStore(c.Context(), func(s store.Store) error {
				if err := s.Grant(c.Context(), idp, o.user, o.service, scopes); err != nil {
					return err
				}
				fmt.Fprintf(o.io.Err, "granted %s of IDP %s: %s %s\n", o.user, idp, o.service, strings.Join(scopes, " "))
				return nil
			})
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke [--idp I] --user U --service S [--scope \"a b\"]",
		Short: "Withdraw consent to some scopes, or to all of a service's",
		Long: `Withdraw consent to some scopes, or to all of a service's. Revoking what
was never granted changes nothing, says "nothing to revoke" on stderr and
exits 0, like revoking twice.`,
		Example: `  $ idtx consent revoke --idp corp --user bob --service billing-api --scope billing:write
  $ idtx consent revoke --idp corp --user bob --service billing-api`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if o.user == "" || o.service == "" {
				return usageError("revoke needs --user and --service")
			}
			idp, err := o.idpFor()
			if err != nil {
				return err
			}
			scopes := strings.Fields(o.scope)
			if path := o.absentStore(); path != "" {
				fmt.Fprintf(o.io.Err, "nothing to revoke (no store at %s)\n", path)
				return nil
			}
			return o.withStore(c.Context(), func(s store.Store) error {
				n, err := s.Revoke(c.Context(), idp, o.user, o.service, scopes)
				if err != nil {
					return err
				}
				what := strings.Join(scopes, " ")
				if what == "" {
					what = "all scopes"
				}
				if n == 0 {
					fmt.Fprintf(o.io.Err, "nothing to revoke: %s of IDP %s has no consent to %s for %s\n", o.user, idp, what, o.service)
					return nil
				}
				fmt.Fprintf(o.io.Err, "revoked %s of IDP %s: %s %s (%d scope grant(s))\n", o.user, idp, o.service, what, n)
				return nil
			})
		},
	}
	list := &cobra.Command{
		Use:   "list [--idp I] [--user U] [--service S] [-o text|json]",
		Short: "List stored consents",
		Long: `List stored consents, of every IDP unless --idp names one, sorted by IDP,
user and service. Consents kept from a store of an earlier idtx, which did
not say which IDP's user gave them, are listed with IDP "(legacy)" (in
JSON: "legacy": true) and are never honoured; re-key them with
"idtx consent migrate".`,
		Example: `  $ idtx consent list
  $ idtx consent list --idp mock --user alice -o json`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if o.output != "text" && o.output != "json" {
				return usageError("-o must be text or json, not %q", o.output)
			}
			if path := o.absentStore(); path != "" {
				// A read-only command never creates a database.
				fmt.Fprintf(o.io.Err, "no consents (no store at %s)\n", path)
				if o.output == "json" {
					fmt.Fprintln(o.io.Out, "[]")
				}
				return nil
			}
			return o.withStore(c.Context(), func(s store.Store) error {
				f := consent.Filter{IDP: o.idp, User: o.user, Service: o.service}
				list, err := s.List(c.Context(), f)
				if err != nil {
					return err
				}
				if ls, ok := s.(store.Legacy); ok && o.idp == "" {
					legacy, err := ls.LegacyConsents(c.Context(), f)
					if err != nil {
						return err
					}
					list = append(list, legacy...)
				}
				if o.output == "json" {
					if list == nil {
						list = []consent.Consent{}
					}
					enc := json.NewEncoder(o.io.Out)
					enc.SetIndent("", "  ")
					return enc.Encode(list)
				}
				tw := tabwriter.NewWriter(o.io.Out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "IDP\tUSER\tSERVICE\tSCOPES")
				for _, cn := range list {
					idp := cn.IDP
					if cn.Legacy {
						idp = "(legacy)"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", idp, cn.User, cn.Service, strings.Join(cn.Scopes, " "))
				}
				return tw.Flush()
			})
		},
	}
	seed := &cobra.Command{
		Use:   "seed FILE|-",
		Short: "Grant every consent in a YAML or JSON file",
		Long: `Grant every consent listed in FILE (- reads stdin), a YAML or JSON list of
{idp, user, service, scopes}. Every entry names its IDP; an unknown key is
an error naming it. Seeding twice changes nothing.`,
		Example: `  $ cat consents.yaml
  - idp: mock
    user: alice
    service: billing-api
    scopes: [billing:read]
  $ idtx consent seed consents.yaml
  $ idtx consent seed - < consents.yaml`,
		Args: exactArgs(1, "one FILE"),
		RunE: func(c *cobra.Command, args []string) error {
			name := args[0]
			var data []byte
			if name == "-" {
				v, err := readValue("-", o.io.In)
				if err != nil {
					return err
				}
				data, name = []byte(v), "stdin"
			} else {
				var err error
				if data, err = os.ReadFile(name); err != nil {
					return usageError("%v", err)
				}
			}
			list, err := consent.ParseSeed(data)
			if err != nil {
				return usageError("%s: %w", name, err)
			}
			for i, cn := range list {
				if err := o.checkIDP(cn.IDP); err != nil {
					return usageError("%s: entry %d: %v", name, i+1, err)
				}
			}
			return o.withStore(c.Context(), func(s store.Store) error {
				if err := consent.Seed(c.Context(), s, list); err != nil {
					return err
				}
				fmt.Fprintf(o.io.Err, "seeded %d consent(s)\n", len(list))
				return nil
			})
		},
	}
	migrate := &cobra.Command{
		Use:   "migrate --idp I [--user U] [--service S]",
		Short: "Re-key consents from an earlier idtx to the IDP their users came from",
		Long: `A store written by an earlier idtx kept consents by user alone. They are
kept apart at open and never honoured, since "alice" of one trusted IDP is
not "alice" of another. migrate grants them to the users of the IDP you
name (required, never assumed), optionally only for some users or a
service, and removes them from the legacy set.`,
		Example: `  $ idtx consent list
  $ idtx consent migrate --idp corp
  $ idtx consent migrate --idp partner --user bob`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if o.idp == "" {
				return usageError("migrate needs --idp: the IDP the legacy consents' users came from")
			}
			if err := o.checkIDP(o.idp); err != nil {
				return err
			}
			return o.openStore(func(s store.Store) error {
				ls, ok := s.(store.Legacy)
				if !ok {
					fmt.Fprintln(o.io.Err, "nothing to migrate: this store keeps no consents of an earlier idtx")
					return nil
				}
				n, err := ls.AdoptLegacy(c.Context(), o.idp, consent.Filter{User: o.user, Service: o.service})
				if err != nil {
					return err
				}
				if n == 0 {
					fmt.Fprintln(o.io.Err, "nothing to migrate: no legacy consents match")
					return nil
				}
				fmt.Fprintf(o.io.Err, "re-keyed %d scope grant(s) to users of IDP %s\n", n, o.idp)
				return o.warnLegacy(c.Context(), s)
			})
		},
	}
	for sub, usage := range map[*cobra.Command]string{
		grant:   "the IDP the user comes from (default: the only IDP of --config, else mock)",
		revoke:  "the IDP the user comes from (default: the only IDP of --config, else mock)",
		list:    "only consents of users of this IDP (default: every IDP)",
		migrate: "the IDP the legacy consents' users came from (required)",
	} {
		sub.Flags().StringVar(&o.idp, "idp", "", usage)
	}
	for _, sub := range []*cobra.Command{grant, revoke, list, migrate} {
		sub.Flags().StringVar(&o.user, "user", "", "user (the subject token's sub)")
		sub.Flags().StringVar(&o.service, "service", "", "service name")
	}
	grant.Flags().StringVar(&o.scope, "scope", "", "space-separated scopes")
	revoke.Flags().StringVar(&o.scope, "scope", "", "space-separated scopes (default: all)")
	list.Flags().StringVarP(&o.output, "output", "o", "text", "output: text or json")
	for _, sub := range []*cobra.Command{grant, revoke, list, seed, migrate} {
		run := sub.RunE
		sub.RunE = func(c *cobra.Command, args []string) error {
			if runF != nil {
				if len(args) == 1 {
					o.file = args[0]
				}
				return runF(o)
			}
			if err := o.loadConfig(); err != nil {
				return err
			}
			return run(c, args)
		}
	}
	c.AddCommand(grant, revoke, list, seed, migrate)
	return c
}

// loadConfig reads --config, if given.
func (o *consentOptions) loadConfig() error {
	if o.config == "" {
		return nil
	}
	cfg, err := o.loadConfigFile(o.config)
	if err != nil {
		return usageError("--config %s: %v", o.config, err)
	}
	o.cfg = cfg
	return nil
}

// idpFor settles the IDP of a grant or revoke: --idp; else the only IDP
// of --config's file; else, with no config, the mock's JWT IDP. Whatever
// is assumed is said on stderr. A config with several IDPs assumes none:
// picking one would put a consent on the wrong users.
func (o *consentOptions) idpFor() (string, error) {
	if o.idp != "" {
		return o.idp, nil
	}
	if o.cfg == nil {
		fmt.Fprintf(o.io.Err, "idtx: --idp not given: using IDP %s\n", mockidp.Name)
		return mockidp.Name, nil
	}
	if len(o.cfg.IDPs) != 1 {
		return "", usageError("--idp is required: %s has %d IDPs (%s)", o.config, len(o.cfg.IDPs), strings.Join(o.idpNames(), ", "))
	}
	name := o.cfg.IDPs[0].Name
	fmt.Fprintf(o.io.Err, "idtx: --idp not given: using IDP %s, the only IDP of %s\n", name, o.config)
	return name, nil
}

// checkIDP refuses an IDP that --config's file does not name, so a typo
// does not store a consent nobody can use. Only what stores a consent
// checks: revoking or listing the consents of an IDP since removed from
// the config must stay possible.
func (o *consentOptions) checkIDP(name string) error {
	if o.cfg == nil || name == "" || slices.Contains(o.idpNames(), name) {
		return nil
	}
	return usageError("IDP %q is not in %s (%s)", name, o.config, strings.Join(o.idpNames(), ", "))
}

func (o *consentOptions) idpNames() []string {
	names := make([]string, len(o.cfg.IDPs))
	for i, d := range o.cfg.IDPs {
		names[i] = d.Name
	}
	return names
}

// withStore runs fn on the store, after warning of consents it keeps from
// an earlier idtx.
func (o *consentOptions) withStore(ctx context.Context, fn func(store.Store) error) error {
	return o.openStore(func(s store.Store) error {
		if err := o.warnLegacy(ctx, s); err != nil {
			return err
		}
		return fn(s)
	})
}

// openStore opens --store, else IDTX_STORE, else --config's store, else
// the default: the order `idtx serve` follows.
func (o *consentOptions) openStore(fn func(store.Store) error) error {
	url, err := o.storeURL()
	if err != nil {
		return err
	}
	s, err := o.openStoreURL(url)
	if err != nil {
		return err
	}
	defer s.Close()
	return fn(s)
}

func (o *consentOptions) storeURL() (string, error) { return pickStore(o.store, o.cfg) }

// absentStore is the path of a SQLite store that does not exist yet, for
// read-only commands to say so instead of creating it; "" otherwise.
func (o *consentOptions) absentStore() string {
	url, err := o.storeURL()
	if err != nil {
		return ""
	}
	path, ok := strings.CutPrefix(url, "sqlite:")
	if !ok || path == "" {
		return ""
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return path
	}
	return ""
}

func (o *consentOptions) warnLegacy(ctx context.Context, s store.Store) error {
	return warnLegacyConsents(ctx, o.io, s)
}

// warnLegacyConsents says on stderr that s keeps consents of an earlier
// idtx, which named no IDP and are never honoured, and how to re-key them.
func warnLegacyConsents(ctx context.Context, io *IO, s store.Store) error {
	ls, ok := s.(store.Legacy)
	if !ok {
		return nil
	}
	legacy, err := ls.LegacyConsents(ctx, consent.Filter{})
	if err != nil {
		return err
	}
	if len(legacy) == 0 {
		return nil
	}
	users := map[string]bool{}
	for _, c := range legacy {
		users[c.User] = true
	}
	fmt.Fprintf(io.Err, "idtx: warning: %d consent(s) of %d user(s) were stored by an earlier idtx without their IDP and are not honoured; "+
		"see them with `idtx consent list` and re-key them with `idtx consent migrate --idp NAME [--user U]`\n", len(legacy), len(users))
	return nil
}
