// Command imagefixture turns root filesystem tarballs (as mmdebstrap
// writes them) into the images bench/scan-vs-syft.sh scans: a docker
// archive, an OCI layout, and the same image served by an in-process
// registry on 127.0.0.1.
//
//	imagefixture -out DIR rootfs.tar [more-layer.tar ...]
//	imagefixture -serve DIR/oci -addr-file F   # serves until killed
//
// Each tarball becomes one gzip layer, in order.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
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
	flag.Parse()
	var err error
	switch {
	case *out != "" && flag.NArg() > 0:
		err = build(*out, flag.Args())
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

func build(out string, tars []string) error {
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

var _ v1.Image = empty.Image
