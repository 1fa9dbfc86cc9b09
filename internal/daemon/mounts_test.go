package daemon

import (
	"context"
	"errors"
	"testing"

	"github.com/hbfence/hbfence/fence"
	"github.com/hbfence/hbfence/mount"
)

// TestHardRepositoryGuard: with an NFS repository mounted (hard), a fence's
// kill is never a confirmation, since the client may still retransmit a
// killed guest's writes; without one, the inner killer's answer stands.
func TestHardRepositoryGuard(t *testing.T) {
	point := func(storage string, role mount.Role, st mount.State) mount.PointStatus {
		return mount.PointStatus{Role: role, Storage: storage, State: st}
	}
	root := point("nfs:filer:/export/pool", mount.RoleClusterRoot, mount.Mounted)
	for _, c := range []struct {
		name      string
		points    []mount.PointStatus
		inner     fence.GuestKiller
		confirmed bool
	}{
		{"no repository", []mount.PointStatus{root}, fence.NoGuests{}, true},
		{"an NFS repository mounted", []mount.PointStatus{root, point("nfs:filer:/export/repo", mount.RoleRepository, mount.Mounted)}, fence.NoGuests{}, false},
		{"a removed NFS repository kept in use", []mount.PointStatus{root, point("nfs:filer:/export/repo", mount.RoleRepository, mount.InUse)}, fence.NoGuests{}, false},
		{"an NFS repository never mounted", []mount.PointStatus{root, point("nfs:filer:/export/repo", mount.RoleRepository, mount.Error)}, fence.NoGuests{}, true},
		{"an NFS repository unmounted", []mount.PointStatus{root, point("nfs:filer:/export/repo", mount.RoleRepository, mount.Unmounted)}, fence.NoGuests{}, true},
		{"an OCFS2 repository", []mount.PointStatus{root, point("ocfs2:/dev/mapper/repo", mount.RoleRepository, mount.Mounted)}, fence.NoGuests{}, true},
		{"the inner killer cannot confirm", []mount.PointStatus{root}, fence.CannotConfirm{}, false},
	} {
		g := hardRepositoryGuard{inner: c.inner, mounted: func() mount.Status { return mount.Status{Points: c.points} }}
		err := g.KillHAGuests(context.Background(), "test")
		if (err == nil) != c.confirmed {
			t.Errorf("%s: %v, want confirmed %v", c.name, err, c.confirmed)
		}
		if !c.confirmed && c.inner == (fence.NoGuests{}) && !errors.Is(err, errHardRepository) {
			t.Errorf("%s: %v does not say why", c.name, err)
		}
	}
}
