//go:build !race

package rsqlite_test

const raceEnabled = false
