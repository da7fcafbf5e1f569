// Package pgtest gives tests a PostgreSQL database: a fresh database on
// the server IDTX_TEST_POSTGRES names, or on a throwaway cluster it starts
// in a temporary folder of the test process's own (initdb, pg_ctl) and
// stops when the test or the process ends; what a killed process left
// there, the next process to use pgtest removes. A
// test is skipped, saying why, only when neither is possible. It is a
// package of its own so that consent, exchange and cmd tests share it.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDSN names the PostgreSQL server tests use when set.
const EnvDSN = "IDTX_TEST_POSTGRES"

// DSN returns the URL of a new, empty schema, dropped when t ends, on
// Server(t).
func DSN(t testing.TB) string {
	t.Helper()
	return NewDatabase(t, Server(t))
}

// Server is IDTX_TEST_POSTGRES, or else the DSN of a cluster this test
// process shares: started on first use in a folder of its own, and
// stopped when the process exits.
func Server(t testing.TB) string {
	t.Helper()
	if s := os.Getenv(EnvDSN); s != "" {
		return s
	}
	sharedOnce.Do(func() { sharedDSN, sharedErr = startShared(Root()) })
	if sharedErr != nil {
		if errors.Is(sharedErr, errNoPostgres) {
			t.Skipf("%v", sharedErr)
		}
		t.Fatalf("pgtest: %v", sharedErr)
	}
	return sharedDSN
}

var (
	sharedOnce sync.Once
	sharedDSN  string
	sharedErr  error
)

var errNoPostgres = fmt.Errorf("no PostgreSQL: set %s to a server's DSN, or install PostgreSQL (initdb not on PATH nor in /usr/lib/postgresql/*/bin)", EnvDSN)

// Root is the folder pgtest keeps its clusters in: the template cluster
// that initdb made once (kept between runs, since initdb takes seconds
// and a copy does not), and a folder run-PID for each process using it.
func Root() string {
	return filepath.Join(os.TempDir(), fmt.Sprintf("idtx-pgtest-%d", os.Getuid()))
}

// startShared runs postgres as a child that dies with this process
// (Pdeathsig), on a data folder of this process's own under root.
func startShared(root string) (string, error) {
	bin := Bin()
	if bin == "" {
		return "", errNoPostgres
	}
	cred, err := credential()
	if err != nil {
		return "", err
	}
	dir, err := processDir(root, cred)
	if err != nil {
		return "", err
	}
	data := filepath.Join(dir, "data")
	if err := initData(bin, cred, root, data); err != nil {
		return "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	pg := exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1", "-k", dir, "-c", "fsync=off")
	pg.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT}
	log, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		return "", err
	}
	pg.Stdout, pg.Stderr = log, log
	if err := pg.Start(); err != nil {
		return "", fmt.Errorf("postgres: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- pg.Wait() }()
	dsn := fmt.Sprintf("postgres://idtx@127.0.0.1:%d/postgres?sslmode=disable", port)
	for range 600 {
		select {
		case err := <-exited:
			out, _ := os.ReadFile(log.Name())
			return "", fmt.Errorf("postgres exited: %v\n%s", err, out)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, dsn)
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return dsn, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	pg.Process.Kill()
	return "", errors.New("postgres did not accept connections within a minute")
}

// processDirs holds, for each root, the folder run-PID this process owns
// there, and the lock file that says so (open for the life of the
// process: the kernel lets go of the lock however the process ends).
var (
	processDirsMu sync.Mutex
	processDirs   = map[string]string{}
	processLocks  []*os.File
)

// processDir is this process's own folder under root, run-PID, locked
// (flock) for as long as the process lives, so that two processes never
// share a cluster. First it removes what processes that are gone left
// behind (sweep).
func processDir(root string, cred *syscall.Credential) (string, error) {
	processDirsMu.Lock()
	defer processDirsMu.Unlock()
	if dir, ok := processDirs[root]; ok {
		return dir, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err
	}
	if err := chown(root, cred); err != nil {
		return "", err
	}
	sweep(root)
	// Made as claim-PID, locked, and only then renamed: a folder named
	// run-* always has its lock file.
	pid := strconv.Itoa(os.Getpid())
	claim := filepath.Join(root, "claim-"+pid)
	os.RemoveAll(claim)
	if err := os.Mkdir(claim, 0o755); err != nil {
		return "", err
	}
	lock, err := os.Create(filepath.Join(claim, "lock"))
	if err != nil {
		return "", err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return "", fmt.Errorf("lock %s: %w", claim, err)
	}
	dir := filepath.Join(root, "run-"+pid)
	os.RemoveAll(dir) // a process of the same pid that is gone
	if err := os.Rename(claim, dir); err != nil {
		lock.Close()
		return "", err
	}
	if err := chown(dir, cred); err != nil {
		lock.Close()
		return "", err
	}
	processLocks = append(processLocks, lock)
	processDirs[root] = dir
	return dir, nil
}

// sweep removes the folders under root that processes now gone left
// behind, whole or half-made: a run-* folder whose lock nobody holds
// (after stopping any postgres still running in it), a claim-PID folder
// whose process is gone, and a BINARY.test folder of the layout before
// run-* on which no postgres runs.
func sweep(root string) {
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		path := filepath.Join(root, e.Name())
		switch {
		case strings.HasPrefix(e.Name(), "run-"):
			lock, err := os.Open(filepath.Join(path, "lock"))
			if err != nil {
				os.RemoveAll(path)
				continue
			}
			if syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
				stopLeftovers(path)
				os.RemoveAll(path)
			}
			lock.Close()
		case strings.HasPrefix(e.Name(), "claim-"):
			if pid, err := strconv.Atoi(strings.TrimPrefix(e.Name(), "claim-")); err == nil && !alive(pid) {
				os.RemoveAll(path)
			}
		case strings.HasSuffix(e.Name(), ".test"):
			// The folder an earlier pgtest kept per test binary, when no
			// postgres runs on it any more.
			if postmaster(filepath.Join(path, "data")) == 0 {
				os.RemoveAll(path)
			}
		}
	}
}

// stopLeftovers stops any postgres still running on a data folder under
// dir (a Cluster's, started by pg_ctl, outlives a killed test process):
// the pid in its postmaster.pid, if that process is a postgres on that
// folder, gets SIGQUIT (an immediate shutdown).
func stopLeftovers(dir string) {
	files, _ := filepath.Glob(filepath.Join(dir, "*", "postmaster.pid"))
	more, _ := filepath.Glob(filepath.Join(dir, "*", "data", "postmaster.pid"))
	for _, f := range append(files, more...) {
		pid := postmaster(filepath.Dir(f))
		if pid == 0 {
			continue
		}
		syscall.Kill(pid, syscall.SIGQUIT)
		for deadline := time.Now().Add(10 * time.Second); alive(pid) && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// postmaster is the pid of the postgres running on the data folder, or 0.
func postmaster(data string) int {
	text, err := os.ReadFile(filepath.Join(data, "postmaster.pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(text), "\n", 2)[0]))
	if err != nil || pid <= 0 {
		return 0
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), "postgres") || !strings.Contains(string(cmdline), data) {
		return 0
	}
	return pid
}

// alive says whether a process of that pid exists.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// initData makes a new cluster's data folder at data: a copy of a
// template that initdb made once (in root, kept between runs), since
// initdb takes seconds and a copy does not. initdb runs in data's parent
// folder, which the caller owns, so that a killed run leaves nothing
// half-made that another run would take for a template.
func initData(bin string, cred *syscall.Credential, root, data string) error {
	template := filepath.Join(root, "template-"+filepath.Base(filepath.Dir(bin)))
	if _, err := os.Stat(filepath.Join(template, "PG_VERSION")); err != nil {
		if err := os.MkdirAll(root, 0o755); err != nil {
			return err
		}
		if err := chown(root, cred); err != nil {
			return err
		}
		tmp := filepath.Join(filepath.Dir(data), "initdb")
		os.RemoveAll(tmp)
		initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", tmp, "-U", "idtx", "--auth=trust", "-E", "UTF8", "--no-sync")
		initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		if out, err := initdb.CombinedOutput(); err != nil {
			return fmt.Errorf("initdb: %w\n%s", err, out)
		}
		if err := os.Rename(tmp, template); err != nil {
			// Another process may have won the race: either template
			// does. A template without PG_VERSION was not made by a
			// rename here: replace it.
			if _, statErr := os.Stat(filepath.Join(template, "PG_VERSION")); statErr != nil {
				os.RemoveAll(template)
				if err := os.Rename(tmp, template); err != nil {
					return err
				}
			}
			os.RemoveAll(tmp)
		}
	}
	if out, err := exec.Command("cp", "-a", template, data).CombinedOutput(); err != nil {
		return fmt.Errorf("copy the template cluster: %w\n%s", err, out)
	}
	return nil
}

// credential is the user to run PostgreSQL as: nil, or "postgres" when
// this process is root (initdb and postgres refuse to run as root).
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root and no postgres user to run PostgreSQL as; set %s: %w", EnvDSN, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func chown(path string, cred *syscall.Credential) error {
	if cred == nil {
		return nil
	}
	return os.Chown(path, int(cred.Uid), int(cred.Gid))
}

// NewDatabase creates a schema of a random name on server (a DSN) and
// returns a DSN whose search_path is that schema, so that each test has
// tables of its own; the schema is dropped when t ends.
func NewDatabase(t testing.TB, server string) string {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	name := "idtx_test_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		t.Fatalf("pgtest: connect to %s: %v", redact(server), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+name); err != nil {
		t.Fatalf("pgtest: create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, server); err == nil {
			conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+name+" CASCADE")
			conn.Close(ctx)
		}
	})
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("pgtest: %s must be a postgres:// URL", EnvDSN)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}

// Cluster is a throwaway PostgreSQL cluster in a temporary folder,
// listening on a loopback port, owned by a non-root user (initdb refuses
// to run as root).
type Cluster struct {
	t       testing.TB
	bin     string // folder of initdb, pg_ctl
	dir     string
	port    int
	cred    *syscall.Credential // the user to run as, when the test runs as root
	running bool
}

// Bin is the folder holding initdb and pg_ctl, or "" when PostgreSQL is
// not installed: initdb on PATH, else the newest /usr/lib/postgresql/*/bin.
func Bin() string {
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(a))))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(b))))
		return vb - va
	})
	if len(dirs) == 0 {
		return ""
	}
	return filepath.Dir(dirs[0])
}

// Start initialises and starts a cluster of t's own, stopped and removed
// when t ends: for a test that stops and starts the server. It skips t
// when PostgreSQL is not installed.
func Start(t testing.TB) *Cluster {
	t.Helper()
	bin := Bin()
	if bin == "" {
		t.Skip(errNoPostgres)
	}
	cred, err := credential()
	if err != nil {
		t.Skip(err)
	}
	c := &Cluster{t: t, bin: bin, cred: cred}
	// Under this process's folder, so that if the process is killed the
	// next run stops this server and removes its folder (sweep).
	parent, err := processDir(Root(), cred)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	dir, err := os.MkdirTemp(parent, "cluster-")
	if err != nil {
		t.Fatal(err)
	}
	c.dir = dir
	t.Cleanup(func() {
		c.stop("immediate")
		os.RemoveAll(dir)
	})
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := chown(dir, cred); err != nil {
		t.Fatal(err)
	}
	if err := initData(bin, cred, Root(), c.data()); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	c.port = freePort(t)
	c.StartAgain()
	return c
}

func (c *Cluster) data() string { return filepath.Join(c.dir, "data") }

// DSN is the URL of the cluster's postgres database.
func (c *Cluster) DSN() string {
	return fmt.Sprintf("postgres://idtx@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

// Stop stops the server (fast shutdown: sessions are cut), keeping its data.
func (c *Cluster) Stop() {
	c.t.Helper()
	if err := c.stop("fast"); err != nil {
		c.t.Fatalf("pgtest: stop: %v", err)
	}
}

// StartAgain starts the server on the same port and waits until it
// accepts connections.
func (c *Cluster) StartAgain() {
	c.t.Helper()
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -k %s", c.port, c.dir)
	if out, err := c.run("pg_ctl", "-D", c.data(), "-l", filepath.Join(c.dir, "log"), "-o", opts, "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "log"))
		c.t.Fatalf("pgtest: pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	c.running = true
}

func (c *Cluster) stop(mode string) error {
	if !c.running {
		return nil
	}
	c.running = false
	out, err := c.run("pg_ctl", "-D", c.data(), "-m", mode, "-w", "-t", "60", "stop")
	if err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	return nil
}

func (c *Cluster) run(name string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(c.bin, name), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	cmd.Dir = c.dir
	return cmd.CombinedOutput()
}

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// redact drops a password from a DSN for messages.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "the server"
	}
	return u.Redacted()
}
