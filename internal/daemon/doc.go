package daemon

// # One daemon per host (hostlock.go)
//
// The join's fast path (heartbeat/join, doc.go) takes this machine's slot
// without the join wait when it bears this host's name, machine id and boot
// id: it trusts that the incarnation that wrote it is dead. That holds only
// if no other daemon of this machine serves the same host of the same pool.
// A lock file named after a configured path (the control socket's
// "<socket>.lock") proves nothing: a second configuration with another
// socket took the slot by the fast path, and the two fenced each other in a
// loop.
//
// The host lock is a Linux abstract unix socket named
// "hbfence/<pool uuid>/<hash of machine id and host name>", bound and
// listening from before the join until the process ends. Its name depends
// only on what the fast path compares (the pool in the area's header, the
// machine id, the host name), never on a path, so every daemon of this
// machine for that host and pool finds it. The kernel releases it when the
// last descriptor of the socket closes, however the process dies (SIGKILL
// included), so a crashed daemon never blocks its successor, and no stale
// file is left to remove. A second daemon's bind fails with EADDRINUSE at
// once; it connects to the socket (a non-blocking connect, which never
// waits) and names the holder's pid from SO_PEERCRED. The descriptor can be
// handed to a re-executed image (HostLock.File, HostLockFromFile), which
// keeps the lock held across the exec with no gap.
//
// Limits. Abstract unix socket names are scoped to a network namespace: two
// daemons of one machine in different network namespaces (containers with
// their own network, `ip netns exec`, systemd PrivateNetwork=) do not see
// each other's lock. hbfence must run in the host's network namespace (the
// packaged unit does; do not set PrivateNetwork=), and at most one container
// or namespace of a machine may run a daemon for a given pool. A configured
// [host] machine_id that differs between two daemons of one machine makes
// them two machines to the lock, as it does to the join (which then takes
// the normal path and refuses the name in use). Any local process of the
// same namespace can bind the name first and keep the daemon from starting
// (a denial of service, never a safety loss); the refusal names its pid.
