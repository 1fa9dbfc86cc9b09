// Package runstate keeps what must outlive one incarnation of a host's
// daemon on this boot, in one file under [daemon] run_dir (default
// /run/hbfence, emptied at boot): the hypervisor orders an incarnation
// issued and has not yet confirmed (a start, stop, kill or migration the
// hypervisor may still be carrying out after the daemon crashed), and the newest
// generation this host's daemon claimed in the pool.
//
// # Why a file, and why this one
//
// The daemon is not the host: it may crash, be restarted by systemd, or be
// re-executed by an upgrade while its guests run on. What it ordered from
// its hypervisor and has not confirmed is a fact about the host, not about
// the process, so it is written down before the order is issued
// (write-ahead) and removed only once the order is confirmed. A successor
// reads it and must confirm each order settled before it reports the guest
// as not running (restart/agent).
//
// # How it is written
//
// One writer: the daemon that holds the instance lock of this host and pool
// (internal/daemon). Every Update reads the file, applies the change and
// writes the whole file to a temporary name, fsyncs it, renames it over
// the old one and fsyncs the directory: a reader sees the old state or the
// new one, never a mix, also across a crash of the daemon. (A crash of the
// machine empties /run anyway: the machine's reset stopped every guest.)
//
// # Bad input
//
// A file that cannot be parsed, or that names another pool or host, is an
// error naming the file and what to do; it is never taken as empty, since
// an order it held could then be forgotten.
package runstate
