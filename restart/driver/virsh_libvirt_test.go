package driver

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The virsh driver against a real libvirtd and a real QEMU/KVM domain (a
// tiny diskless one that sits in its firmware). CI installs libvirt and
// QEMU; without them, or without root, the test skips and says why. With
// no systemd, the test starts virtlogd and libvirtd itself, and stops
// what it started.
func TestVirshRealLibvirt(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run libvirtd")
	}
	for _, p := range []string{"virsh", "libvirtd", "virtlogd", "qemu-system-x86_64"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s is not installed (apt-get install libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86): %v", p, err)
		}
	}
	startLibvirt(t)
	domType := "qemu"
	if fi, err := os.Stat("/dev/kvm"); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		// qemu runs as libvirt-qemu (group kvm): udev would give the
		// device to that group; without udev, do it here.
		exec.Command("chgrp", "kvm", "/dev/kvm").Run()
		os.Chmod("/dev/kvm", 0o660)
		domType = "kvm"
	}
	const uuid = "0b7c1d2e-3f40-4a5b-8c6d-7e8f9a0b1c2d"
	xml := filepath.Join(t.TempDir(), "hbfence-test.xml")
	dom := fmt.Sprintf(`<domain type='%s'>
  <name>hbfence-test-%d</name>
  <uuid>%s</uuid>
  <memory unit='MiB'>32</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices><emulator>/usr/bin/qemu-system-x86_64</emulator></devices>
</domain>
`, domType, os.Getpid(), uuid)
	if err := os.WriteFile(xml, []byte(dom), 0o644); err != nil {
		t.Fatal(err)
	}
	v := &Virsh{}
	g := Spec{UUID: uuid, Name: "hbfence-test", Config: xml}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t.Cleanup(func() { v.Destroy(context.Background(), g) })
	if err := v.Start(ctx, g); err != nil {
		t.Fatalf("start a %s domain: %v", domType, err)
	}
	run, err := v.Running(ctx)
	if err != nil || !slices.Contains(run, uuid) {
		t.Fatalf("running after start: %v, %v", run, err)
	}
	// A guest in its firmware ignores the ACPI shutdown: a bounded stop
	// fails, and the caller destroys it.
	short, cancelShort := context.WithTimeout(ctx, 2*time.Second)
	err = v.Stop(short, g)
	cancelShort()
	if err == nil {
		t.Log("the domain stopped on ACPI shutdown")
	}
	if err := v.Destroy(ctx, g); err != nil {
		t.Fatalf("destroy: %v", err)
	}
	if run, err := v.Running(ctx); err != nil || slices.Contains(run, uuid) {
		t.Fatalf("running after destroy: %v, %v", run, err)
	}
	if err := v.Destroy(ctx, g); err != nil {
		t.Fatalf("destroying a domain that does not run: %v", err)
	}
	// A start that fails (a configuration libvirt refuses) says why.
	bad := filepath.Join(t.TempDir(), "bad.xml")
	os.WriteFile(bad, []byte("<domain type='kvm'><name>x</name></domain>"), 0o644)
	if err := v.Start(ctx, Spec{UUID: uuid, Name: "bad", Config: bad}); err == nil || !strings.Contains(err.Error(), "virsh") {
		t.Fatalf("a bad domain XML: %v", err)
	}
	t.Logf("a %s domain started, listed, destroyed and gone through virsh", domType)
}

// startLibvirt starts virtlogd and libvirtd unless libvirtd answers
// already, and stops what it started when the test ends.
func startLibvirt(t *testing.T) {
	t.Helper()
	if exec.Command("virsh", "-c", "qemu:///system", "list").Run() == nil {
		return
	}
	for _, d := range []string{"/run/libvirt", "/var/log/libvirt"} {
		os.MkdirAll(d, 0o755)
	}
	var started []string
	for _, d := range []string{"virtlogd", "libvirtd"} {
		if out, err := exec.Command(d, "-d").CombinedOutput(); err != nil {
			t.Fatalf("starting %s: %v: %s", d, err, out)
		}
		started = append(started, d)
	}
	t.Cleanup(func() {
		for _, d := range started {
			if b, err := os.ReadFile("/run/" + d + ".pid"); err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
					if p, err := os.FindProcess(pid); err == nil {
						p.Signal(os.Interrupt)
					}
				}
			}
		}
	})
	for i := 0; ; i++ {
		if exec.Command("virsh", "-c", "qemu:///system", "list").Run() == nil {
			return
		}
		if i == 100 {
			b, _ := os.ReadFile("/var/log/libvirt/libvirtd.log")
			t.Fatalf("libvirtd did not answer within 10s; its log ends:\n%s", tailString(string(b), 1500))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tailString(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
