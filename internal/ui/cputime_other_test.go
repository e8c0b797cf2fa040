//go:build !linux

package ui_test

import "time"

// threadCPU is unknown here: the benchmark reports 0.
func threadCPU() time.Duration { return 0 }
