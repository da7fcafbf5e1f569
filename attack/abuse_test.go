package attack

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The server's limits the abuse tests hold it to: cmd/serve.go sets the
// timeouts on its http.Server, and rssLimit is the memory bound.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	closeSlack        = 3 * time.Second // scheduling on a busy 2-core machine
	rssLimit          = 512 << 20
)

// rssWatch samples a server's resident set while an abuse runs.
type rssWatch struct {
	srv  *server
	max  atomic.Int64
	stop chan struct{}
	done chan struct{}
}

func watchRSS(s *server) *rssWatch {
	w := &rssWatch{srv: s, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			if n, err := s.rssBytes(); err == nil && n > w.max.Load() {
				w.max.Store(n)
			}
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

// check ends the sampling and asserts that the peak sampled (VmRSS) and
// the kernel's high-water mark (VmHWM, which no sampling can miss) stayed
// under rssLimit.
func (w *rssWatch) check(t testing.TB) {
	t.Helper()
	close(w.stop)
	<-w.done
	if n, err := w.srv.rssBytes(); err == nil && n > w.max.Load() {
		w.max.Store(n)
	}
	peak := w.max.Load()
	hwm, err := w.srv.hwmBytes()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("peak RSS %d MiB sampled, VmHWM %d MiB", peak>>20, hwm>>20)
	if peak >= rssLimit || hwm >= rssLimit {
		t.Errorf("peak RSS %d MiB sampled, VmHWM %d MiB; want both under %d MiB", peak>>20, hwm>>20, rssLimit>>20)
	}
}

// stillServing checks, after an abuse, that /healthz answers (within the
// health client's 2s timeout; the latency is logged, not asserted) and
// that a valid exchange succeeds.
func stillServing(t testing.TB, e *env, after string) {
	t.Helper()
	d, err := e.srv.healthz()
	if err != nil {
		t.Fatalf("after %s: /healthz: %v", after, err)
	}
	t.Logf("after %s: /healthz answered in %s", after, d.Round(time.Microsecond))
	start := time.Now()
	e.srv.mustExchange(t, exchangeForm(e.corp.sign(t, claims(nil), nil)))
	t.Logf("after %s: a valid exchange answered in %s", after, time.Since(start).Round(time.Microsecond))
}

func (s *server) hostPort(t testing.TB) string {
	t.Helper()
	return strings.TrimPrefix(s.URL, "http://")
}

const demoBasic = "Authorization: Basic ZGVtby1jbGllbnQ6ZGVtby1zZWNyZXQ=\r\n" // demo-client:demo-secret

// TestAbuseIdleConnections holds 1,000 idle TCP connections open and
// checks the server still answers others.
func TestAbuseIdleConnections(t *testing.T) {
	e := newEnv(t)
	w := watchRSS(e.srv)
	conns := make([]net.Conn, 0, 1000)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 1000 {
		c, err := net.DialTimeout("tcp", e.srv.hostPort(t), 2*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", len(conns)+1, err)
		}
		conns = append(conns, c)
	}
	// The server has accepted them all: each is an open descriptor.
	for deadline := time.Now().Add(5 * time.Second); ; {
		n, err := openFiles(e.srv.PID)
		if err != nil {
			t.Fatal(err)
		}
		if n >= len(conns) {
			t.Logf("server holds %d open descriptors", n)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server holds %d open descriptors, want at least %d", n, len(conns))
		}
		time.Sleep(50 * time.Millisecond)
	}
	stillServing(t, e, "1,000 idle connections")
	w.check(t)
}

// openFiles counts a process's open file descriptors.
func openFiles(pid int) (int, error) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(fds), err
}

// rawPost sends a request line and headers on a fresh connection, then
// whatever body writes, and returns the response the server sent.
func rawPost(t testing.TB, s *server, headers string, body func(io.Writer)) (*http.Response, []byte) {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.hostPort(t), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, "POST /token HTTP/1.1\r\nHost: "+s.hostPort(t)+"\r\n"+headers+"\r\n"); err != nil {
		t.Fatal(err)
	}
	// The server answers as soon as the cap is hit; the rest of the body
	// meets a closed connection, which is the point.
	go body(c)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, raw
}

// TestAbuseHugeBodies sends 10 MB bodies, with a length and chunked, and
// a header block over the server's cap.
func TestAbuseHugeBodies(t *testing.T) {
	e := newEnv(t)
	w := watchRSS(e.srv)
	const size = 10 << 20
	chunk := []byte(strings.Repeat("a", 64<<10))
	form := "Content-Type: application/x-www-form-urlencoded\r\n" + demoBasic

	t.Run("10 MB with Content-Length", func(t *testing.T) {
		resp, raw := rawPost(t, e.srv, form+fmt.Sprintf("Content-Length: %d\r\n", size), func(w io.Writer) {
			for sent := 0; sent < size; sent += len(chunk) {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		})
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(raw), `"error":"invalid_request"`) || !strings.Contains(string(raw), "request body exceeds 65536 bytes") {
			t.Fatalf("got %s %s, want 400 invalid_request: request body exceeds 65536 bytes", resp.Status, raw)
		}
	})
	t.Run("10 MB chunked", func(t *testing.T) {
		resp, raw := rawPost(t, e.srv, form+"Transfer-Encoding: chunked\r\n", func(w io.Writer) {
			for sent := 0; sent < size; sent += len(chunk) {
				if _, err := fmt.Fprintf(w, "%x\r\n%s\r\n", len(chunk), chunk); err != nil {
					return
				}
			}
			io.WriteString(w, "0\r\n\r\n")
		})
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(raw), "request body exceeds 65536 bytes") {
			t.Fatalf("got %s %s, want 400 invalid_request: request body exceeds 65536 bytes", resp.Status, raw)
		}
	})
	t.Run("64 KB of headers", func(t *testing.T) {
		resp, _ := rawPost(t, e.srv, form+"X-Pad: "+strings.Repeat("h", 64<<10)+"\r\nContent-Length: 0\r\n", func(io.Writer) {})
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("got %s, want 431", resp.Status)
		}
	})
	stillServing(t, e, "10 MB bodies")
	w.check(t)
}

// slowClient sends start at once, then one byte of more a second, until
// the server closes the connection; it returns how long that took and
// what the server sent.
func slowClient(s *server, start, more string) (time.Duration, string, error) {
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(s.URL, "http://"), 2*time.Second)
	if err != nil {
		return 0, "", err
	}
	defer c.Close()
	began := time.Now()
	c.SetReadDeadline(began.Add(readTimeout + 2*closeSlack))
	closed := make(chan struct{})
	var got []byte
	go func() {
		got, _ = io.ReadAll(c) // until the server closes, or the deadline
		close(closed)
	}()
	io.WriteString(c, start)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-closed:
			return time.Since(began), string(got), nil
		case <-tick.C:
			c.Write([]byte{more[i%len(more)]})
		}
	}
}

// TestAbuseSlowClients sends headers, and then a body, at one byte a
// second from 50 connections each, and checks the server closes them
// within its ReadHeaderTimeout and ReadTimeout, and serves others
// meanwhile.
func TestAbuseSlowClients(t *testing.T) {
	e := newEnv(t)
	w := watchRSS(e.srv)
	type result struct {
		kind  string
		took  time.Duration
		reply string
		err   error
	}
	const perKind = 50
	results := make(chan result, 2*perKind)
	var wg sync.WaitGroup
	body := "Content-Type: application/x-www-form-urlencoded\r\n" + demoBasic + "Content-Length: 1000\r\n\r\n"
	for range perKind {
		wg.Go(func() {
			took, reply, err := slowClient(e.srv, "POST /token HTTP/1.1\r\nX-Slow: ", "abcdefgh")
			results <- result{"headers", took, reply, err}
		})
		wg.Go(func() {
			took, reply, err := slowClient(e.srv, "POST /token HTTP/1.1\r\nHost: idtx\r\n"+body, "grant_type=x&")
			results <- result{"body", took, reply, err}
		})
	}
	// Meanwhile, once it holds every slow connection, the server answers others.
	waitFor(t, 10*time.Second, "the server to hold every slow connection", func() bool {
		n, err := openFiles(e.srv.PID)
		return err == nil && n >= 2*perKind
	})
	stillServing(t, e, "slow clients started")
	wg.Wait()
	close(results)
	worst := map[string]time.Duration{}
	replies := map[string]string{}
	for r := range results {
		if r.err != nil {
			t.Fatalf("slow %s client: %v", r.kind, r.err)
		}
		limit := readHeaderTimeout
		if r.kind == "body" {
			limit = readTimeout
		}
		if r.took > limit+closeSlack {
			t.Errorf("slow %s client held its connection %s; the server's limit is %s", r.kind, r.took.Round(time.Millisecond), limit)
		}
		if r.kind == "body" && r.reply != "" && !strings.Contains(r.reply, "request body could not be read") {
			t.Errorf("slow body client got %q", r.reply)
		}
		if r.took > worst[r.kind] {
			worst[r.kind] = r.took
			replies[r.kind] = r.reply
		}
	}
	for _, kind := range []string{"headers", "body"} {
		t.Logf("slow %s clients closed after at most %s, answered %q", kind, worst[kind].Round(time.Millisecond), firstLine(replies[kind]))
	}
	stillServing(t, e, "slow clients")
	w.check(t)
}

// TestAbuseWrongSecrets sends 10,000 wrong secrets for a plain-secret
// client, eight at a time, and checks each is refused the same way.
func TestAbuseWrongSecrets(t *testing.T) {
	e := newEnv(t)
	w := watchRSS(e.srv)
	const total, workers = 10_000, 8
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	defer client.CloseIdleConnections()
	body := exchangeForm(e.corp.sign(t, claims(nil), nil)).Encode()
	var next, refused atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for i := next.Add(1); i <= total; i = next.Add(1) {
				req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/token", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("demo-client:wrong-%d", i))))
				resp, err := client.Do(req)
				if err != nil {
					firstErr.CompareAndSwap(nil, err.Error())
					return
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusUnauthorized && strings.Contains(string(raw), `"error":"invalid_client"`) &&
					resp.Header.Get("WWW-Authenticate") != "" {
					refused.Add(1)
				} else {
					firstErr.CompareAndSwap(nil, fmt.Sprintf("secret %d: %s %s", i, resp.Status, raw))
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d wrong secrets in %s", total, time.Since(start).Round(time.Millisecond))
	if err := firstErr.Load(); err != nil {
		t.Fatalf("a wrong secret was not refused with 401 invalid_client and a Basic challenge: %v", err)
	}
	if n := refused.Load(); n != total {
		t.Fatalf("%d of %d wrong secrets refused", n, total)
	}
	stillServing(t, e, "10,000 wrong secrets")
	w.check(t)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}
