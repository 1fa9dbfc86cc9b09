//go:build race

package lease_test

// The race detector slows the simulation about fivefold.
const defaultSeeds = 250
