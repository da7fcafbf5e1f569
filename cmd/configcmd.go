package cmd

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/idtx/idtx/config"
)

func newConfigCmd(io *IO) *cobra.Command {
	c := &cobra.Command{
		Use:   "config",
		Short: "Check server configuration files",
		Args:  noArgs,
	}
	c.AddCommand(&cobra.Command{
		Use:   "validate FILE",
		Short: "Check a config file and summarise it",
		Long: `Check a server config (CONTRACT §6) strictly: an unknown key is an error
naming it and its line, and every problem is reported at once. A valid
config is summarised; problems exit 2.`,
		Example: `  $ idtx config validate sts.yaml`,
		Args:    exactArgs(1, "one FILE"),
		RunE: func(_ *cobra.Command, args []string) error {
			cfg, err := config.LoadFile(args[0])
			var problems config.Problems
			if errors.As(err, &problems) {
				for _, p := range problems {
					fmt.Fprintf(io.Out, "%s: %s\n", safeText(args[0]), safeText(p))
				}
				return usageError("%s: %d problem(s)", args[0], len(problems))
			}
			if err != nil {
				return usageError("%v", err)
			}
			fmt.Fprintf(io.Out, "%s: valid\n%s", args[0], cfg.Summary())
			return nil
		},
	})
	return c
}
