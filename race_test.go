//go:build race

package rsqlite_test

// raceEnabled: the race detector slows everything ~10x, so tests that start
// hundreds of raft replicas in one process use fewer.
const raceEnabled = true
