//go:build !unix

package service

import "time"

// processCPU is not measured here: the benchmark reports 0 µs per message.
func processCPU() time.Duration { return 0 }
