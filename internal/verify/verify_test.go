package verify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/imagegate/imagegate/internal/alert"
	"github.com/imagegate/imagegate/internal/api"
	"github.com/imagegate/imagegate/internal/apiclient"
	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/scan"
	"github.com/imagegate/imagegate/internal/server"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
	"github.com/imagegate/imagegate/internal/store/sqlite"
	"github.com/imagegate/imagegate/internal/verify"
)

const adminSecret = "admin-secret-for-verify-tests"

// reg is an in-process registry on 127.0.0.1 that counts the bytes it
// serves.
type reg struct {
	*httptest.Server
	host   string
	served atomic.Int64
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (w countingWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.n.Add(int64(n))
	return n, err
}

func newReg(t testing.TB) *reg {
	t.Helper()
	r := &reg{}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		h.ServeHTTP(countingWriter{w, &r.served}, req)
	}))
	t.Cleanup(r.Close)
	r.host = strings.TrimPrefix(r.URL, "http://")
	return r
}

// image builds a Debian-like image whose dpkg database lists pkgs
// (name → version), and pushes it as repo:tag.
func (r *reg) push(t testing.TB, ref string, pkgs map[string]string, extra int) v1.Image {
	t.Helper()
	return r.pushOn(t, ref, nil, pkgs, extra)
}

// pushOn is push with base layers below the image's own, as versions of
// one image share their base.
func (r *reg) pushOn(t testing.TB, ref string, base []v1.Layer, pkgs map[string]string, extra int) v1.Image {
	t.Helper()
	var status strings.Builder
	for n, v := range pkgs {
		fmt.Fprintf(&status, "Package: %s\nStatus: install ok installed\nArchitecture: amd64\nVersion: %s\n\n", n, v)
	}
	files := map[string][]byte{
		"etc/os-release":       []byte("ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"),
		"var/lib/dpkg/status":  []byte(status.String()),
		"usr/share/doc/filler": filler(extra),
	}
	own, err := crane.Layer(files)
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, append(slices.Clone(base), own)...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	nref, err := name.ParseReference(r.host+"/"+ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(nref, img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	return img
}

// filler is n bytes that do not compress, so layers weigh what they say.
func filler(n int) []byte {
	b := make([]byte, n)
	rng := rand.New(rand.NewPCG(uint64(n), 1))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// deleteLayers removes img's layer blobs from repo.
func (r *reg) deleteLayers(t testing.TB, repo string, img v1.Image) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		d, _ := l.Digest()
		req, _ := http.NewRequest(http.MethodDelete, r.URL+"/v2/"+repo+"/blobs/"+d.String(), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("delete blob %s: HTTP %d", d, resp.StatusCode)
		}
	}
}

// hook is a webhook receiver that records alert payloads.
type hook struct {
	*httptest.Server
	mu  sync.Mutex
	got []alert.Payload
}

func newHook(t testing.TB) *hook {
	h := &hook{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p alert.Payload
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		h.got = append(h.got, p)
		h.mu.Unlock()
	}))
	t.Cleanup(h.Close)
	return h
}

// wait returns the alerts of kind once n arrived, failing after 10s.
func (h *hook) wait(t testing.TB, kind string, n int) []alert.Payload {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if got := h.kind(kind); len(got) >= n {
			return got
		}
	}
	t.Fatalf("%d %s alerts did not reach the webhook within 10s (got %d)", n, kind, len(h.kind(kind)))
	return nil
}

func (h *hook) kind(kind string) []alert.Payload {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []alert.Payload
	for _, p := range h.got {
		if p.Kind == kind {
			out = append(out, p)
		}
	}
	return out
}

// env is a real server (SQLite, service, outbox with one json webhook and
// a sender) with re-verification enabled.
type env struct {
	st    *sqlite.DB
	svc   *rollout.Service
	admin *apiclient.Client
	hook  *hook
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "imagegate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc, err := rollout.NewService(ctx, st, rollout.ServiceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	h := newHook(t)
	outbox, err := alert.NewOutbox(st, []alert.Target{{URL: h.URL}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sender, err := alert.NewSender(st, alert.SenderOptions{Holder: "test", Interval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); sender.Run(sctx) }()
	t.Cleanup(func() { cancel(); <-done })
	if err := server.BootstrapAdmin(ctx, st, adminSecret, io.Discard, time.Now()); err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Options{Service: svc, Store: st,
		Verify: rollout.NewVerifications(svc, st, rollout.VerifyOptions{Alerter: outbox})})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	admin, err := apiclient.New(hs.URL, adminSecret, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &env{st: st, svc: svc, admin: admin, hook: h}
}

// register scans ref as CI would have, pushes version with --ref ref and
// pins org to it, so it is live.
func (e *env) register(t testing.TB, r *reg, label, version, ref, org string) rollout.Version {
	t.Helper()
	ctx := context.Background()
	pull := "registry:" + r.host + "/" + ref
	tree, err := source.Open(ctx, pull, source.Options{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := scan.Scan(ctx, tree, scan.Options{Exec: scan.ExecNone})
	tree.Close()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := snapshot.Encode(&b, snap); err != nil {
		t.Fatal(err)
	}
	img, err := verify.Reference(ctx, pull, snap, verify.RefOptions{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	v, err := e.admin.PushVersion(ctx, label, api.PushVersionRequest{Version: version, Snapshot: json.RawMessage(b.String()), Image: &img})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.SetPin(ctx, "token:test", rollout.Pin{Org: org, Label: label, Version: version, Reason: "live for the test",
		ExpiresAt: time.Now().Add(24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	return v
}

func (e *env) once(t testing.TB, opts verify.Options) map[string]rollout.Verification {
	t.Helper()
	opts.Insecure = true
	pass, err := verify.New(e.admin, opts).Once(context.Background())
	if err != nil {
		t.Fatalf("verify --once: %v", err)
	}
	out := map[string]rollout.Verification{}
	for _, v := range pass.Results {
		out[v.Label+" "+v.Version] = v
	}
	return out
}

func digest(t testing.TB, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// TestVerifyDrift: an image registered with --ref verifies ok; another
// image retagged under its tag is drift, alerted naming the new digest,
// audited and marked on the version; the next day's same drift alerts no
// more.
func TestVerifyDrift(t *testing.T) {
	r := newReg(t)
	e := newEnv(t)
	ctx := context.Background()
	first := r.push(t, "app:v1", map[string]string{"libssl3": "3.0.11-1", "git": "1:2.39.2-1"}, 10)
	e.register(t, r, "app", "v1", "app:v1", "org-a")

	got := e.once(t, verify.Options{})
	if v := got["app v1"]; v.Result != rollout.VerifyOK || v.Digest != digest(t, first) || v.LastSuccessAt.IsZero() {
		t.Fatalf("first verification = %+v, want ok of %s", v, digest(t, first))
	}

	moved := r.push(t, "app:v1", map[string]string{"libssl3": "3.0.9-1", "git": "1:2.39.2-1"}, 10)
	got = e.once(t, verify.Options{})
	v := got["app v1"]
	if v.Result != rollout.VerifyDrifted || v.Drift == nil || v.Drift.TagDigest != digest(t, moved) {
		t.Fatalf("after the retag: %+v, want drifted with tag digest %s", v, digest(t, moved))
	}
	// The pulled digest is still the pushed one, so the snapshot matches:
	// the tag is the drift.
	if len(v.Drift.Reasons) != 1 || !strings.Contains(v.Drift.Reasons[0], digest(t, moved)) {
		t.Errorf("drift reasons %q, want one naming %s", v.Drift.Reasons, digest(t, moved))
	}
	alerts := e.hook.wait(t, rollout.AlertDrift, 1)
	if a := alerts[0]; a.Label != "app" || a.Version != "v1" || !strings.Contains(a.Summary, digest(t, moved)) {
		t.Errorf("drift alert %+v, want app v1 naming %s", a, digest(t, moved))
	}
	ver, err := e.admin.Version(ctx, "app", "v1")
	if err != nil {
		t.Fatal(err)
	}
	if ver.Image == nil || ver.Image.DriftedAt.IsZero() || ver.Image.Drift == nil {
		t.Errorf("version after drift: image %+v, want it marked drifted", ver.Image)
	}
	audit, _, err := e.svc.Audit(ctx, rollout.AuditFilter{Action: "version.drift"}, rollout.Page{})
	if err != nil || len(audit) != 1 || audit[0].Subject != "version/app/v1" {
		t.Fatalf("drift audit = %+v, %v; want one entry on version/app/v1", audit, err)
	}

	// The same drift again: recorded, not alerted twice.
	if v := e.once(t, verify.Options{})["app v1"]; v.Result != rollout.VerifyDrifted {
		t.Errorf("second pass: %s, want drifted", v.Result)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(e.hook.kind(rollout.AlertDrift)); n != 1 {
		t.Errorf("%d drift alerts after the same drift twice, want 1", n)
	}
	list, err := e.admin.Verifications(ctx, "")
	if err != nil || len(list.Items) != 1 || list.Items[0].Result != rollout.VerifyDrifted || list.Items[0].Live[0] != "pin:org-a" {
		t.Errorf("GET /api/v1/verifications = %+v, %v", list, err)
	}
}

// TestVerifySnapshotDrift: the image behind the digest is the same, but
// the stored snapshot says otherwise (it was not made from this image):
// drift with the diff.
func TestVerifySnapshotDrift(t *testing.T) {
	r := newReg(t)
	e := newEnv(t)
	ctx := context.Background()
	r.push(t, "app:real", map[string]string{"libssl3": "3.0.11-1", "curl": "7.88.1-10"}, 10)
	r.push(t, "app:claimed", map[string]string{"libssl3": "3.0.11-1"}, 10)
	e.register(t, r, "app", "v1", "app:claimed", "org-a")
	// Point the version's reference at the other image: what CI would see
	// if the image was rebuilt after the scan and pushed by digest.
	real, err := verify.Reference(ctx, "registry:"+r.host+"/app:real", nil, verify.RefOptions{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	claimed, err := e.admin.Version(ctx, "app", "v1")
	if err != nil {
		t.Fatal(err)
	}
	real.Ref, real.Tag = "registry:"+real.Repository+"@"+real.Digest, ""
	if _, err := e.admin.PushVersion(ctx, "app", api.PushVersionRequest{Version: "v2", Snapshot: claimed.Snapshot, Image: &real}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.SetPin(ctx, "token:test", rollout.Pin{Org: "org-b", Label: "app", Version: "v2", Reason: "t", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	v := e.once(t, verify.Options{})["app v2"]
	if v.Result != rollout.VerifyDrifted || v.Drift == nil || len(v.Drift.Diff) == 0 {
		t.Fatalf("v2 = %+v, want drifted with a diff", v)
	}
	if !strings.Contains(v.Drift.Reasons[0], "added package/deb/curl") {
		t.Errorf("drift reasons %q, want the added curl named", v.Drift.Reasons)
	}
}

// TestVerifyUnreachable: an image whose layers are gone is unreachable;
// the alert comes on the second failure in a row, once.
func TestVerifyUnreachable(t *testing.T) {
	r := newReg(t)
	e := newEnv(t)
	img := r.push(t, "app:v1", map[string]string{"libssl3": "3.0.11-1"}, 10)
	e.register(t, r, "app", "v1", "app:v1", "org-a")
	r.deleteLayers(t, "app", img)

	v := e.once(t, verify.Options{TempDir: t.TempDir()})["app v1"]
	if v.Result != rollout.VerifyUnreachable || v.Failures != 1 || v.Error == "" {
		t.Fatalf("first failure: %+v", v)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(e.hook.kind(rollout.AlertUnreachable)); n != 0 {
		t.Fatalf("%d unreachable alerts after one failure, want none", n)
	}
	if v = e.once(t, verify.Options{TempDir: t.TempDir()})["app v1"]; v.Failures != 2 {
		t.Fatalf("second failure: %+v", v)
	}
	a := e.hook.wait(t, rollout.AlertUnreachable, 1)[0]
	if a.Label != "app" || !strings.Contains(a.Summary, "2 attempts") {
		t.Errorf("unreachable alert %+v", a)
	}
	e.once(t, verify.Options{TempDir: t.TempDir()})
	time.Sleep(100 * time.Millisecond)
	if n := len(e.hook.kind(rollout.AlertUnreachable)); n != 1 {
		t.Errorf("%d unreachable alerts after three failures in one streak, want 1", n)
	}
}

// TestVerifyTenVersions measures a pass over a 10-version live set (each
// image ~1 MiB of layer).
func TestVerifyTenVersions(t *testing.T) {
	r := newReg(t)
	e := newEnv(t)
	for i := range 10 {
		r.push(t, fmt.Sprintf("app:v%d", i), map[string]string{"libssl3": "3.0.11-1", "pkg": fmt.Sprint(i)}, 1<<20+i)
		e.register(t, r, "app", fmt.Sprintf("v%d", i), fmt.Sprintf("app:v%d", i), fmt.Sprintf("org-%d", i))
	}
	r.served.Store(0)
	start := time.Now()
	got := e.once(t, verify.Options{TempDir: t.TempDir()})
	took := time.Since(start)
	for k, v := range got {
		if v.Result != rollout.VerifyOK {
			t.Errorf("%s: %s %s", k, v.Result, v.Error)
		}
	}
	if len(got) != 10 {
		t.Fatalf("%d results, want 10", len(got))
	}
	t.Logf("verify of 10 live versions: %v, %d bytes pulled (cold: no blob cache)", took, r.served.Load())
}

// baseLayer is a layer of size bytes that does not compress, shared by the
// versions pushed on it.
func baseLayer(t testing.TB, size int) v1.Layer {
	t.Helper()
	l, err := crane.Layer(map[string][]byte{"usr/lib/base.bin": filler(size)})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestVerifyTenVersionsCache measures passes over a 10-version live set
// whose versions share a 4 MiB base layer and add 256 KiB each: without a
// blob cache every pass pulls every layer; the first pass with one pulls
// the base once; the next (the next day's) pulls no layer at all, only
// manifests and configs.
func TestVerifyTenVersionsCache(t *testing.T) {
	r := newReg(t)
	e := newEnv(t)
	const baseSize, ownSize = 4 << 20, 256 << 10
	base := baseLayer(t, baseSize)
	for i := range 10 {
		r.pushOn(t, fmt.Sprintf("app:v%d", i), []v1.Layer{base}, map[string]string{"libssl3": "3.0.11-1", "pkg": fmt.Sprint(i)}, ownSize+i)
		e.register(t, r, "app", fmt.Sprintf("v%d", i), fmt.Sprintf("app:v%d", i), fmt.Sprintf("org-%d", i))
	}
	cache := t.TempDir()
	pass := func(name, cacheDir string) int64 {
		t.Helper()
		r.served.Store(0)
		start := time.Now()
		got := e.once(t, verify.Options{TempDir: t.TempDir(), CacheDir: cacheDir})
		took := time.Since(start)
		if len(got) != 10 {
			t.Fatalf("%s: %d results, want 10", name, len(got))
		}
		for k, v := range got {
			if v.Result != rollout.VerifyOK {
				t.Errorf("%s: %s: %s %s", name, k, v.Result, v.Error)
			}
		}
		n := r.served.Load()
		t.Logf("verify of 10 live versions, %s: %v, %d bytes pulled", name, took.Round(time.Millisecond), n)
		return n
	}
	none := pass("no blob cache", "")
	cold := pass("cold blob cache", cache)
	warm := pass("warm blob cache", cache)
	if none < 10*baseSize {
		t.Errorf("without a cache %d bytes were pulled, want every version's base (%d)", none, 10*baseSize)
	}
	if cold < baseSize || cold > baseSize+10*(ownSize+64<<10) {
		t.Errorf("cold cache: %d bytes pulled, want the base once and each version's own layer (%d–%d)", cold, baseSize, baseSize+10*(ownSize+64<<10))
	}
	if warm >= ownSize {
		t.Errorf("warm cache: %d bytes pulled, want less than one layer (%d): manifests and configs only", warm, ownSize)
	}
}

// TestVerifyUnreachableWarmCache: a version whose layers are in the blob
// cache but gone from the registry is still unreachable.
func TestVerifyUnreachableWarmCache(t *testing.T) {
	r := newReg(t)
	e := newEnv(t)
	img := r.push(t, "app:v1", map[string]string{"libssl3": "3.0.11-1"}, 10)
	e.register(t, r, "app", "v1", "app:v1", "org-a")
	cache := t.TempDir()
	if v := e.once(t, verify.Options{TempDir: t.TempDir(), CacheDir: cache})["app v1"]; v.Result != rollout.VerifyOK {
		t.Fatalf("first pass: %+v", v)
	}
	r.deleteLayers(t, "app", img)
	v := e.once(t, verify.Options{TempDir: t.TempDir(), CacheDir: cache})["app v1"]
	if v.Result != rollout.VerifyUnreachable || !strings.Contains(v.Error, "is not served") {
		t.Fatalf("after the registry lost the layer: %+v, want unreachable naming the layer", v)
	}
}
