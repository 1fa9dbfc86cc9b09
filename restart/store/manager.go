package store

import "github.com/hbfence/hbfence/restart"

// IsManager reports whether the guest of this UUID is the one the pool
// record names as this pool's manager (ManagedBy).
func (c PoolConfig) IsManager(uuid string) bool {
	return restart.Pool{ManagedBy: c.ManagedBy}.IsManager(uuid)
}
