package mount

import (
	"fmt"
	"strings"
	"time"

	"github.com/hbfence/hbfence/internal/nfsbound"
)

// NFSOptions are the -o options of an NFS mount of st in role, for a
// heartbeat whose writes must land within lateWrite (doc.go says why each
// is there).
func NFSOptions(st Storage, role Role, lateWrite time.Duration) []string {
	vers := st.NFSVersion
	if vers == "" {
		vers = "3"
	}
	opts := []string{"vers=" + vers, "proto=tcp"}
	if role == RoleClusterRoot {
		a := nfsbound.Advice(lateWrite)
		opts = append(opts, "soft", fmt.Sprintf("timeo=%d", a.Timeo), fmt.Sprintf("retrans=%d", a.Retrans),
			"noac", "lookupcache=none")
	} else {
		opts = append(opts, "hard")
	}
	// One try per mount(8): the Mounter retries with its own back-off,
	// and logs each try (mount.nfs would retry silently for 2 minutes).
	return append(opts, "retry=0")
}

// MountArgv is the mount(8) command that mounts st at point.
func MountArgv(st Storage, role Role, point string, lateWrite time.Duration) []string {
	switch st.Kind {
	case NFS:
		return []string{"mount", "-t", "nfs", "-o", strings.Join(NFSOptions(st, role, lateWrite), ","), st.Source, point}
	case OCFS2:
		opts := []string{"_netdev"}
		if st.OCFS2Heartbeat != "" {
			opts = append(opts, "heartbeat="+st.OCFS2Heartbeat)
		}
		return []string{"mount", "-t", "ocfs2", "-o", strings.Join(opts, ","), st.Source, point}
	default:
		return []string{"mount", "-t", string(st.Kind), st.Source, point}
	}
}

// UmountArgv is the umount(8) command that unmounts point: neither lazy
// nor forced, so that a busy file system stays mounted and says so.
func UmountArgv(point string) []string { return []string{"umount", point} }

// fsTypes are the types mountinfo shows for a mount of kind k.
func fsTypes(k Kind) []string {
	if k == NFS {
		return []string{"nfs", "nfs4"}
	}
	return []string{string(k)}
}
