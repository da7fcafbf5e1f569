package cmd

import (
	"context"
	"errors"
	"os"
	"strings"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
	"github.com/spf13/cobra"

	"github.com/idtx/idtx/tui"
)

type walkOptions struct {
	explainOptions
	// run, if set, replaces running the program (tests).
	run func(m tea.Model) error
}

// newWalkCmd is `idtx walk`; runF, when set, runs instead of the walk
// once the flags are parsed (tests; one that sets o.run and calls runWalk
// gets the model instead of a terminal).
func newWalkCmd(f *Factory, runF func(*walkOptions) error) *cobra.Command {
	o := &walkOptions{explainOptions: explainOptions{req: exchangeOptions{io: f.IO, httpClient: f.HTTPClient}, loadConfigFile: f.LoadConfig, openStoreURL: f.OpenStore}}
	c := &cobra.Command{
		Use:   "walk --subject-token T [flags] | walk --sts URL",
		Short: "Walk the exchange flowchart step by step in the terminal",
		Long: `A terminal UI over the STS's own flowchart: the nine steps with a mark
each, the selected step's reason and evidence beside them. It takes the
flags of 'idtx explain' and runs offline: n runs the next step, r all of
them, e edits the request, c grants a missing consent in the store (after
y/n), t shows the decoded tokens, ? the keys, q quits. Each step runs
in the background, a spinner beside it: a slow IDP never freezes the
screen, and q or Ctrl-C quit at once, cancelling the step in progress.

With --sts it lists a running idtx STS's exchanges as they arrive
(GET /traces) and opens any one as a flowchart. The list keeps the newest
500 exchanges and at most 16 MiB of their text; older ones leave it.
Everything a trace says is shown escaped (docs/security.md).

It needs a terminal on stdin and stdout; 'idtx explain' prints the same
trace as text or JSON anywhere (docs/explain.md).`,
		Example: `  $ idtx walk --subject-token "$(idtx mock token --sub bob)" --audience billing-api --scope billing:read
  $ idtx walk --config sts.yaml --client-id api --client-secret-file secret.txt --subject-token @t.jwt --audience orders-api
  $ idtx walk --sts http://127.0.0.1:8080`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(o)
			}
			return runWalk(c, o)
		},
	}
	fs := c.Flags()
	o.req.addRequestFlags(fs)
	fs.StringVar(&o.configFile, "config", "", "server config file (YAML) (default: the mock's)")
	addStoreFlag(fs, &o.store, "c grants in it; one that does not exist is not created")
	fs.StringVar(&o.at, "at", "", "evaluate at this RFC 3339 instant instead of now")
	fs.StringVar(&o.sts, "sts", "", "list the exchanges of a running idtx STS instead (default IDTX_STS when no request is given)")
	fs.StringVar(&o.cacert, "cacert", "", "with --sts: PEM file of CA certificates to trust")
	registerTokenTypeCompletion(c, "subject-token-type", "actor-token-type", "requested-token-type")
	completeWords(c, authMethods, "auth-method")
	return c
}

func runWalk(c *cobra.Command, o *walkOptions) error {
	io := o.req.io
	if o.run == nil && !(io.InIsTerminal() && io.OutIsTerminal()) {
		return usageError("walk needs a terminal on stdin and stdout; 'idtx explain' (same flags) prints the same trace as text or -o json")
	}
	var model tea.Model
	if o.req.subjectToken == "" && o.configFile == "" && o.at == "" {
		// No request to walk: IDTX_STS names an STS to watch, as it names
		// the STS of every client command.
		o.sts, _ = chooseSTS(o.sts, c.Flags().Changed("sts"), os.Getenv, "")
	}
	if o.sts != "" {
		if o.req.subjectToken != "" || o.configFile != "" || o.at != "" {
			return usageError("--sts lists the STS's own exchanges: it takes no request, --config or --at")
		}
		auth, err := o.req.traceAuth(c)
		if err != nil {
			return err
		}
		client, err := o.req.httpClient(o.cacert)
		if err != nil {
			return err
		}
		model = tui.NewLive(c.Context(), strings.TrimSuffix(o.sts, "/"), client, auth)
	} else {
		// The notes of openLocal go to the status line, not under the UI.
		var notes strings.Builder
		local, err := openLocal(c.Context(), o.loadConfigFile, o.openStoreURL, o.configFile, o.store, o.at, &notes)
		if err != nil {
			return err
		}
		defer local.store.Close()
		params, err := o.req.requestParams()
		if err != nil {
			return err
		}
		auth, _, err := o.req.clientAuth(c, local.mock)
		if err != nil {
			return err
		}
		note := strings.ReplaceAll(strings.TrimSpace(notes.String()), "\n", "; ")
		note = strings.ReplaceAll(note, "idtx: ", "")
		model = tui.New(tui.Options{Engine: local.engine, Consents: local.store, Params: params, Auth: auth, Note: note, Context: c.Context()})
	}
	if o.run != nil {
		return o.run(model)
	}
	if envSet("NO_COLOR") || os.Getenv("TERM") == "dumb" {
		lipgloss.SetColorProfile(termenv.Ascii)
	}
	return runProgram(c.Context(), tea.NewProgram(model, tea.WithAltScreen(), tea.WithInput(io.In), tea.WithOutput(io.Out), tea.WithContext(c.Context())))
}

// runProgram runs the walk's program. A panic in it is an error, so that
// the command exits non-zero (bubbletea restores the terminal, prints the
// panic and reports the program killed); a signal that ends the program
// is not.
func runProgram(ctx context.Context, p *tea.Program) error {
	_, err := p.Run()
	switch {
	case err == nil:
		return nil
	case errors.Is(err, tea.ErrProgramPanic):
		return errors.New("walk: the terminal UI crashed (a bug in idtx): see the panic above")
	case errors.Is(err, tea.ErrProgramKilled) || ctx.Err() != nil:
		return nil // a signal (SIGINT, SIGTERM) ended it
	}
	return err
}
