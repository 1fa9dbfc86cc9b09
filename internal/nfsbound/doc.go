// Package nfsbound says how long a write to an NFS mount may stay in flight,
// from the mount's options, and refuses a mount on which that has no bound.
//
// Why it matters. The master lease and the join rely on every write landing
// within lease.LateWrite (the watchdog period) of its issue or never, also
// when the daemon that issued it was killed (heartbeat/lease doc.go, "Late
// writes of an earlier incarnation"). On NFS a killed process's O_DIRECT
// write is not cancelled: the client keeps its RPC and retransmits it. On a
// hard mount (the default) it does so for ever, and the write may land at
// any later moment, over a successor's records. On a soft mount the client
// gives the request up after retrans retransmissions and fails it with EIO;
// its life is then bounded by the retransmission timeouts:
//
//   - over TCP (proto=tcp, the default for NFS v3 and v4, and the only
//     transport of v4.1+) the wait grows by timeo after each retransmission,
//     up to 600 s: timeo × (1 + 2 + … + (retrans + 1));
//   - over UDP it doubles, up to 60 s: timeo × (2^(retrans+1) − 1).
//
// timeo is in tenths of a second (default 600 over TCP, 11 over UDP),
// retrans defaults to 2 over TCP and 3 over UDP (nfs(5)).
//
// What the daemon requires: the mount holding the heartbeat area is soft
// (or softerr) and its request life is at most three quarters of
// LateWrite; the last quarter is left for the server's own queueing, which
// no client option bounds. Advice gives the options: for the default
// profile (watchdog 10 s), soft,timeo=12,retrans=2, a request life of 7.2 s. Mount the cluster root so; the
// repositories holding disk images stay hard (a soft mount can corrupt a
// guest's disk on a server failover), and only the cluster root's
// heartbeat and pool records need the bound.
//
// What it does not check: the server (a server that holds requests longer
// than the slack breaks the bound), block devices (their bound is the SCSI
// command timeout and multipath's no_path_retry: docs/timing.md), and NFS
// mounted after the daemon started.
package nfsbound
