// Command imagefixture turns root filesystem tarballs (as mmdebstrap
// writes them) into the images bench/scan-vs-syft.sh scans: a docker
// archive, an OCI layout, and the same image served by an in-process
// registry on 127.0.0.1.
//
//	imagefixture -out DIR [-churn] rootfs.tar [more-layer.tar ...]
//	imagefixture -serve DIR/oci -addr-file F   # serves until killed
//
// Each tarball becomes one gzip layer, in order. -churn appends four
// generated layers that add, overwrite and delete files of the layers
// below (whiteouts, an opaque directory) without touching what the
// package manager installed, so the image has five layers and the same
// packages.
package main

import (
	"archive/tar"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func main() {
	out := flag.String("out", "", "folder to write image.tar (docker archive) and oci/ (OCI layout) into")
	serve := flag.String("serve", "", "OCI layout to push to an in-process registry and serve")
	addrFile := flag.String("addr-file", "", "with -serve: write the registry's host:port here once it listens")
	churn := flag.Bool("churn", false, "append four layers that add, overwrite and delete files")
	flag.Parse()
	var err error
	switch {
	case *out != "" && flag.NArg() > 0:
		err = build(*out, flag.Args(), *churn)
	case *serve != "":
		err = serveLayout(*serve, *addrFile)
	default:
		flag.Usage()
		os.Exit(2)
	}
	if err != nil {
		log.Fatal("imagefixture: ", err)
	}
}

func build(out string, tars []string, churn bool) error {
	img := empty.Image
	for _, t := range tars {
		l, err := tarball.LayerFromFile(t)
		if err != nil {
			return fmt.Errorf("layer %s: %w", t, err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			return err
		}
	}
	if churn {
		for _, ents := range churnLayers() {
			b, err := tarOf(ents)
			if err != nil {
				return err
			}
			l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
			if err != nil {
				return err
			}
			if img, err = mutate.AppendLayers(img, l); err != nil {
				return err
			}
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	// Compute the compressed layers once; both writers below reuse them.
	if _, err := img.Manifest(); err != nil {
		return err
	}
	tag, err := name.NewTag("bench/image:1")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if err := tarball.WriteToFile(filepath.Join(out, "image.tar"), tag, img); err != nil {
		return err
	}
	lp, err := layout.Write(filepath.Join(out, "oci"), empty.Index)
	if err != nil {
		return err
	}
	return lp.AppendImage(img)
}

type entry struct {
	name string
	body []byte
	dir  bool
}

// churnLayers are what later layers of real images do: add an
// application, replace some of its files, delete a large one, empty a
// directory of the base (opaque), remove another, and finally replace the
// application wholesale.
func churnLayers() [][]entry {
	var l2, l4 []entry
	l2 = append(l2, entry{name: "opt/app/", dir: true})
	for i := range 2000 {
		l2 = append(l2, entry{name: fmt.Sprintf("opt/app/f%04d.txt", i), body: bytes.Repeat([]byte{byte('a' + i%26)}, 1024)})
	}
	l2 = append(l2, entry{name: "opt/app/blob", body: bytes.Repeat([]byte("0123456789"), 2_000_000)})
	l3 := []entry{
		{name: "opt/app/.wh.blob"},
		{name: "usr/share/doc/.wh..wh..opq"},
		{name: "usr/share/doc/README", body: []byte("docs removed\n")},
	}
	l4 = append(l4, entry{name: "usr/share/.wh.man"})
	for i := 0; i < 2000; i += 2 {
		l4 = append(l4, entry{name: fmt.Sprintf("opt/app/f%04d.txt", i), body: []byte("overwritten\n")})
	}
	l5 := []entry{{name: "opt/.wh.app"}, {name: "opt/app/", dir: true}, {name: "opt/app/final", body: []byte("final\n")}}
	return [][]entry{l2, l3, l4, l5}
}

func tarOf(ents []entry) ([]byte, error) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e.body))}
		if e.dir {
			h.Mode, h.Typeflag, h.Size = 0o755, tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, err
		}
	}
	err := tw.Close()
	return b.Bytes(), err
}

func serveLayout(dir, addrFile string) error {
	lp, err := layout.FromPath(dir)
	if err != nil {
		return err
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		return err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	if len(im.Manifests) != 1 {
		return fmt.Errorf("%s: want one image, have %d", dir, len(im.Manifests))
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: registry.New(registry.Logger(log.New(os.Stderr, "", 0)), registry.WithBlobHandler(registry.NewInMemoryBlobHandler()))}
	go srv.Serve(ln)
	ref, err := name.NewTag(ln.Addr().String() + "/bench/image:1")
	if err != nil {
		return err
	}
	if err := remote.Write(ref, img, remote.WithContext(context.Background())); err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	if addrFile != "" {
		if err := os.WriteFile(addrFile, []byte(ln.Addr().String()), 0o644); err != nil {
			return err
		}
	}
	fmt.Println(ref)
	select {}
}
