package main

// The plumbing every client command (version, rollout, pin, resolve)
// shares: where the server is, the token, and the output format.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/imagegate/imagegate/internal/apiclient"
)

const clientHelp = `Talks to an imagegate server: --server URL or IMAGEGATE_SERVER, with the
token in IMAGEGATE_TOKEN. --server @FILE reads the URL from FILE (as written by
serve --addr-file), waiting up to 15s for it to appear. An https:// server whose
certificate a private CA signed is trusted with --ca-cert FILE or IMAGEGATE_CA_CERT.
Output: -o json (the API's JSON, the default when stdout is not a terminal) or -o table.

` + exitHelpClient

// documentClient gives every command under a client group (image, rollout,
// pin) that has no long help of its own the group's: where the server is,
// and the client exit codes.
func documentClient(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		if c.Long == "" {
			c.Long = c.Short + ".\n\n" + clientHelp
		}
		documentClient(c)
	}
}

// clientOptions are the flags every client command shares.
type clientOptions struct {
	server string
	caCert string
	output string
	getenv func(string) string
}

func (o *clientOptions) register(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVar(&o.server, "server", "", "server URL (default $IMAGEGATE_SERVER); @FILE reads it from FILE")
	f.StringVar(&o.caCert, "ca-cert", "", "PEM file of the CA that signed the server's certificate, trusted besides the system's (default $IMAGEGATE_CA_CERT)")
	f.StringVarP(&o.output, "output", "o", "", "output format: json or table (default json unless stdout is a terminal)")
}

func (o *clientOptions) client(ctx context.Context) (*apiclient.Client, error) {
	getenv := o.getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	url := o.server
	if url == "" {
		url = getenv("IMAGEGATE_SERVER")
	}
	if file, ok := strings.CutPrefix(url, "@"); ok {
		var err error
		if url, err = waitForURL(ctx, file, 15*time.Second); err != nil {
			return nil, err
		}
	}
	ca := o.caCert
	if ca == "" {
		ca = getenv("IMAGEGATE_CA_CERT")
	}
	hc, err := apiclient.HTTPClient(ca, 60*time.Second)
	if err != nil {
		return nil, usageErrorf("%v", err)
	}
	return apiclient.New(url, getenv("IMAGEGATE_TOKEN"), hc)
}

// waitForURL reads a server URL from file, waiting for a server that is
// still starting to write it.
func waitForURL(ctx context.Context, file string, wait time.Duration) (string, error) {
	deadline := time.Now().Add(wait)
	for {
		b, err := os.ReadFile(file)
		if url := strings.TrimSpace(string(b)); err == nil && url != "" {
			return url, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s: %w: no server URL in it after %v (is imagegate serve --addr-file %s running?)", file, apiclient.ErrUnreachable, wait, file)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (o *clientOptions) format(stdout io.Writer) (string, error) {
	switch o.output {
	case "":
		return defaultFormat(stdout, ""), nil
	case "json", "table":
		return o.output, nil
	}
	return "", usageErrorf("-o %q: want json or table", o.output)
}

// emit writes v as indented JSON or, for people, as the table that table
// writes.
func (o *clientOptions) emit(stdout io.Writer, v any, table func(w *tabwriter.Writer)) error {
	format, err := o.format(stdout)
	if err != nil {
		return err
	}
	if format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

func ts(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// readJSONFile reads an optional JSON file given by a flag ("" is none).
func readJSONFile(path, what string) (json.RawMessage, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("%s %s is not JSON", what, path)
	}
	return b, nil
}
