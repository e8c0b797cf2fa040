package main

import (
	"context"
	"io"
	"os"
	"slices"
	"time"

	"github.com/imagegate/imagegate/internal/sbom"
	"github.com/imagegate/imagegate/internal/scan"
	"github.com/imagegate/imagegate/internal/snapshot"
	"github.com/imagegate/imagegate/internal/source"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

type scanOptions struct {
	format        string
	out           string
	exec          string
	insecure      bool
	moduleTimeout time.Duration
	toolTimeout   time.Duration
	tempDir       string
	maxFileSize   int64
	maxTotalSize  int64
	maxEntries    int
	platform      string
	cacheDir      string
	// inMemory streams an image into memory instead of extracting it:
	// when nothing will run and nothing reads the files after the scan.
	inMemory bool
}

// scanFormats are what scan writes: the snapshot's own renderings, then
// the SBOMs made from it.
var scanFormats = append(slices.Clip(snapshot.Formats), sbom.Formats...)

func newScanCmd(g *globalOptions) *cobra.Command {
	var o scanOptions
	cmd := &cobra.Command{
		Use:   "scan SOURCE",
		Short: "Inventory an image into a snapshot",
		Long: `Inventory an image: OS packages, every runtime and its standard-library modules
(whether each really imports), and the tools on PATH. SOURCE is one of:
  dir:PATH                    an unpacked root filesystem, or a tool folder (a tool cache,
                              one installation prefix), told apart by what it holds
  host                        the machine imagegate runs on
  oci:PATH[@DIGEST]           an OCI image layout
  docker-archive:FILE[:TAG]   a 'docker save' tarball (:TAG picks one of several images)
  registry:REF                an image in a registry (docker credentials; --insecure for plain HTTP)

` + exitHelpScan,
		Example: "  imagegate scan host -o table\n  imagegate scan dir:/opt/hostedtoolcache --exec none --out snapshot.json\n" +
			"  imagegate scan registry:ghcr.io/org/image@sha256:… -o cyclonedx-json --out sbom.cdx.json",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runScan(cmd.Context(), g, o, args[0], cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	addOutputFlags(f, &o.format, &o.out, "", "output format: "+scanFormats.String()+" (default json, table on a terminal)")
	o.addFlags(f, "how to run the image's programs: auto, none, local or chroot")
	return cmd
}

// addOutputFlags registers -o/--output (format, with its default and help)
// and --out, as every command that writes a report has them.
func addOutputFlags(f *pflag.FlagSet, format, out *string, def, help string) {
	f.StringVarP(format, "output", "o", def, help)
	f.StringVar(out, "out", "", "write the output to this file instead of stdout")
}

// addFlags registers the flags of every command that may scan a SOURCE.
func (o *scanOptions) addFlags(f *pflag.FlagSet, execHelp string) {
	f.StringVar(&o.exec, "exec", scan.ExecAuto, execHelp)
	f.BoolVar(&o.insecure, "insecure", false, "registry: allow plain HTTP and unverified TLS")
	f.StringVar(&o.platform, "platform", "", "image platform to pick from a multi-platform image, e.g. linux/arm64 (default this machine's)")
	f.DurationVar(&o.moduleTimeout, "module-timeout", 10*time.Second, "limit for importing one module")
	f.DurationVar(&o.toolTimeout, "tool-timeout", 5*time.Second, "limit for one tool version probe")
	f.StringVar(&o.tempDir, "temp-dir", "", "where image layers are unpacked (default $TMPDIR)")
	f.Int64Var(&o.maxFileSize, "max-file-size", 0, "largest file accepted from an image layer, in bytes (default 8 GiB)")
	f.Int64Var(&o.maxTotalSize, "max-total-size", 0, "largest unpacked image accepted, in bytes (default 64 GiB)")
	f.IntVar(&o.maxEntries, "max-entries", 0, "most entries accepted in an image's layers (default 5 million)")
	f.StringVar(&o.cacheDir, "cache-dir", source.DefaultCacheDir(), `where registry: layers are kept between scans, by digest ("" = none)`)
}

func runScan(ctx context.Context, g *globalOptions, o scanOptions, spec string, stdout io.Writer) error {
	format := o.format
	if format == "" {
		format = defaultFormat(stdout, o.out)
	}
	if err := scanFormats.Check(format); err != nil {
		return err
	}
	// Only the snapshot is wanted: with nothing to run, the image need
	// not be written anywhere.
	o.inMemory = o.exec == scan.ExecNone
	snap, err := snapshotOnly(scanForGate(ctx, g, o, spec))
	if err != nil {
		return err
	}
	return writeOutput(stdout, o.out, func(w io.Writer) error { return scanFormats.Write(w, format, snap) })
}

// scanForGate opens and scans one SOURCE and keeps the image's files until
// the tree is closed, for the spec tests that read them or run programs.
func scanForGate(ctx context.Context, g *globalOptions, o scanOptions, spec string) (*snapshot.Snapshot, *source.Tree, error) {
	progress, erase := newProgress(g.stderr, g.verbose)
	tree, err := source.Open(ctx, spec, source.Options{
		Insecure:     o.insecure,
		TempDir:      o.tempDir,
		MaxFileSize:  o.maxFileSize,
		MaxTotalSize: o.maxTotalSize,
		MaxEntries:   o.maxEntries,
		Platform:     o.platform,
		InMemory:     o.inMemory,
		Logger:       g.logger(),
		CacheDir:     o.cacheDir,
		Progress:     progress,
	})
	erase()
	if err != nil {
		return nil, nil, err
	}
	snap, err := scan.Scan(ctx, tree, scan.Options{
		Exec:           o.exec,
		ModuleTimeout:  o.moduleTimeout,
		ToolTimeout:    o.toolTimeout,
		ScannerVersion: scannerVersion(),
		Logger:         g.logger(),
		HostPATH:       os.Getenv("PATH"),
	})
	if err != nil {
		tree.Close()
		return nil, nil, err
	}
	return snap, tree, nil
}
