// Package verify is the re-verification worker (`imagegate verify`): it
// asks the server which versions are live, pulls each by the digest it was
// pushed with, scans it with the recorded options, runs today's automatic
// checks on it, and posts what it found. The server judges (drift, new
// findings, unreachable; rollout.Verifications), so the server needs
// neither registry credentials nor root: the worker runs where both are,
// as a CI job or a cron.
//
// It also turns a `--ref` given at push into the rollout.ImageRef the
// server stores (Reference).
package verify

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/imagegate/imagegate/internal/check"
	"github.com/imagegate/imagegate/internal/report"
	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/scan"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
)

// Server is the part of the API the worker uses; *apiclient.Client
// implements it. Errors wrap the rollout.Err* kinds of the server's answer.
type Server interface {
	VerifyTargets(ctx context.Context) ([]rollout.VerifyTarget, error)
	RecordVerification(ctx context.Context, rep rollout.VerifyReport) (rollout.Verification, error)
}

// Options configure a Worker.
type Options struct {
	// Insecure pulls over plain HTTP and without TLS verification (test
	// registries).
	Insecure bool
	// TempDir is where layers are unpacked ("" = $TMPDIR).
	TempDir string
	// CacheDir keeps registry layers between passes, by digest
	// (source.Options.CacheDir), so a daily pass pulls only manifests,
	// configs and the layers it has not seen; "" pulls every layer every
	// pass. A cached layer is still asked of the registry (HEAD, no
	// body), so a blob the registry lost is unreachable as without it.
	CacheDir string
	// ScannerVersion is written into the snapshots.
	ScannerVersion string
	Logger         *slog.Logger // default: discard
}

// Worker verifies the live versions a Server names.
type Worker struct {
	srv  Server
	opts Options
	log  *slog.Logger
}

// New returns a worker over srv.
func New(srv Server, opts Options) *Worker {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Worker{srv: srv, opts: opts, log: log}
}

// Pass is the outcome of one pass over the live versions: the results the
// server recorded, in target order.
type Pass struct {
	Results []rollout.Verification `json:"results"`
}

// Once verifies every target once. A target whose image cannot be pulled
// is reported as such (that is a result, not an error); the error is for a
// server that cannot be asked or refuses a report, and Once carries on
// with the other targets before returning it.
func (w *Worker) Once(ctx context.Context) (Pass, error) {
	targets, err := w.srv.VerifyTargets(ctx)
	if err != nil {
		return Pass{}, fmt.Errorf("ask the server what is live: %w", err)
	}
	var pass Pass
	var errs []error
	for _, t := range targets {
		if err := ctx.Err(); err != nil {
			return pass, err
		}
		rep := w.verify(ctx, t)
		v, err := w.srv.RecordVerification(ctx, rep)
		if err != nil {
			errs = append(errs, fmt.Errorf("report %s %s: %w", t.Label, t.Version, err))
			continue
		}
		w.log.Info("verified", "label", v.Label, "version", v.Version, "result", v.Result)
		pass.Results = append(pass.Results, v)
	}
	return pass, errors.Join(errs...)
}

// Run verifies every interval until ctx ends, starting now; a failed pass
// is logged and retried at the next interval.
func (w *Worker) Run(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		return fmt.Errorf("verify: interval %v: want a positive duration such as 24h", interval)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := w.Once(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			w.log.Warn("verification pass", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// verify pulls and scans one target; what goes wrong with the image goes
// into the report's Error.
func (w *Worker) verify(ctx context.Context, t rollout.VerifyTarget) rollout.VerifyReport {
	rep := rollout.VerifyReport{Label: t.Label, Version: t.Version, Digest: t.Image.Digest}
	if tag := t.Image.TagRef(); tag != "" {
		d, err := w.head(ctx, tag)
		if err != nil {
			w.log.Warn("resolve tag", "tag", tag, "err", err)
		}
		rep.TagDigest = d
	}
	snap, checked, err := w.scan(ctx, t.Image)
	if err != nil {
		rep.Error = err.Error()
		return rep
	}
	rep.Snapshot, rep.CheckReport = snap, checked
	return rep
}

func (w *Worker) scan(ctx context.Context, img rollout.ImageRef) (snap, checked []byte, err error) {
	if w.opts.CacheDir != "" {
		if err := layersServed(ctx, img, w.opts.Insecure); err != nil {
			return nil, nil, err
		}
	}
	tree, err := source.Open(ctx, img.Pull(), source.Options{Insecure: w.opts.Insecure, TempDir: w.opts.TempDir,
		Platform: img.ScanOptions.Platform, CacheDir: w.opts.CacheDir, Logger: w.log})
	if err != nil {
		return nil, nil, err
	}
	defer tree.Close()
	exec := img.ScanOptions.Exec
	if exec == "" {
		exec = scan.ExecAuto
	}
	s, err := scan.Scan(ctx, tree, scan.Options{Exec: exec, ModuleTimeout: img.ScanOptions.ModuleTimeout,
		ToolTimeout: img.ScanOptions.ToolTimeout, ScannerVersion: w.opts.ScannerVersion, Logger: w.log})
	if err != nil {
		return nil, nil, fmt.Errorf("scan %s: %w", img.Pull(), err)
	}
	r, err := check.Run(ctx, s, check.Options{Target: tree})
	if err != nil {
		return nil, nil, fmt.Errorf("check %s: %w", img.Pull(), err)
	}
	var sb, cb bytes.Buffer
	if err := snapshot.Encode(&sb, s); err != nil {
		return nil, nil, err
	}
	if err := r.Write(&cb, report.JSON); err != nil {
		return nil, nil, err
	}
	return sb.Bytes(), cb.Bytes(), nil
}

// layersServed checks that the registry still serves every layer of img
// (the platform's image of an index), by HEAD: with a warm cache the scan
// would not fetch them, and a registry that lost a blob must still make
// the version unreachable.
func layersServed(ctx context.Context, img rollout.ImageRef, insecure bool) error {
	nopts, ropts := remoteOptions(ctx, insecure)
	ref, err := name.NewDigest(img.Repository+"@"+img.Digest, nopts...)
	if err != nil {
		return fmt.Errorf("image reference %s@%s: %w", img.Repository, img.Digest, err)
	}
	if p := img.ScanOptions.Platform; p != "" {
		plat, err := v1.ParsePlatform(p)
		if err != nil {
			return fmt.Errorf("platform %q: %w", p, err)
		}
		ropts = append(ropts, remote.WithPlatform(*plat))
	}
	rimg, err := remote.Image(ref, ropts...)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", ref, err)
	}
	layers, err := rimg.Layers()
	if err != nil {
		return fmt.Errorf("layers of %s: %w", ref, err)
	}
	for i, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return fmt.Errorf("layer %d of %s: %w", i+1, ref, err)
		}
		rl, err := remote.Layer(ref.Context().Digest(d.String()), ropts...)
		if err == nil {
			_, err = rl.Size() // a HEAD of the blob
		}
		if err != nil {
			return fmt.Errorf("layer %d (%s) of %s is not served: %w", i+1, d, ref, err)
		}
	}
	return nil
}

func (w *Worker) head(ctx context.Context, ref string) (string, error) {
	return headDigest(ctx, ref, w.opts.Insecure)
}

func remoteOptions(ctx context.Context, insecure bool) ([]name.Option, []remote.Option) {
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}
	var nopts []name.Option
	if insecure {
		nopts = append(nopts, name.Insecure)
		tr := remote.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for with --insecure
		ropts = append(ropts, remote.WithTransport(tr))
	}
	return nopts, ropts
}

// headDigest is the manifest digest ref (HOST/REPO:TAG) points at.
func headDigest(ctx context.Context, ref string, insecure bool) (string, error) {
	nopts, ropts := remoteOptions(ctx, insecure)
	r, err := name.ParseReference(ref, nopts...)
	if err != nil {
		return "", fmt.Errorf("image reference %q: %w", ref, err)
	}
	desc, err := remote.Head(r, ropts...)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", ref, err)
	}
	return desc.Digest.String(), nil
}

// RefOptions configure Reference.
type RefOptions struct {
	// Insecure resolves a tag over plain HTTP (test registries).
	Insecure bool
	// Scan are the options the snapshot was made with beyond what the
	// snapshot records (its exec mode and architecture are taken from it).
	Scan rollout.ScanOptions
}

// Reference turns a push's --ref into the ImageRef the server stores:
// "registry:HOST/REPO@sha256:…" as given, "registry:HOST/REPO:TAG" with the
// digest the tag has now (asking the registry). The scan options come from
// snap (the snapshot pushed with it, may be nil) and opts.Scan.
func Reference(ctx context.Context, ref string, snap *snapshot.Snapshot, opts RefOptions) (rollout.ImageRef, error) {
	rest, ok := strings.CutPrefix(ref, source.SchemeRegistry+":")
	if !ok {
		return rollout.ImageRef{}, fmt.Errorf("--ref %q: %w: want registry:HOST/REPO:TAG or registry:HOST/REPO@sha256:DIGEST", ref, rollout.ErrInvalid)
	}
	nopts, _ := remoteOptions(ctx, opts.Insecure)
	r, err := name.ParseReference(rest, append(nopts, name.StrictValidation)...)
	if err != nil {
		return rollout.ImageRef{}, fmt.Errorf("--ref %q: %v: %w", ref, err, rollout.ErrInvalid)
	}
	img := rollout.ImageRef{Ref: ref, Repository: r.Context().Name(), ScanOptions: opts.Scan}
	switch r := r.(type) {
	case name.Digest:
		img.Digest = r.DigestStr()
	case name.Tag:
		img.Tag = r.TagStr()
		if img.Digest, err = headDigest(ctx, rest, opts.Insecure); err != nil {
			return rollout.ImageRef{}, fmt.Errorf("--ref %s: record the digest the tag has now: %w", ref, err)
		}
	}
	if snap != nil {
		if img.ScanOptions.Exec == "" {
			img.ScanOptions.Exec = snap.Exec
		}
		if img.ScanOptions.Platform == "" && snap.Architecture != "" {
			img.ScanOptions.Platform = "linux/" + snap.Architecture
		}
	}
	return img, rollout.CheckImageRef(img)
}
