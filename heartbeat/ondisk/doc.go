// Package ondisk encodes and decodes the records of a heartbeat area: the
// header in the area's first sector, one slot record per host, the message
// cells inside a slot record, and the master lease's leader record and
// ballot blocks (lease.go). The byte tables are in the comments on Header,
// Slot, Ballot and Leader, and in the project's docs/format.md for the
// header and the slots.
//
// # Format
//
// Every record is RecordSize (512) bytes at the start of its sector; the
// sector is 512 or 4096 bytes and the rest of it is written as zeroes and not
// read. All integers are little-endian. Every record starts with a magic
// ("HBFENCE1" for the header, "HBSL" for a slot) and ends with the CRC-32C
// (Castagnoli) of its bytes 0..507, stored in bytes 508..511.
//
// The area is laid out in sectors: 0 the header, 1 the leader record of the
// master lease, 2..7 reserved, then one sector per slot, then one ballot
// sector per slot for the master lease's Disk Paxos. NewHeader computes the
// byte offsets of these regions and the header stores them; readers take
// them from the header, so a later format may move regions.
//
// Versions: the header carries a major and a minor format version. A reader
// refuses a header whose major is higher than FormatMajor; a higher minor is
// read, because a minor version only adds fields in bytes that older
// versions keep zero (the checksum covers them). A slot record carries its
// own version; a record newer than SlotVersion decodes as SlotNewer.
//
// # Safety
//
// Each sector has one writer: the header is written only by "hbfence init",
// a slot only by the host that won it, the leader and ballot sectors only
// through the master-lease protocol. Nothing in this package does I/O.
//
// Decoding never panics, whatever the bytes.
// DecodeHeader returns an error that says what was found: zeroes, another
// program's data, a torn header, a newer major version, or a layout or
// timing that breaks the rules (see package timing). DecodeSlot returns
// SlotOK only for a record with the slot magic, a correct checksum, a record
// version from 1 to SlotVersion, this pool's UUID, this slot's index, a state
// from joining to left, and a non-empty host name; anything else comes back
// as SlotUnused, SlotCorrupt, SlotForeign, SlotMisplaced or SlotNewer with a
// reason, and callers treat it as "no change seen": never as a crash, never
// as evidence that a host is alive.
//
// Changed defines what counts as a new write of a slot: a different
// generation, sequence, join nonce, state or host name. The writer bumps the
// sequence on every write and the generation on every join.
//
// # What it does not guarantee
//
//   - The checksum catches torn and scribbled records, not a stale one: an
//     old, valid record returned by storage again decodes as SlotOK, and
//     because Changed compares for inequality it looks like a new write.
//   - Nothing is authenticated. Any process that can write the area can
//     forge any record.
//   - Wall-clock times in records (header creation, slot write time) are for
//     humans; no decision uses them.
//   - Raising SlotVersion makes hosts of older builds decode every record
//     of the new version as SlotNewer: they see no change from a host that
//     writes it (it turns suspect, or stays unknown) and no proof of its
//     silence either (it never turns dead). A new slot version needs a pool-wide upgrade plan, or a
//     minor-version rule like the header's, before it is written.
package ondisk
