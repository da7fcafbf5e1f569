package cmd

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Version is set at build time with -ldflags "-X github.com/idtx/idtx/cmd.Version=v1.2.3".
var Version = ""

func newVersionCmd(io *IO) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print idtx's version",
		Example: "  $ idtx version",
		Args:    noArgs,
		Run: func(*cobra.Command, []string) {
			v := Version
			if v == "" {
				v = "(devel)"
				if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
					v = bi.Main.Version
				}
			}
			fmt.Fprintf(io.Out, "idtx %s\n", v)
		},
	}
}
