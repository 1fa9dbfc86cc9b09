package restart

import "strings"

// IsManager reports whether the guest of this UUID manages the pool
// (Pool.ManagedBy): the pool it manages never restarts it as HA (the
// Oracle VM rule: the manager may be an HA guest, but of another pool).
// UUIDs compare without regard to case.
func (p Pool) IsManager(uuid string) bool {
	return p.ManagedBy != "" && strings.EqualFold(p.ManagedBy, uuid)
}
