package cmd

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// Version is set at build time with -ldflags "-X github.com/idtx/idtx/cmd.Version=v1.2.3".
var Version = ""

// versionInfo is what `idtx version` prints.
type versionInfo struct {
	Version  string `json:"version"`
	Revision string `json:"revision,omitempty"`
	Time     string `json:"time,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
}

// buildVersion reads the module version (set by go install) and the VCS
// stamp (set by go build in a checkout) from the binary's build info.
func buildVersion() versionInfo {
	v := versionInfo{Version: Version, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if ok {
		if v.Version == "" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Revision = s.Value
			case "vcs.time":
				v.Time = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	if v.Version == "" {
		v.Version = "(devel)"
	}
	return v
}

func (v versionInfo) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "idtx %s", v.Version)
	if v.Revision != "" {
		rev := v.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		fmt.Fprintf(&b, " (%s", rev)
		if v.Modified {
			b.WriteString(", modified")
		}
		if v.Time != "" {
			fmt.Fprintf(&b, ", %s", v.Time)
		}
		b.WriteString(")")
	}
	fmt.Fprintf(&b, " %s %s\n", v.Go, v.Platform)
	return b.String()
}

type versionOptions struct {
	io     *IO
	output string
}

// newVersionCmd is `idtx version`; runF, when set, runs instead of the
// printing once the flags are parsed (tests).
func newVersionCmd(f *Factory, runF func(*versionOptions) error) *cobra.Command {
	o := &versionOptions{io: f.IO}
	c := &cobra.Command{
		Use:   "version [-o text|json]",
		Short: "Print idtx's version, VCS revision and Go version",
		Long: `Print the module version (set by 'go install ...@version'), the VCS
revision and commit time (set by 'go build' in a checkout), and the Go
version and platform that built this binary. 'idtx --version' prints the
same line.`,
		Example: "  $ idtx version\n  $ idtx version -o json",
		Args:    noArgs,
		RunE: func(*cobra.Command, []string) error {
			if runF != nil {
				return runF(o)
			}
			return runVersion(o)
		},
	}
	c.Flags().StringVarP(&o.output, "output", "o", "text", "output: text or json")
	completeWords(c, []string{"text", "json"}, "output")
	return c
}

func runVersion(o *versionOptions) error {
	v := buildVersion()
	switch o.output {
	case "json":
		return writeJSON(o.io, v)
	case "text":
		fmt.Fprint(o.io.Out, v)
		return nil
	}
	return usageError("-o must be text or json, not %q", o.output)
}
