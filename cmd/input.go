package cmd

import (
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
)

// maxInput caps a token or secret read from stdin or a file.
const maxInput = 1 << 20

// readValue resolves a token or secret argument (docs/cli.md): "-" reads
// stdin, "@path" reads a file, anything else is the value itself.
// Surrounding white space, such as a trailing newline, is dropped.
func readValue(arg string, stdin io.Reader) (string, error) {
	var data []byte
	var err error
	switch {
	case arg == "-":
		data, err = io.ReadAll(io.LimitReader(stdin, maxInput+1))
		if err != nil {
			return "", usageError("read stdin: %v", err)
		}
	case strings.HasPrefix(arg, "@"):
		f, ferr := os.Open(arg[1:])
		if ferr != nil {
			return "", usageError("%v", ferr)
		}
		defer f.Close()
		data, err = io.ReadAll(io.LimitReader(f, maxInput+1))
		if err != nil {
			return "", usageError("read %s: %v", arg[1:], err)
		}
	default:
		return arg, nil
	}
	if len(data) > maxInput {
		return "", usageError("input is larger than %d bytes", maxInput)
	}
	v := strings.TrimSpace(string(data))
	if v == "" {
		return "", usageError("input %s is empty", arg)
	}
	return v, nil
}

// exactArgs wants n positional arguments, else a usage error.
func exactArgs(n int, what string) func(*cobra.Command, []string) error {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError("expected %s, got %d argument(s)", what, len(args))
		}
		return nil
	}
}

// noArgs refuses positional arguments as a usage error.
func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError("unexpected argument %q", args[0])
	}
	return nil
}

func absPath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(abs); err != nil {
		return "", err
	}
	return abs, nil
}
