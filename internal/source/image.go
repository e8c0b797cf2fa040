package source

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/imagegate/imagegate/internal/snapshot"
)

// refNameAnnotation names an image inside an OCI layout.
const refNameAnnotation = "org.opencontainers.image.ref.name"

// openImage finds the image a SOURCE names and reads its manifest and
// config facts and where its layers are stored. Layers are not read yet.
func openImage(ctx context.Context, scheme, rest string, opts Options) (*snapshot.Image, []blob, error) {
	want, err := platform(opts.Platform)
	if err != nil {
		return nil, nil, err
	}
	var (
		img   v1.Image
		facts *snapshot.Image
	)
	switch scheme {
	case SchemeOCI:
		img, facts, err = openLayout(rest, want)
	case SchemeDockerArchive:
		return openArchive(rest)
	default:
		img, facts, err = openRemote(ctx, rest, want, opts.Insecure)
	}
	if err != nil {
		return nil, nil, err
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, nil, fmt.Errorf("list layers: %w", err)
	}
	if scheme == SchemeRegistry && opts.CacheDir != "" {
		blobs, err := pullLayers(ctx, layers, opts.CacheDir, opts.progress())
		if err != nil || blobs != nil {
			return facts, blobs, err
		}
	}
	blobs := make([]blob, len(layers))
	for i, l := range layers {
		blobs[i] = compressedBlob{l}
	}
	return facts, blobs, nil
}

func platform(s string) (v1.Platform, error) {
	if s == "" {
		s = "linux/" + runtime.GOARCH
	}
	p, err := v1.ParsePlatform(s)
	if err != nil {
		return v1.Platform{}, fmt.Errorf("%w: platform %q: %v (use os/arch, e.g. linux/amd64)", ErrBadSource, s, err)
	}
	return *p, nil
}

// openLayout opens PATH[@DIGEST|:REFNAME]. A path that exists as a whole
// wins over a split at a colon, so layouts in folders with colons in their
// names still open.
func openLayout(rest string, want v1.Platform) (v1.Image, *snapshot.Image, error) {
	dir, digest, refName := rest, "", ""
	if i := strings.LastIndex(rest, "@"); i >= 0 && strings.Contains(rest[i:], ":") {
		dir, digest = rest[:i], rest[i+1:]
	} else if !isDir(rest) {
		// Reference names contain colons themselves (example.com/x:1),
		// so the layout is the shortest prefix that is a directory.
		for i := range len(rest) {
			if rest[i] == ':' && isDir(rest[:i]) {
				dir, refName = rest[:i], rest[i+1:]
				break
			}
		}
	}
	if !isDir(dir) {
		return nil, nil, fmt.Errorf("%w: no OCI layout directory %s", ErrBadSource, dir)
	}
	lp, err := layout.FromPath(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s is not an OCI image layout (no readable index.json): %v", ErrBadSource, dir, err)
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		return nil, nil, fmt.Errorf("read OCI layout index: %w", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, nil, fmt.Errorf("read OCI layout index: %w", err)
	}
	var cands []v1.Descriptor
	switch {
	case digest != "":
		h, err := v1.NewHash(digest)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: digest %q: %v", ErrBadSource, digest, err)
		}
		for _, d := range im.Manifests {
			if d.Digest == h {
				cands = append(cands, d)
			}
		}
		if len(cands) == 0 {
			return nil, nil, fmt.Errorf("%w: no manifest %s in the layout (it has %s)", ErrBadSource, digest, describe(im.Manifests))
		}
	case refName != "":
		for _, d := range im.Manifests {
			if n := d.Annotations[refNameAnnotation]; n == refName || strings.HasSuffix(n, ":"+refName) {
				cands = append(cands, d)
			}
		}
		if len(cands) == 0 {
			return nil, nil, fmt.Errorf("%w: no manifest named %q in the layout (it has %s)", ErrBadSource, refName, describe(im.Manifests))
		}
	default:
		cands = im.Manifests
	}
	d, err := pick(cands, want)
	if err != nil {
		return nil, nil, err
	}
	img, err := layoutImage(idx, d, want)
	if err != nil {
		return nil, nil, err
	}
	facts, err := imageFacts(img, d.Annotations[refNameAnnotation], true)
	return img, facts, err
}

// pick chooses one descriptor: the only one, or the one for the wanted
// platform when several carry platforms (an index flattened into
// index.json).
func pick(cands []v1.Descriptor, want v1.Platform) (v1.Descriptor, error) {
	switch len(cands) {
	case 0:
		return v1.Descriptor{}, fmt.Errorf("%w: the OCI layout holds no manifests", ErrBadSource)
	case 1:
		return cands[0], nil
	}
	for _, d := range cands {
		if d.Platform != nil && d.Platform.Satisfies(want) {
			return d, nil
		}
	}
	return v1.Descriptor{}, fmt.Errorf("%w: the OCI layout holds %d manifests and none is for %s; add @DIGEST or :REFNAME (it has %s)", ErrBadSource, len(cands), want, describe(cands))
}

// layoutImage opens a descriptor as an image, descending through nested
// indexes by platform.
func layoutImage(idx v1.ImageIndex, d v1.Descriptor, want v1.Platform) (v1.Image, error) {
	for range 8 {
		if !d.MediaType.IsIndex() {
			img, err := idx.Image(d.Digest)
			if err != nil {
				return nil, fmt.Errorf("open image %s: %w", d.Digest, err)
			}
			return img, nil
		}
		child, err := idx.ImageIndex(d.Digest)
		if err != nil {
			return nil, fmt.Errorf("open index %s: %w", d.Digest, err)
		}
		im, err := child.IndexManifest()
		if err != nil {
			return nil, fmt.Errorf("read index %s: %w", d.Digest, err)
		}
		var matching []v1.Descriptor
		for _, c := range im.Manifests {
			if c.Platform == nil || c.Platform.Satisfies(want) {
				matching = append(matching, c)
			}
		}
		if len(matching) == 0 {
			return nil, fmt.Errorf("%w: index %s has no image for %s (it has %s); choose one with --platform", ErrBadSource, d.Digest, want, describe(im.Manifests))
		}
		idx, d = child, matching[0]
	}
	return nil, fmt.Errorf("indexes nested more than 8 deep at %s", d.Digest)
}

func describe(ds []v1.Descriptor) string {
	var parts []string
	for _, d := range ds {
		s := d.Digest.String()
		if n := d.Annotations[refNameAnnotation]; n != "" {
			s = n + " " + s
		}
		if d.Platform != nil {
			s += " (" + d.Platform.String() + ")"
		}
		parts = append(parts, s)
		if len(parts) == 5 && len(ds) > 5 {
			parts = append(parts, fmt.Sprintf("and %d more", len(ds)-5))
			break
		}
	}
	return strings.Join(parts, ", ")
}

// openArchive opens FILE[:TAG], a `docker save` archive. Tags contain
// colons themselves, so the file is the shortest prefix that exists.
func openArchive(rest string) (*snapshot.Image, []blob, error) {
	file, tag := rest, ""
	if !isFile(rest) {
		file = ""
		for i := range len(rest) {
			if rest[i] == ':' && isFile(rest[:i]) {
				file, tag = rest[:i], rest[i+1:]
				break
			}
		}
		if file == "" {
			return nil, nil, fmt.Errorf("%w: no docker archive file %s", ErrBadSource, rest)
		}
	}
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(file) })
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s is not a docker save archive: %v", ErrBadSource, file, err)
	}
	var t *name.Tag
	ref := tag
	if tag != "" {
		nt, err := name.NewTag(tag)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: tag %q: %v", ErrBadSource, tag, err)
		}
		t = &nt
	} else {
		switch len(m) {
		case 0:
			return nil, nil, fmt.Errorf("%w: %s holds no images", ErrBadSource, file)
		case 1:
			if len(m[0].RepoTags) > 0 {
				ref = m[0].RepoTags[0]
			}
		default:
			var tags []string
			for _, d := range m {
				tags = append(tags, d.RepoTags...)
			}
			return nil, nil, fmt.Errorf("%w: %s holds %d images; add :TAG (one of %s)", ErrBadSource, file, len(m), strings.Join(tags, ", "))
		}
	}
	img, err := tarball.ImageFromPath(file, t)
	if err != nil {
		if t != nil {
			return nil, nil, fmt.Errorf("%w: %s: %v", ErrBadSource, file, err)
		}
		return nil, nil, fmt.Errorf("read %s: %w", file, err)
	}
	// A docker save archive has no registry manifest, and computing one
	// would mean compressing every layer; layers are identified by their
	// uncompressed digests (diff IDs) instead.
	facts, err := imageFacts(img, ref, false)
	if err != nil {
		return nil, nil, err
	}
	var names []string
	for _, d := range m {
		if t == nil || slices.ContainsFunc(d.RepoTags, func(s string) bool { return sameTag(s, *t) }) {
			names = d.Layers
			break
		}
	}
	blobs, err := archiveLayers(file, names)
	return facts, blobs, err
}

// sameTag compares tags by their resolved names, as go-containerregistry
// does when it picks the image.
func sameTag(s string, t name.Tag) bool {
	nt, err := name.NewTag(s)
	return err == nil && nt.Name() == t.Name()
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

func openRemote(ctx context.Context, rest string, want v1.Platform, insecure bool) (v1.Image, *snapshot.Image, error) {
	var nopts []name.Option
	ropts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(authn.DefaultKeychain),
		remote.WithPlatform(want),
	}
	if insecure {
		nopts = append(nopts, name.Insecure)
		tr := remote.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for with --insecure
		ropts = append(ropts, remote.WithTransport(tr))
	}
	ref, err := name.ParseReference(rest, nopts...)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: reference %q: %v", ErrBadSource, rest, err)
	}
	img, err := remote.Image(ref, ropts...)
	if err != nil {
		return nil, nil, fmt.Errorf("fetch %s (check the name, your docker login, and --insecure for a plain-HTTP registry): %w", ref.Name(), err)
	}
	facts, err := imageFacts(img, ref.Name(), true)
	return img, facts, err
}

// imageFacts reads what the manifest and config say. withManifest is false
// for images whose manifest would have to be computed (docker archives).
func imageFacts(img v1.Image, ref string, withManifest bool) (*snapshot.Image, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("read image config: %w", err)
	}
	cn, err := img.ConfigName()
	if err != nil {
		return nil, fmt.Errorf("read image config: %w", err)
	}
	facts := &snapshot.Image{
		Reference:    ref,
		ConfigDigest: cn.String(),
		Env:          cf.Config.Env,
		Entrypoint:   cf.Config.Entrypoint,
		Cmd:          cf.Config.Cmd,
		User:         cf.Config.User,
		WorkingDir:   cf.Config.WorkingDir,
		OS:           cf.OS,
		Architecture: cf.Architecture,
	}
	if len(cf.Config.Labels) > 0 {
		facts.Labels = cf.Config.Labels
	}
	for p := range cf.Config.ExposedPorts {
		facts.ExposedPorts = append(facts.ExposedPorts, p)
	}
	slices.Sort(facts.ExposedPorts)
	for v := range cf.Config.Volumes {
		facts.Volumes = append(facts.Volumes, v)
	}
	slices.Sort(facts.Volumes)
	if withManifest {
		d, err := img.Digest()
		if err != nil {
			return nil, fmt.Errorf("read image manifest: %w", err)
		}
		m, err := img.Manifest()
		if err != nil {
			return nil, fmt.Errorf("read image manifest: %w", err)
		}
		facts.Digest = d.String()
		for _, l := range m.Layers {
			facts.Layers = append(facts.Layers, snapshot.Layer{Digest: l.Digest.String(), Size: l.Size})
		}
	} else {
		for _, h := range cf.RootFS.DiffIDs {
			facts.Layers = append(facts.Layers, snapshot.Layer{Digest: h.String()})
		}
	}
	return facts, nil
}
