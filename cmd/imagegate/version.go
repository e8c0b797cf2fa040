package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime/debug"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// toolVersion is what `imagegate version` prints: the -o json form is a
// contract (fields added, never renamed).
type toolVersion struct {
	// Version is the module version the binary was built as (v0.3.1 from
	// go install …@v0.3.1, a pseudo-version from go build in a clone), or
	// "dev" when the build recorded none.
	Version string `json:"version"`
	// Commit is the VCS revision ("" when not built from a clone), and
	// Modified whether the work tree had uncommitted changes.
	Commit   string `json:"commit,omitempty"`
	Time     string `json:"commitTime,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"goVersion"`
	Platform string `json:"platform,omitempty"`
}

// versionOf reads a toolVersion from build info (ok false: none recorded).
func versionOf(info *debug.BuildInfo, ok bool) toolVersion {
	v := toolVersion{Version: "dev"}
	if !ok || info == nil {
		return v
	}
	v.Go = info.GoVersion
	if mv := info.Main.Version; mv != "" && mv != "(devel)" {
		v.Version = mv
	}
	var goos, goarch string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		case "GOOS":
			goos = s.Value
		case "GOARCH":
			goarch = s.Value
		}
	}
	if goos != "" && goarch != "" {
		v.Platform = goos + "/" + goarch
	}
	return v
}

// scannerVersion is the version written into snapshots.
func scannerVersion() string { return versionOf(debug.ReadBuildInfo()).Version }

type versionOptions struct{ output string }

func newVersionCmd(g *globalOptions) *cobra.Command {
	var o versionOptions
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print imagegate's version, commit and Go version",
		Long: `Print the version of this imagegate binary, from what the Go toolchain recorded when
it was built: the module version ("dev" when there is none, as for go run), the commit
and whether the work tree was modified, and the Go version.

Exit codes:
  0  success
  2  usage error`,
		Example: "  imagegate version\n  imagegate version -o json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVersion(o, versionOf(debug.ReadBuildInfo()), cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	// The image-version commands lived here before `image`; the old
	// spelling keeps working, hidden, for one release.
	cmd.AddCommand(imageVersionCmds(&clientOptions{}, "imagegate image")...)
	return cmd
}

func runVersion(o versionOptions, v toolVersion, stdout io.Writer) error {
	switch o.output {
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "text", "table", "":
	default:
		return usageErrorf("-o %q: want text or json", o.output)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "version:\t%s\n", v.Version)
	commit := v.Commit
	if commit == "" {
		commit = "unknown (not built from a git clone)"
	} else if v.Modified {
		commit += " (modified)"
	}
	fmt.Fprintf(tw, "commit:\t%s\n", commit)
	if v.Time != "" {
		fmt.Fprintf(tw, "committed:\t%s\n", v.Time)
	}
	fmt.Fprintf(tw, "go:\t%s\n", dash(v.Go))
	if v.Platform != "" {
		fmt.Fprintf(tw, "platform:\t%s\n", v.Platform)
	}
	return tw.Flush()
}
