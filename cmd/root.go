// Package cmd is idtx's command line: flags, reading inputs, printing and
// exit codes. Protocol logic lives in exchange, idp and consent.
package cmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/idtx/idtx/stsclient"
)

// Exit codes (docs/cli.md).
const (
	ExitOK          = 0
	ExitFailure     = 1
	ExitUsage       = 2
	ExitRejected    = 3
	ExitUnreachable = 4
	ExitRetry       = 5
)

// exitError carries an exit code with the error to print.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageError(format string, args ...any) error {
	return &exitError{ExitUsage, fmt.Errorf(format, args...)}
}

func rejectedError(err error) error    { return &exitError{ExitRejected, err} }
func unreachableError(err error) error { return &exitError{ExitUnreachable, err} }

// Main runs idtx with os.Args and returns the exit code.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, os.Args[1:], &IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
}

// Run runs idtx with args and returns the exit code.
func Run(ctx context.Context, args []string, io *IO) int {
	root := NewRoot(io)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintf(io.Err, "idtx: %s\n", errorText(err))
	code := exitCode(err)
	if code == ExitRetry {
		if _, after := stsclient.Retryable(err); after > 0 {
			fmt.Fprintf(io.Err, "idtx: try again later: the STS asks to wait %s (Retry-After)\n", after)
		} else {
			fmt.Fprintln(io.Err, "idtx: try again later (the STS sent no Retry-After)")
		}
	}
	return code
}

// exitCode maps an error to its exit code (docs/cli.md), the one place
// that does. An STS answer that says to come back later (503, 429,
// temporarily_unavailable, slow_down) is ExitRetry whatever the command
// made of it, so a script can tell "try again" from "no".
func exitCode(err error) int {
	var ee *exitError
	switch retry, _ := stsclient.Retryable(err); {
	case retry:
		return ExitRetry
	case errors.As(err, &ee):
		return ee.code
	case isCobraUsage(err):
		return ExitUsage
	}
	return ExitFailure
}

// isCobraUsage recognises the usage errors cobra makes itself (unknown
// command, wrong argument count), which carry no type.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "accepts ", "requires at least", "requires at most", "unknown flag", "unknown shorthand", "invalid argument", "flag needs an argument", "required flag"} {
		if strings.HasPrefix(msg, p) || strings.Contains(msg, "required flag(s)") {
			return true
		}
	}
	return false
}

// NewRoot builds the command tree, its commands reading and writing io.
func NewRoot(io *IO) *cobra.Command { return newRoot(newFactory(io)) }

// newRoot builds the command tree on f's plumbing.
func newRoot(f *Factory) *cobra.Command {
	io := f.IO
	root := &cobra.Command{
		Use:   "idtx",
		Short: "Token exchange (RFC 8693): a client for any STS, and a local STS that really validates",
		Long: `idtx exchanges tokens the RFC 8693 way. It is a client for any Security
Token Service, a local STS that validates JWT subject tokens from trusted
identity providers, and the tools to see why an exchange failed.`,
		Example: `  $ idtx serve --mock
  $ idtx mock token --sub alice
  $ idtx consent grant --user bob --service billing-api --scope billing:read`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       buildVersion().Version,
	}
	root.SetVersionTemplate(buildVersion().String())
	root.SetIn(io.In)
	root.SetOut(io.Out)
	root.SetErr(io.Err)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError("%v (see '%s --help')", err, c.CommandPath())
	})
	root.AddCommand(
		newServeCmd(f, nil),
		newHealthcheckCmd(f, nil),
		newExchangeCmd(f, nil),
		newInspectCmd(f, nil),
		newIntrospectCmd(f, nil),
		newProfileCmd(f, nil),
		newMockCmd(f),
		newConsentCmd(f, nil),
		newKeysCmd(f, nil),
		newConfigCmd(f),
		newExplainCmd(f, nil),
		newWalkCmd(f, nil),
		newSecretCmd(f),
		newVersionCmd(f, nil),
	)
	return root
}
