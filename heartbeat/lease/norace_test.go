//go:build !race

package lease_test

const defaultSeeds = 2000
