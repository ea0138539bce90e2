//go:build !race

package faulttest

import "time"

// livenessBound: see race_test.go.
const livenessBound = 5 * time.Second
