package client_test

import (
	"context"
	"log"
	"time"

	"github.com/imagegate/imagegate/client"
)

// A runner resolves the image of each job and reports how it went. When the
// imagegate server is down, Resolve still answers (the last answer for the
// org, else the label's default) and Report keeps the events until the
// server is back.
func Example() {
	ctx := context.Background()
	c, err := client.New(ctx, client.Options{
		Server:   "https://imagegate.example.com",
		Token:    "runner-token",
		Labels:   []string{"ubuntu-22.04"}, // fetch their defaults now, for the fallback
		SpoolDir: "/var/lib/runner/imagegate",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		// Deliver what is queued; what cannot be is kept in SpoolDir.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			log.Print(err)
		}
	}()

	res, err := c.Resolve(ctx, "acme", "ubuntu-22.04", "run-4711")
	if err != nil {
		log.Fatal(err) // the label is unknown, or the server was never reached
	}
	started := time.Now()
	// ... run the job on res.Version ...
	if err := c.Report(ctx, client.JobEvent{
		JobID: "run-4711-job-1", Org: "acme", Label: res.Label, Version: res.Version, Ring: res.Ring,
		Pipeline: "acme/app/.github/workflows/ci.yml", RunID: "run-4711",
		Outcome: client.OutcomeSucceeded, StartedAt: started, DurationMs: time.Since(started).Milliseconds(),
	}); err != nil {
		log.Print(err)
	}
}
