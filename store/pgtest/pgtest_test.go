package pgtest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
)

// childRoot, set in the environment, makes TestChildUsesServer the child
// process of TestTwoProcessesAtOnce, using the cluster folder it names.
const childRoot = "IDTX_PGTEST_CHILD_ROOT"

// TestTwoProcessesAtOnce runs two processes that each start the shared
// cluster under one root at the same moment: both get a server of their
// own and use it. Beforehand the root holds what killed runs leave
// behind: a half-made run folder (PG_VERSION and nothing else, its lock
// free), a claim folder of a gone process, a folder of the layout before
// run-*, and a template without PG_VERSION. They are recovered: removed or replaced.
func TestTwoProcessesAtOnce(t *testing.T) {
	if os.Getenv(childRoot) != "" {
		t.Skip("in the child")
	}
	bin := Bin()
	if bin == "" {
		t.Skip(errNoPostgres)
	}
	root := filepath.Join(t.TempDir(), "pg")
	for d := filepath.Dir(root); d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755) // postgres, when we are root, must reach root
	}
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	deadPID := gone.ProcessState.Pid()
	halfMade := filepath.Join(root, "run-999999999")
	claim := filepath.Join(root, "claim-"+strconv.Itoa(deadPID))
	legacy := filepath.Join(root, "consent.test") // the layout before run-*
	badTemplate := filepath.Join(root, "template-"+filepath.Base(filepath.Dir(bin)))
	for _, d := range []string{filepath.Join(halfMade, "data"), claim, filepath.Join(legacy, "data"), badTemplate} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(halfMade, "lock"), nil, 0o644)
	os.WriteFile(filepath.Join(halfMade, "data", "PG_VERSION"), []byte("15\n"), 0o644)
	os.WriteFile(filepath.Join(badTemplate, "postgresql.conf"), []byte("half"), 0o644)

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	outs := make([]string, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() {
			c := exec.Command(self, "-test.run=^TestChildUsesServer$", "-test.v", "-test.count=1")
			c.Env = append(os.Environ(), childRoot+"="+root, EnvDSN+"=")
			out, err := c.CombinedOutput()
			outs[i], errs[i] = string(out), err
		})
	}
	wg.Wait()
	for i := range 2 {
		if errs[i] != nil || !strings.Contains(outs[i], "pgtest child: served") {
			t.Fatalf("child %d: %v\n%s", i+1, errs[i], outs[i])
		}
	}
	if outs[0] == outs[1] {
		t.Fatalf("both children report the same server:\n%s", outs[0])
	}
	for _, d := range []string{halfMade, claim, legacy} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s is still there (%v)", d, err)
		}
	}
	if _, err := os.Stat(filepath.Join(badTemplate, "PG_VERSION")); err != nil {
		t.Errorf("the half-made template was not replaced: %v", err)
	}
	// The children are gone: the next sweep removes their folders.
	runs, _ := filepath.Glob(filepath.Join(root, "run-*"))
	if len(runs) != 2 {
		t.Fatalf("run folders after the children: %v, want 2", runs)
	}
	sweep(root)
	if runs, _ := filepath.Glob(filepath.Join(root, "run-*")); len(runs) != 0 {
		t.Fatalf("run folders after a sweep: %v, want none", runs)
	}
}

// TestChildUsesServer is the child of TestTwoProcessesAtOnce: it starts
// the shared cluster under $IDTX_PGTEST_CHILD_ROOT and writes to it.
func TestChildUsesServer(t *testing.T) {
	root := os.Getenv(childRoot)
	if root == "" {
		t.Skip("run by TestTwoProcessesAtOnce")
	}
	dsn, err := startShared(root)
	if err != nil {
		t.Fatal(err)
	}
	db := NewDatabase(t, dsn)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE TABLE t (n int); INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT n FROM t").Scan(&n); err != nil || n != 1 {
		t.Fatalf("read back %d, %v", n, err)
	}
	t.Logf("pgtest child: served by %s in %s", redact(dsn), processDirs[root])
}
