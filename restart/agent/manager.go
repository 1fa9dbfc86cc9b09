package agent

import "github.com/hbfence/hbfence/heartbeat/ondisk"

// PoolUUID is the pool this agent's records belong to (the heartbeat
// area's; zero when the store is bound to none): a guest may manage
// another pool, never this one (hbfence guest add --manages).
func (a *Agent) PoolUUID() ondisk.UUID { return a.cfg.Store.Pool() }
