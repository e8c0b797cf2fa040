package tally_test

import (
	"testing"
	"time"

	"github.com/imagegate/imagegate/internal/store/tally"
)

// TestUnitOf: MinuteOf, HourOf and DayOf floor, so a time before 1970
// falls in the unit it is in, not in the one after it; a unit's first
// instant is in it and the instant before it is not.
func TestUnitOf(t *testing.T) {
	epoch := time.Unix(0, 0).UTC()
	t0 := time.Date(2026, 3, 1, 11, 30, 15, 0, time.UTC) // minute 29539410, hour 492323, day 20513
	for _, u := range []struct {
		name string
		of   func(time.Time) int64
		unit time.Duration
		t0   int64
	}{
		{"MinuteOf", tally.MinuteOf, time.Minute, 29539410},
		{"HourOf", tally.HourOf, time.Hour, 492323},
		{"DayOf", tally.DayOf, 24 * time.Hour, 20513},
	} {
		for _, tc := range []struct {
			name string
			at   time.Time
			want int64
		}{
			{"epoch", epoch, 0},
			{"a nanosecond after the epoch", epoch.Add(time.Nanosecond), 0},
			{"a microsecond before the epoch", epoch.Add(-time.Microsecond), -1},
			{"a nanosecond before the epoch", epoch.Add(-time.Nanosecond), -1},
			{"the unit before the epoch, exactly", epoch.Add(-u.unit), -1},
			{"just after the unit before the epoch", epoch.Add(-u.unit + time.Nanosecond), -1},
			{"just before the unit before the epoch", epoch.Add(-u.unit - time.Microsecond), -2},
			{"three units and a bit before the epoch", epoch.Add(-3*u.unit - u.unit/2), -4},
			{"the unit after the epoch, exactly", epoch.Add(u.unit), 1},
			{"just before the unit after the epoch", epoch.Add(u.unit - time.Nanosecond), 0},
			{"2026", t0, u.t0},
			{"2026, start of its unit", t0.Truncate(u.unit), u.t0},
			{"2026, end of its unit", t0.Truncate(u.unit).Add(u.unit - time.Microsecond), u.t0},
			{"2026, in another zone", t0.In(time.FixedZone("UTC-5", -5*3600)), u.t0},
			{"1900", time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), -2208988800 / int64(u.unit/time.Second)},
		} {
			if got := u.of(tc.at); got != tc.want {
				t.Errorf("%s(%s: %s) = %d, want %d", u.name, tc.name, tc.at.Format(time.RFC3339Nano), got, tc.want)
			}
		}
	}
}
