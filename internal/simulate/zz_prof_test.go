package simulate_test

import (
	"testing"

	"github.com/imagegate/imagegate/internal/simulate"
)

func TestZZProf(t *testing.T) {
	p := simulate.DefaultParams()
	p.DryRun = true
	p.HistoryHours = 1
	p.Hours = 3
	p = p.WithDefaults()
	rep, _, err := simulate.Run(t.Context(), p, simulate.Options{Seeds: 1, SeedStart: 1, Open: simulate.SQLiteOpener(t.TempDir())})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", rep.Timing)
}
