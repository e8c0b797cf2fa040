package check

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/imagegate/imagegate/internal/sandbox"
)

// goss's runtime resources (port, process, http, addr, dns) checked the
// way dgoss checks them: the image's entrypoint and cmd started as
// `docker run` starts them (its User, WorkingDir and Env), in a chroot
// sandbox with its own network namespace that has loopback only, retried
// until they pass or the wait is over (goss validate --retry-timeout),
// then stopped with everything it started. goss's commands run beside it,
// as dgoss's docker exec runs goss (Service.Exec). What the sandbox cannot
// answer as a container would — an address beyond loopback, a DNS server,
// a proxy — is skipped saying why, never passed.

// GossRun asks for goss's runtime resources to be checked against the
// image's entrypoint, started in the sandbox (dgoss run).
type GossRun struct {
	// Wait is how long the runtime resources are retried until they all
	// pass, as goss validate --retry-timeout; DefaultRunWait when zero.
	Wait time.Duration
}

// DefaultRunWait is how long --run waits for the entrypoint by default.
const DefaultRunWait = 5 * time.Second

// runRetry is the pause between two rounds of runtime checks.
const runRetry = 250 * time.Millisecond

// starter is what --run needs of a Runner: starting a program that keeps
// running, in a sandbox of its own, until Stop. The error is non-nil only
// when it could not be started.
type starter interface {
	Start(ctx context.Context, cmd sandbox.Command) (*sandbox.Service, error)
}

var _ starter = (*sandbox.Chroot)(nil)

// Default timeouts of goss's runtime resources.
const (
	defaultHTTPTimeout = 5 * time.Second
	defaultAddrTimeout = 500 * time.Millisecond
	// maxBody bounds what is read of an HTTP response.
	maxBody = 4 << 20
)

func isLive(res *GossResource) bool { return !res.Skip && gossTypes[res.Type].live != "" }

// tail keeps the last bytes written to it: the entrypoint's output, for
// the evidence. Written by one goroutine, read after it ended.
type tail struct{ b []byte }

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if over := len(t.b) - 64<<10; over > 0 {
		t.b = t.b[over:]
	}
	return len(p), nil
}

// runLive starts the entrypoint and checks the live resources against it;
// the results are by resource index, followed by the result of the run
// itself.
func (r *gossRun) runLive(ctx context.Context, res []*GossResource, run *GossRun) ([][]Result, Result) {
	out := make([][]Result, len(res))
	rr := Result{ID: "spec/goss/run", Origin: OriginSpec, Kind: "run", Status: StatusPass, Name: "goss --run: the image's entrypoint"}
	failAll := func(err error) ([][]Result, Result) {
		for i, x := range res {
			out[i] = r.failedAll(x, fmt.Errorf("not checked: %w", err))
		}
		rr.fail("%v", err)
		return out, rr
	}
	var st starter
	switch {
	case r.t == nil:
		return failAll(errNoTarget)
	case r.t.Runner == nil:
		return failAll(errors.New("--run needs the chroot sandbox, but the scan ran nothing (--exec none, or chroot not permitted); use --exec chroot as root"))
	default:
		var ok bool
		if st, ok = r.t.Runner.(starter); !ok {
			return failAll(fmt.Errorf("--run needs the chroot sandbox (--exec chroot, as root): with --exec %s the entrypoint would run on this machine, in its network", r.t.Runner.Mode()))
		}
	}
	var argv []string
	if img := r.snap.Image; img != nil {
		argv = append(append(argv, img.Entrypoint...), img.Cmd...)
	}
	if len(argv) == 0 {
		return failAll(errors.New("the image has no entrypoint or cmd for --run to start"))
	}
	rr.Name = "goss --run: " + shellQuote(argv)
	if r.rc == nil {
		r.rc = newRunContext(&Spec{}, r.img, r.t)
	}
	if r.rc.userErr != nil {
		return failAll(fmt.Errorf("cannot run as the image's user: %w", r.rc.userErr))
	}
	prog, err := lookPath(r.t, argv[0], r.rc.env)
	if err != nil {
		return failAll(fmt.Errorf("the entrypoint %w", err))
	}
	var stdout, stderr tail
	svc, err := st.Start(ctx, sandbox.Command{
		Path: prog, Args: argv[1:], Env: r.rc.env, Dir: r.rc.dir, User: r.rc.user, Stdout: &stdout, Stderr: &stderr,
	})
	if err != nil {
		return failAll(fmt.Errorf("could not start the entrypoint: %w", err))
	}
	// Stopped on every way out, a failure or ctx ending included.
	defer svc.Stop()
	started := time.Now()
	wait := cmp.Or(run.Wait, DefaultRunWait)
	l := &live{r: r, svc: svc}
	for {
		failed := false
		for i, x := range res {
			out[i] = l.resource(ctx, x)
			failed = failed || slices.ContainsFunc(out[i], func(x Result) bool { return x.Status == StatusFail })
		}
		exited, _, _ := svc.Exited()
		if !failed || exited || time.Since(started)+runRetry > wait || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-svc.Done():
		case <-time.After(runRetry):
		}
	}
	checked := time.Since(started)
	exited, how, startErr := svc.Exited()
	if _, err := svc.Stop(); err != nil && startErr == nil {
		startErr = err
	}
	rr.Evidence = []string{"command: " + shellQuote(append([]string{prog}, argv[1:]...)),
		fmt.Sprintf("as %s in %s", cmpOr(r.img.user, "root"), cmpOr(r.rc.dir, "/")),
		fmt.Sprintf("checked for %s of --wait %s", checked.Round(time.Millisecond), wait)}
	switch {
	case startErr != nil:
		rr.fail("the entrypoint could not run: %v", startErr)
	case exited:
		rr.fail("the entrypoint ended (%s) before the checks did; a container of the image would have stopped", describeEnd(how))
	default:
		rr.Message = "the entrypoint ran until the checks ended; stopped, with everything it started"
	}
	if rr.Status == StatusFail {
		for name, t := range map[string]*tail{"stdout": &stdout, "stderr": &stderr} {
			if s := tailOf(string(t.b)); s != "" {
				rr.Evidence = append(rr.Evidence, name+": "+s)
			}
		}
		slices.Sort(rr.Evidence[3:])
	}
	return out, rr
}

func describeEnd(how sandbox.Result) string {
	if how.TimedOut {
		return "stopped: the check's time ran out"
	}
	if how.Signal != "" {
		return "killed by " + how.Signal
	}
	return "exit status " + strconv.Itoa(how.ExitCode)
}

// live answers runtime resources against a running sandbox.
type live struct {
	r   *gossRun
	svc *sandbox.Service
	// hosts is the sandbox's /etc/hosts, read once.
	hosts []hostsEntry
	read  bool
}

type hostsEntry struct {
	ip    net.IP
	names []string
}

func (l *live) resource(ctx context.Context, res *GossResource) []Result {
	if exited, how, err := l.svc.Exited(); exited {
		if err != nil {
			return l.r.failedAll(res, fmt.Errorf("not checked: the entrypoint could not run: %w", err))
		}
		return l.r.failedAll(res, fmt.Errorf("not checked: the entrypoint had ended (%s)", describeEnd(how)))
	}
	switch res.Type {
	case "port":
		return l.port(res)
	case "process":
		procs, err := l.svc.Processes()
		if err != nil {
			return l.r.failedAll(res, err)
		}
		running := slices.ContainsFunc(procs, func(p sandbox.Process) bool { return p.Comm == res.Subject })
		return l.r.evaluate(res, func(string) (any, error) { return running, nil }, false)
	case "http":
		return l.http(ctx, res)
	case "addr":
		return l.addr(ctx, res)
	case "dns":
		return l.dns(res)
	case "command":
		return l.r.command(ctx, res, l.svc.Exec, "run beside the entrypoint, as docker exec runs it")
	}
	return l.r.failedAll(res, fmt.Errorf("internal: live resource %q", res.Type))
}

// port reads goss's "tcp:22", "tcp6:22", "udp:53", "udp6:53" or "22"
// (tcp) against the sandbox's socket tables; like goss, tcp means IPv4
// only (a server bound to :: listens on tcp6).
func (l *live) port(res *GossResource) []Result {
	proto, num, ok := strings.Cut(res.Subject, ":")
	if !ok {
		proto, num = "tcp", res.Subject
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 || n > 65535 || !slices.Contains([]string{"tcp", "tcp6", "udp", "udp6"}, proto) {
		return l.r.failedAll(res, fmt.Errorf("%q is not a goss port: write tcp:PORT, tcp6:PORT, udp:PORT or udp6:PORT", res.Subject))
	}
	socks, err := l.svc.Sockets()
	if err != nil {
		return l.r.failedAll(res, err)
	}
	ips := []string{}
	for _, s := range socks {
		if s.Proto == proto && s.Port == n && s.Listening && !slices.Contains(ips, s.IP.String()) {
			ips = append(ips, s.IP.String())
		}
	}
	slices.Sort(ips)
	return l.r.evaluate(res, func(attr string) (any, error) {
		if attr == "listening" {
			return len(ips) > 0, nil
		}
		return ips, nil
	}, false)
}

// readHosts reads the /etc/hosts the entrypoint sees (the image's, or the
// one the sandbox wrote for an image without one).
func (l *live) readHosts() []hostsEntry {
	if l.read {
		return l.hosts
	}
	var hosts []hostsEntry
	b, err := l.svc.ReadFile("/etc/hosts")
	if err == nil {
		l.read = true
	} else {
		// No process to read it through (one that just exited): the
		// image's own, or what the sandbox writes for an image without
		// one; read through the sandbox again next time.
		text, terr := l.r.readContent("/etc/hosts")
		if terr != nil {
			text = "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n"
		}
		b = []byte(text)
	}
	for line := range strings.Lines(string(b)) {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		if ip := net.ParseIP(f[0]); ip != nil {
			hosts = append(hosts, hostsEntry{ip: ip, names: f[1:]})
		}
	}
	if l.read {
		l.hosts = hosts
	}
	return hosts
}

// lookup resolves a name from the sandbox's /etc/hosts, in file order;
// nil when it is not there.
func (l *live) lookup(name string) []net.IP {
	var ips []net.IP
	for _, e := range l.readHosts() {
		if slices.ContainsFunc(e.names, func(n string) bool { return strings.EqualFold(n, name) }) {
			ips = append(ips, e.ip)
		}
	}
	return ips
}

// loopback resolves host to addresses on the sandbox's loopback; why says
// why the sandbox cannot answer for it otherwise.
func (l *live) loopback(host string) (ips []net.IP, why string) {
	if ip := net.ParseIP(host); ip != nil {
		ips = []net.IP{ip}
	} else if ips = l.lookup(host); len(ips) == 0 {
		return nil, fmt.Sprintf("%s is not in the sandbox's /etc/hosts, and the sandbox has no network to ask a DNS server", host)
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return nil, fmt.Sprintf("%s (%s) is not on the sandbox's network, which has loopback only", host, ip)
		}
	}
	return ips, ""
}

func (l *live) dial(ctx context.Context, network, address string, local net.Addr) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	ips, why := l.loopback(host)
	if why != "" {
		return nil, errors.New(why)
	}
	var errs []error
	for _, ip := range ips {
		c, err := l.svc.Dial(ctx, network, net.JoinHostPort(ip.String(), port), local)
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// addr reads goss's "tcp://host:port" or "udp://host:port".
func (l *live) addr(ctx context.Context, res *GossResource) []Result {
	network, hostport, ok := strings.Cut(res.Subject, "://")
	host, _, err := net.SplitHostPort(hostport)
	if !ok || err != nil || (network != "tcp" && network != "udp") {
		return l.r.failedAll(res, fmt.Errorf("%q is not a goss address: write tcp://HOST:PORT or udp://HOST:PORT", res.Subject))
	}
	if _, why := l.loopback(host); why != "" {
		return l.r.skipped(res, why)
	}
	var local net.Addr
	if la, _ := res.opts["local-address"].(string); la != "" {
		ip := net.ParseIP(la)
		if ip == nil {
			return l.r.failedAll(res, fmt.Errorf("local-address %q is not an IP address", la))
		}
		if network == "tcp" {
			local = &net.TCPAddr{IP: ip}
		} else {
			local = &net.UDPAddr{IP: ip}
		}
	}
	dctx, cancel := context.WithTimeout(ctx, cmp.Or(res.Timeout, defaultAddrTimeout))
	defer cancel()
	c, err := l.dial(dctx, network, hostport, local)
	reachable := err == nil
	if c != nil {
		c.Close()
	}
	out := l.r.evaluate(res, func(string) (any, error) { return reachable, nil }, false)
	if err != nil {
		for i := range out {
			if out[i].Status == StatusFail {
				out[i].Evidence = append(out[i].Evidence, "dial: "+err.Error())
			}
		}
	}
	return out
}

// dns answers from the sandbox's /etc/hosts, which is all a container's
// resolver has without a network; a name not there, a record type, or a
// server to ask need DNS, and are skipped.
func (l *live) dns(res *GossResource) []Result {
	if server, _ := res.opts["server"].(string); server != "" {
		return l.r.skipped(res, fmt.Sprintf("the sandbox has no network to reach the DNS server %s", server))
	}
	name := res.Subject
	if typ, _, ok := strings.Cut(name, ":"); ok && net.ParseIP(name) == nil {
		return l.r.skipped(res, fmt.Sprintf("a %s record needs a DNS server, and the sandbox has no network to reach one", typ))
	}
	ips := l.lookup(name)
	if len(ips) == 0 {
		return l.r.skipped(res, fmt.Sprintf("%s is not in the sandbox's /etc/hosts, and the sandbox has no network to ask a DNS server", name))
	}
	addrs := []string{}
	for _, ip := range ips {
		if !slices.Contains(addrs, ip.String()) {
			addrs = append(addrs, ip.String())
		}
	}
	return l.r.evaluate(res, func(attr string) (any, error) {
		if attr == "resolvable" {
			return true, nil
		}
		return addrs, nil
	}, false)
}

// http requests the URL as goss does, from inside the sandbox's network.
func (l *live) http(ctx context.Context, res *GossResource) []Result {
	u, err := url.Parse(res.Subject)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return l.r.failedAll(res, fmt.Errorf("%q is not an http:// or https:// URL", res.Subject))
	}
	if proxy, _ := res.opts["proxy"].(string); proxy != "" {
		return l.r.skipped(res, fmt.Sprintf("proxy %s: the sandbox has no network beyond loopback to reach a proxy through", proxy))
	}
	if _, why := l.loopback(u.Hostname()); why != "" {
		return l.r.skipped(res, why)
	}
	tlsConf, err := l.tlsConfig(res)
	if err != nil {
		return l.r.failedAll(res, err)
	}
	transport := &http.Transport{
		// Never this machine's proxy settings: the request is the
		// sandbox's.
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return l.dial(ctx, network, addr, nil)
		},
		TLSClientConfig:   tlsConf,
		DisableKeepAlives: true,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: cmp.Or(res.Timeout, defaultHTTPTimeout)}
	if follow, _ := res.opts["no-follow-redirects"].(bool); follow {
		client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	method, _ := res.opts["method"].(string)
	body, _ := res.opts["request-body"].(string)
	req, err := http.NewRequestWithContext(ctx, cmpOr(method, http.MethodGet), res.Subject, strings.NewReader(body))
	if err != nil {
		return l.r.failedAll(res, err)
	}
	hosted := false
	for _, h := range stringList(res.opts["request-headers"]) {
		k, v, ok := strings.Cut(h, ":")
		if !ok {
			return l.r.failedAll(res, fmt.Errorf("request header %q: write \"Name: value\"", h))
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if strings.EqualFold(k, "Host") {
			// goss: the first Host header is the request's host.
			if !hosted {
				req.Host, hosted = v, true
			}
			continue
		}
		req.Header.Add(k, v)
	}
	if user, _ := res.opts["username"].(string); user != "" {
		pass, _ := res.opts["password"].(string)
		req.SetBasicAuth(user, pass)
	}
	resp, err := client.Do(req)
	if err != nil {
		return l.r.failedAll(res, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return l.r.failedAll(res, fmt.Errorf("read the response: %w", err))
	}
	if len(b) > maxBody {
		return l.r.failedAll(res, fmt.Errorf("the response body is larger than %d MiB, not checked", maxBody>>20))
	}
	var headers []string
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range resp.Header {
			if !yield(k) {
				return
			}
		}
	}) {
		for _, v := range resp.Header[k] {
			headers = append(headers, k+": "+v)
		}
	}
	return l.r.evaluate(res, func(attr string) (any, error) {
		switch attr {
		case "status":
			return resp.StatusCode, nil
		case "headers":
			return gossText(strings.Join(headers, "\n")), nil
		}
		return gossText(b), nil
	}, false)
}

func stringList(v any) []string {
	s, _ := v.([]string)
	return s
}

// tlsConfig is goss's: allow-insecure, ca-file, cert-file and key-file,
// the files read from the image as goss in its container would. Without
// ca-file, the image's own CA bundle is trusted, as there.
func (l *live) tlsConfig(res *GossResource) (*tls.Config, error) {
	conf := &tls.Config{}
	conf.InsecureSkipVerify, _ = res.opts["allow-insecure"].(bool)
	read := func(p string) ([]byte, error) {
		s, err := l.r.readContent(p)
		if err != nil {
			return nil, fmt.Errorf("%s in the image: %w", p, err)
		}
		return []byte(s), nil
	}
	ca, _ := res.opts["ca-file"].(string)
	cas := []string{ca}
	if ca == "" {
		cas = []string{"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"}
	}
	for _, p := range cas {
		pem, err := read(p)
		if err != nil {
			if ca != "" {
				return nil, fmt.Errorf("ca-file: %w", err)
			}
			continue
		}
		conf.RootCAs = x509.NewCertPool()
		if !conf.RootCAs.AppendCertsFromPEM(pem) && ca != "" {
			return nil, fmt.Errorf("ca-file %s: no PEM certificate in it", ca)
		}
		break
	}
	if conf.RootCAs == nil {
		conf.RootCAs = x509.NewCertPool() // an image without CAs trusts none
	}
	certFile, _ := res.opts["cert-file"].(string)
	keyFile, _ := res.opts["key-file"].(string)
	if certFile != "" || keyFile != "" {
		if certFile == "" || keyFile == "" {
			return nil, errors.New("cert-file and key-file go together")
		}
		c, err := read(certFile)
		if err != nil {
			return nil, fmt.Errorf("cert-file: %w", err)
		}
		k, err := read(keyFile)
		if err != nil {
			return nil, fmt.Errorf("key-file: %w", err)
		}
		pair, err := tls.X509KeyPair(c, k)
		if err != nil {
			return nil, fmt.Errorf("cert-file and key-file: %w", err)
		}
		conf.Certificates = []tls.Certificate{pair}
	}
	return conf, nil
}
