package journal

// The MESSAGE_ID of each kind of event hbfence logs, fixed 128-bit ids
// (generated once; never change one: journalctl MESSAGE_ID=..., the
// catalog and the operators' alerts refer to them). Each has an entry in
// packaging/hbfence.catalog (journalctl -x shows it); TestCatalog checks
// both ways.
const (
	// MsgHostSuspect: a peer's slot stopped changing for longer than
	// suspect.
	MsgHostSuspect ID = "1963428153104dfeb8bb0913e0fd05de"
	// MsgHostDead: a peer has been silent for host_dead: it is fenced
	// (or reset by its watchdog); its guests may be restarted.
	MsgHostDead ID = "08aee50846bb4bd997667fca7c72d42a"
	// MsgHostLeft: a peer wrote "left" (a clean stop).
	MsgHostLeft ID = "00d0bf327a9a4c7e9fd13e1ff491120d"
	// MsgFence: this host fences itself (the watchdog is no longer
	// fed, its guests are killed), and how the fence ended.
	MsgFence ID = "8be6ad7ca3084be3acea8dca77de549e"
	// MsgUnsafe: this host cannot keep the pool's promise (no watchdog
	// to trust, guests not confirmed gone).
	MsgUnsafe ID = "797c0b72a49042a0a469693aad5f27ab"
	// MsgMasterChange: the pool master changed (a new epoch).
	MsgMasterChange ID = "aa7a606e1a584c96bb84b0bb577a0395"
	// MsgGuestRestarted: a guest was started on this host by the
	// pool's plan (a restart after a failure, a placement).
	MsgGuestRestarted ID = "43eec5f18b2e4335ae09e87e6d2da501"
	// MsgGuestPending: a guest waits for a host to be placed on.
	MsgGuestPending ID = "6e5814c36f384df59ddc608836ea3b24"
	// MsgGuestError: a guest could not be started, stopped or
	// migrated, or the plan raised an alarm about it.
	MsgGuestError ID = "3f8882bced9f4ea08352fb5af0365815"
	// MsgStorageLatency: the heartbeat's storage is slow enough to
	// use up a large part of its budget (io_timeout, renewal_fail).
	MsgStorageLatency ID = "b85304160a6d466f80a0108130513690"
	// MsgAreaReplaced: the heartbeat area under a running daemon was
	// replaced (another pool's header, a reformat).
	MsgAreaReplaced ID = "6026ad222b9e43d8b467376834c36123"
)

// All is every MESSAGE_ID with its constant's name, for the catalog test.
var All = map[string]ID{
	"MsgHostSuspect":    MsgHostSuspect,
	"MsgHostDead":       MsgHostDead,
	"MsgHostLeft":       MsgHostLeft,
	"MsgFence":          MsgFence,
	"MsgUnsafe":         MsgUnsafe,
	"MsgMasterChange":   MsgMasterChange,
	"MsgGuestRestarted": MsgGuestRestarted,
	"MsgGuestPending":   MsgGuestPending,
	"MsgGuestError":     MsgGuestError,
	"MsgStorageLatency": MsgStorageLatency,
	"MsgAreaReplaced":   MsgAreaReplaced,
}
