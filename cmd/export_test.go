package cmd

import (
	"context"
	"io"
	"strings"
	"time"
)

// StartServe runs `idtx serve args...` in this process on a free loopback
// port, keeping its key in home, and returns its base URL and a stop.
func StartServe(home string, args ...string) (string, func() error, error) {
	return startServeTo(io.Discard, home, args...)
}

// startServeTo is StartServe with the server's stderr sent to stderr.
func startServeTo(stderr io.Writer, home string, args ...string) (string, func() error, error) {
	ready := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	c := newServeCmd(newFactory(&IO{In: strings.NewReader(""), Out: io.Discard, Err: stderr}), func(o *serveOptions) error {
		o.ready = func(base string) { ready <- base }
		o.home = home
		return runServe(ctx, o)
	})
	c.SetArgs(append([]string{"--listen", "127.0.0.1:0"}, args...))
	c.SilenceErrors, c.SilenceUsage = true, true
	done := make(chan error, 1)
	go func() { done <- c.ExecuteContext(ctx) }()
	stop := func() error { cancel(); return <-done }
	select {
	case base := <-ready:
		return base, stop, nil
	case err := <-done:
		cancel()
		return "", nil, err
	case <-time.After(10 * time.Second):
		cancel()
		return "", nil, context.DeadlineExceeded
	}
}
