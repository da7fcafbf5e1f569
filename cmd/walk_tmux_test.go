package cmd_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWalkTmux drives the real binary in a real terminal: tmux runs `idtx
// walk` in an 80×24 pane, keys go in with send-keys, and the screen comes
// back with capture-pane. Skipped without tmux (.ci/run installs it).
func TestWalkTmux(t *testing.T) {
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		t.Skip("tmux is not installed")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "idtx")
	build := exec.Command("go", "build", "-o", bin, "github.com/idtx/idtx")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	home := filepath.Join(dir, "home")
	env := append(os.Environ(), "IDTX_HOME="+home, "NO_COLOR=1", "TERM=xterm-256color", "TMUX=")
	token, err := exec.Command(bin, "mock", "token", "--sub", "bob").Output()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "bob.jwt"), token, 0o600)

	session := "idtx-walk-" + strings.ReplaceAll(t.Name(), "/", "-")
	socket := filepath.Join(dir, "tmux.sock")
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(tmux, append([]string{"-S", socket}, args...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	walk := bin + " walk --subject-token @" + filepath.Join(dir, "bob.jwt") + " --audience billing-api --scope billing:read; exec cat >/dev/null" // cat keeps the pane open after walk exits, until kill-server
	run("new-session", "-d", "-s", session, "-x", "80", "-y", "24", walk)
	defer exec.Command(tmux, "-S", socket, "kill-server").Run()

	screen := func(want string) string {
		t.Helper()
		var got string
		for range 100 { // the program starts, and redraws, at its own pace
			got = run("capture-pane", "-p", "-t", session)
			if strings.Contains(got, want) {
				return got
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("screen never showed %q:\n%s", want, got)
		return ""
	}
	screen("refused: consent_required")
	screen("> ✗ 7 consent")
	run("send-keys", "-t", session, "c")
	screen("grant bob of IDP mock: billing-api billing:read in the store? y/n")
	run("send-keys", "-t", session, "y")
	screen("accepted")
	run("send-keys", "-t", session, "?")
	screen("run the next step only")
	run("send-keys", "-t", session, "q")
	for range 100 {
		if !strings.Contains(run("capture-pane", "-p", "-t", session), "run the next step only") {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("q did not quit")
}
