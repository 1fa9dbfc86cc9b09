package validate

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// blockFacts are what sysfs says of one block device: where it sits in
// the device tree and the few attributes that tell its transport and its
// identity. readBlock gathers them; transportOf decides.
type blockFacts struct {
	// Path is the device's resolved sysfs path
	// (/sys/devices/platform/host3/session1/…/block/sdb).
	Path string
	// DMUUID is a device-mapper device's dm/uuid (mpath-3600…, LVM-…).
	DMUUID string
	// NVMeTransport is an NVMe controller's transport (pcie, tcp, rdma,
	// fc, loop).
	NVMeTransport string
	// Slaves are a device-mapper device's underlying devices.
	Slaves                    []blockFacts
	WWID, Serial, LoopBacking string
}

var iscsiSession = regexp.MustCompile(`/session[0-9]+/`)

// transportOf is how the device reaches this host: iscsi, fc, multipath,
// nvme-of (storage other machines can reach), or loop, local.
func transportOf(b blockFacts) string {
	switch {
	case strings.Contains(b.Path, "/virtual/block/loop"):
		return "loop"
	case strings.HasPrefix(b.DMUUID, "mpath-"):
		return "multipath"
	case strings.Contains(b.Path, "/virtual/block/dm-"):
		// LVM, crypt…: as shared as what it is built on, all of it.
		if len(b.Slaves) == 0 {
			return "local"
		}
		first := transportOf(b.Slaves[0])
		for _, s := range b.Slaves[1:] {
			if t := transportOf(s); !Shared(t) {
				return t
			}
		}
		return first
	case iscsiSession.MatchString(b.Path):
		return "iscsi"
	case strings.Contains(b.Path, "/rport-"):
		return "fc"
	case strings.Contains(b.Path, "/nvme-fabrics/"):
		if b.NVMeTransport == "loop" {
			return "local"
		}
		return "nvme-of"
	case b.NVMeTransport == "tcp" || b.NVMeTransport == "rdma" || b.NVMeTransport == "fc":
		return "nvme-of"
	}
	return "local"
}

// readBlock reads sysfs (root: /sys) for the block device major:minor.
func readBlock(root, dev string, depth int) (blockFacts, error) {
	p, err := filepath.EvalSymlinks(filepath.Join(root, "dev", "block", dev))
	if err != nil {
		return blockFacts{}, err
	}
	return readBlockAt(p, depth), nil
}

func readBlockAt(p string, depth int) blockFacts {
	b := blockFacts{Path: p}
	disk := p
	if _, err := os.Stat(filepath.Join(p, "partition")); err == nil {
		disk = filepath.Dir(p)
	}
	b.DMUUID = readAttr(filepath.Join(p, "dm", "uuid"))
	if strings.HasPrefix(b.DMUUID, "mpath-") {
		b.WWID = strings.TrimPrefix(b.DMUUID, "mpath-")
	}
	b.WWID = firstNonEmpty(b.WWID, readAttr(filepath.Join(disk, "device", "wwid")), readAttr(filepath.Join(disk, "wwid")))
	b.Serial = firstNonEmpty(readAttr(filepath.Join(disk, "device", "serial")), readAttr(filepath.Join(disk, "serial")))
	b.LoopBacking = readAttr(filepath.Join(p, "loop", "backing_file"))
	// An NVMe namespace's controller is its device (nvme0n1/device →
	// nvme0), whose transport file says pcie, tcp, rdma, fc or loop.
	b.NVMeTransport = readAttr(filepath.Join(disk, "device", "transport"))
	if depth < 4 {
		if ents, err := os.ReadDir(filepath.Join(p, "slaves")); err == nil {
			for _, e := range ents {
				if sp, err := filepath.EvalSymlinks(filepath.Join(p, "slaves", e.Name())); err == nil {
					b.Slaves = append(b.Slaves, readBlockAt(sp, depth+1))
				}
			}
		}
	}
	return b
}

func readAttr(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
