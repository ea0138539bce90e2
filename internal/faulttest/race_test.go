//go:build race

package faulttest

import "time"

// livenessBound is how soon after the last heal every node must write
// again: 5 s, the guarantee, in normal builds; the race detector slows the
// three nodes and the clients about tenfold on CI's two cores, so there
// the bound only catches a cluster that never recovers.
const livenessBound = 20 * time.Second
