// Package store keeps the pool's guest records on the cluster root: the
// pool configuration with the guest definitions, the master's plan, and one
// report per host. Each is a record file written in place with O_DIRECT and
// O_DSYNC by one writer at a time and read with O_DIRECT by everyone, so
// that no host's page cache or NFS attribute cache serves an old copy.
//
// # Record files
//
// A record file holds one record from byte 0: a 64-byte header (magic
// "HBRC", format version, kind, the writer's sequence and epoch, the
// payload's length and its CRC-32C, the header's own CRC-32C), then the
// payload, JSON, padded with zeroes to the storage's direct-I/O alignment.
// A record is written with one write of the whole padded record; a reader
// reads the first aligned block, then the rest. A read that mixes two
// writes, or a write that tore, fails its checksum and reads as ErrTorn:
// the reader keeps what it had (no change seen) and reads again at its next
// round, never acting on a mix.
//
// # Who writes what
//
//   - pool: the pool's configuration and guest definitions; written by the
//     master only (the CLI goes through the master's daemon), stamped with
//     its epoch.
//   - plan: written by the master of its epoch only, stamped with it.
//   - hosts/NAME: written by host NAME only (its current incarnation).
//
// Masters change, so pool and plan have had several writers over time,
// but never two at once (the master lease); a write of an old master that
// lands late carries an older epoch and is refused by readers that check
// the epoch (lease.Validator), and the current master writes its record
// again every round.
//
// # Which pool
//
// Every record names the pool of its writer's heartbeat area (the header's
// bytes 40..55; Store.BindPool). A record of another pool is refused with
// an *OtherPoolError and never used: a heartbeat area re-created at the
// same path makes a second pool on the first one's cluster root, and
// without the name the second pool's master read the first pool's guests
// as its own and wrote its plan over theirs. A master that finds the pool
// record or the plan of another pool writes neither (restart/agent); a
// report of another pool counts as a host that cannot be read, which holds
// the guests it may run. A record that names no pool was written before
// records named theirs: it is read as before, and its writer's next write
// names the pool.
//
// # Repair
//
// Every write of the pool record is followed by a write of its backup
// copy, pool.backup (the same configuration with the record's epoch and
// sequence). A pool record that can no longer be read blocks every change
// (an edit of a record one cannot read would write itself alone over the
// pool's guests); hbfence pool repair, on the master, writes the newer of
// the master's last good copy and the backup over it, after keeping the
// unreadable file as pool.unreadable-TIME: nothing is lost, and the
// operator is told which epoch and sequence came back.
//
// # Fields added within a version
//
// A record's payload is JSON: fields are added within format version 1
// (with omitempty, so that a record without them reads as their zero
// value), never renamed or removed. The manager relation (PoolConfig
// ManagedBy, GuestDef Manages) was added so; testdata holds a pool record
// written by the build before it, which the tests read. An older build
// ignores a field it does not know, and drops it when it writes the
// record again as master: a relation recorded in a pool with such a host
// is lost at that host's first change of the pool record.
//
// # Timing assumptions
//
// Every I/O is bounded by the pool's io_timeout (heartbeat/directio). A
// write that timed out may still land later; a record carries its writer's
// epoch so that a late write of an old master is refused by readers that
// check it, and the current master writes its records again while it
// holds the epoch.
package store
