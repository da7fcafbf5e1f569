//go:build race

package idtxtest_test

const raceEnabled = true
