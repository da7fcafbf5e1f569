package cmd

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/idtx/idtx/consent"
)

type consentOptions struct {
	io      *IO
	store   string
	user    string
	service string
	scope   string
	output  string
}

func newConsentCmd(io *IO) *cobra.Command {
	o := &consentOptions{io: io}
	c := &cobra.Command{
		Use:   "consent",
		Short: "Manage stored consents",
		Long: `Manage the consents the STS checks (CONTRACT §4 step 7): which scopes a
user lets a service have. The exchange never asks; it only looks here. A
running server sees a change at its next request.`,
		Args: noArgs,
	}
	c.PersistentFlags().StringVar(&o.store, "store", "", "consent store URL: sqlite:PATH or memory: (default IDTX_STORE or IDTX_HOME/idtx.db)")

	grant := &cobra.Command{
		Use:     "grant --user U --service S --scope \"a b\"",
		Short:   "Record a user's consent to a service's scopes",
		Example: `  $ idtx consent grant --user bob --service billing-api --scope billing:read`,
		Args:    noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			scopes := strings.Fields(o.scope)
			if o.user == "" || o.service == "" || len(scopes) == 0 {
				return usageError("grant needs --user, --service and --scope")
			}
			return o.withStore(func(s consent.Store) error {
				if err := s.Grant(c.Context(), o.user, o.service, scopes); err != nil {
					return err
				}
				fmt.Fprintf(o.io.Err, "granted %s: %s %s\n", o.user, o.service, strings.Join(scopes, " "))
				return nil
			})
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke --user U --service S [--scope \"a b\"]",
		Short: "Withdraw consent to some scopes, or to all of a service's",
		Example: `  $ idtx consent revoke --user bob --service billing-api --scope billing:write
  $ idtx consent revoke --user bob --service billing-api`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if o.user == "" || o.service == "" {
				return usageError("revoke needs --user and --service")
			}
			scopes := strings.Fields(o.scope)
			return o.withStore(func(s consent.Store) error {
				if err := s.Revoke(c.Context(), o.user, o.service, scopes); err != nil {
					return err
				}
				what := strings.Join(scopes, " ")
				if what == "" {
					what = "all scopes"
				}
				fmt.Fprintf(o.io.Err, "revoked %s: %s %s\n", o.user, o.service, what)
				return nil
			})
		},
	}
	list := &cobra.Command{
		Use:   "list [--user U] [--service S] [-o text|json]",
		Short: "List stored consents",
		Example: `  $ idtx consent list
  $ idtx consent list --user alice -o json`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if o.output != "text" && o.output != "json" {
				return usageError("-o must be text or json, not %q", o.output)
			}
			return o.withStore(func(s consent.Store) error {
				list, err := s.List(c.Context(), consent.Filter{User: o.user, Service: o.service})
				if err != nil {
					return err
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
				fmt.Fprintln(tw, "USER\tSERVICE\tSCOPES")
				for _, cn := range list {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", cn.User, cn.Service, strings.Join(cn.Scopes, " "))
				}
				return tw.Flush()
			})
		},
	}
	seed := &cobra.Command{
		Use:   "seed FILE",
		Short: "Grant every consent in a YAML or JSON file",
		Long:  "Grant every consent listed in FILE, a YAML or JSON list of {user, service, scopes}. Seeding twice changes nothing.",
		Example: `  $ cat consents.yaml
  - user: alice
    service: billing-api
    scopes: [billing:read]
  $ idtx consent seed consents.yaml`,
		Args: exactArgs(1, "one FILE"),
		RunE: func(c *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return usageError("%v", err)
			}
			list, err := consent.ParseSeed(data)
			if err != nil {
				return usageError("%s: %v", args[0], err)
			}
			return o.withStore(func(s consent.Store) error {
				if err := consent.Seed(c.Context(), s, list); err != nil {
					return err
				}
				fmt.Fprintf(o.io.Err, "seeded %d consent(s)\n", len(list))
				return nil
			})
		},
	}
	for _, sub := range []*cobra.Command{grant, revoke, list} {
		sub.Flags().StringVar(&o.user, "user", "", "user (the subject token's sub)")
		sub.Flags().StringVar(&o.service, "service", "", "service name")
	}
	grant.Flags().StringVar(&o.scope, "scope", "", "space-separated scopes")
	revoke.Flags().StringVar(&o.scope, "scope", "", "space-separated scopes (default: all)")
	list.Flags().StringVarP(&o.output, "output", "o", "text", "output: text or json")
	c.AddCommand(grant, revoke, list, seed)
	return c
}

func (o *consentOptions) withStore(fn func(consent.Store) error) error {
	url := o.store
	if url == "" {
		var err error
		if url, err = consent.DefaultURL(); err != nil {
			return err
		}
	}
	s, err := consent.Open(url)
	if err != nil {
		return err
	}
	defer s.Close()
	return fn(s)
}
