package packaging

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/hbfence/hbfence/heartbeat/timing"
	"github.com/hbfence/hbfence/internal/config"
)

// The repository's root, from this package's directory.
const root = ".."

// scratch is the test binary's temporary directory: the RPM build, the
// scratch root, the binary built for the completion test.
var scratch string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hbfence-packaging-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	scratch = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func need(t *testing.T, tool, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		t.Skipf("%s is not installed (Debian package %s; .ci/run installs it): %v", tool, pkg, err)
	}
	return p
}

func run(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// specVersion is the spec's Version:, the one the binary must print.
func specVersion(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "packaging", "hbfence.spec"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^Version:\s*(\S+)\s*$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("packaging/hbfence.spec has no Version: line")
	}
	return string(m[1])
}

// built is one RPM build: the binary and source packages.
type built struct {
	rpm, srpm string
	err       error
}

var (
	rpmOnce sync.Once
	rpmMain built
)

// makeRPM runs make rpm in dir with its output in rpmdir, and finds the
// packages.
func makeRPM(dir, rpmdir string) built {
	cmd := exec.Command("make", "rpm", "RPMDIR="+rpmdir)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return built{err: fmt.Errorf("make rpm in %s: %v\n%s", dir, err, out)}
	}
	rpms, _ := filepath.Glob(filepath.Join(rpmdir, "RPMS", "*", "hbfence-*.rpm"))
	srpms, _ := filepath.Glob(filepath.Join(rpmdir, "SRPMS", "hbfence-*.src.rpm"))
	if len(rpms) != 1 || len(srpms) != 1 {
		return built{err: fmt.Errorf("make rpm made %v and %v; want one binary and one source package", rpms, srpms)}
	}
	return built{rpm: rpms[0], srpm: srpms[0]}
}

// theRPM builds the RPM of this tree once per test binary.
func theRPM(t *testing.T) built {
	t.Helper()
	need(t, "rpmbuild", "rpm")
	rpmOnce.Do(func() {
		start := time.Now()
		rpmMain = makeRPM(root, filepath.Join(scratch, "rpmbuild"))
		t.Logf("make rpm took %v", time.Since(start).Round(time.Millisecond))
	})
	if rpmMain.err != nil {
		t.Fatal(rpmMain.err)
	}
	return rpmMain
}

func haveCatalog(t *testing.T, dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "packaging", "hbfence.catalog"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

const catalogPath = "/usr/lib/systemd/catalog/hbfence.catalog"

// The files an operator and the unit count on.
var wantFiles = []string{
	"/usr/sbin/hbfence",
	"/usr/lib/systemd/system/hbfence.service",
	"/etc/hbfence/hbfence.toml",
	"/etc/sysconfig/hbfence",
	"/usr/share/man/man8/hbfence.8",
	"/usr/share/man/man5/hbfence.toml.5",
	"/usr/share/bash-completion/completions/hbfence",
	"/var/lib/hbfence",
}

func listed(t *testing.T, rpmFile string) map[string]bool {
	out := run(t, "", "rpm", "-qpl", "--nosignature", rpmFile)
	files := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		// A man page compressed by rpmbuild is listed with its suffix.
		for _, ext := range []string{".gz", ".bz2", ".xz", ".zst"} {
			l = strings.TrimSuffix(l, ext)
		}
		files[l] = true
	}
	return files
}

func TestRPMContents(t *testing.T) {
	b := theRPM(t)
	files := listed(t, b.rpm)
	for _, f := range wantFiles {
		if !files[f] {
			t.Errorf("rpm -qpl does not list %s", f)
		}
	}
	if want := haveCatalog(t, root); files[catalogPath] != want {
		t.Errorf("rpm -qpl lists %s: %v; packaging/hbfence.catalog exists: %v", catalogPath, files[catalogPath], want)
	}
	// The configuration is %config(noreplace): an upgrade keeps the
	// operator's file. The sysconfig file too.
	out := run(t, "", "rpm", "-qp", "--nosignature", "--qf", "[%{FILENAMES} %{FILEFLAGS:fflags}\n]", b.rpm)
	flags := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(l); len(f) == 2 {
			flags[f[0]] = f[1]
		} else if len(f) == 1 {
			flags[f[0]] = ""
		}
	}
	for _, f := range []string{"/etc/hbfence/hbfence.toml", "/etc/sysconfig/hbfence"} {
		if fl := flags[f]; !strings.Contains(fl, "c") || !strings.Contains(fl, "n") {
			t.Errorf("%s has file flags %q; want %%config(noreplace) (c and n)", f, fl)
		}
	}
}

// The package requires no C library: built on any host (Debian's glibc
// 2.36 here), it installs on every Oracle Linux release.
func TestRPMRequiresNoCLibrary(t *testing.T) {
	b := theRPM(t)
	req := run(t, "", "rpm", "-qp", "--nosignature", "--requires", b.rpm)
	if strings.Contains(req, "libc.so") || strings.Contains(req, "GLIBC") {
		t.Errorf("the package requires the build host's C library:\n%s", req)
	}
	if !strings.Contains(req, "rpmlib(") {
		t.Fatalf("rpm --requires lists no rpmlib() capability; is this the real list?\n%s", req)
	}
}

func TestRPMVersionFromSpec(t *testing.T) {
	b := theRPM(t)
	want := specVersion(t)
	info := run(t, "", "rpm", "-qpi", "--nosignature", b.rpm)
	if !regexp.MustCompile(`(?m)^Version\s*:\s*` + regexp.QuoteMeta(want) + `\s*$`).MatchString(info) {
		t.Errorf("rpm -qpi does not show Version %s:\n%s", want, info)
	}
}

func TestRPMScriptletsNeverRestart(t *testing.T) {
	b := theRPM(t)
	scripts := run(t, "", "rpm", "-qp", "--nosignature", "--scripts", b.rpm)
	t.Logf("rpm -qp --scripts:\n%s", scripts)
	// Only the commands count, not the comments that say why.
	var code []string
	for _, l := range strings.Split(scripts, "\n") {
		if s := strings.TrimSpace(l); s != "" && !strings.HasPrefix(s, "#") {
			code = append(code, s)
		}
	}
	body := strings.Join(code, "\n")
	// try-restart, restart, mark-restart-system-units (what
	// %systemd_postun_with_restart expands to), condrestart.
	if strings.Contains(body, "restart") {
		t.Errorf("a scriptlet restarts the daemon (an upgrade would move every guest):\n%s", body)
	}
	sections := scriptSections(scripts)
	for _, s := range []string{"postinstall", "preuninstall", "postuninstall", "posttrans"} {
		if _, ok := sections[s]; !ok {
			t.Errorf("no %s scriptlet", s)
		}
	}
	pt := sections["posttrans"]
	for _, want := range []string{"systemctl kill -s SIGUSR1 --kill-who=main hbfence.service", "MainPID"} {
		if !strings.Contains(pt, want) {
			t.Errorf("the posttrans scriptlet lacks %q:\n%s", want, pt)
		}
	}
	// A stop only on an erase ($1 = 0), never on an upgrade.
	if pre := sections["preuninstall"]; !strings.Contains(pre, "[ $1 -eq 0 ]") && !strings.Contains(pre, "systemd-update-helper remove") {
		t.Errorf("the preun scriptlet does not limit the stop to an erase:\n%s", pre)
	}
	spec, err := os.ReadFile(filepath.Join(root, "packaging", "hbfence.spec"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(spec, []byte("%systemd_postun_with_restart")) {
		t.Error("the spec uses the systemd_postun_with_restart macro: an upgrade would restart the daemon")
	}
}

// scriptSections splits rpm --scripts output by scriptlet ("posttrans
// scriptlet (using /bin/sh):").
func scriptSections(s string) map[string]string {
	out := map[string]string{}
	head := regexp.MustCompile(`^(\w+) scriptlet`)
	cur := ""
	for _, l := range strings.Split(s, "\n") {
		if m := head.FindStringSubmatch(l); m != nil {
			cur = m[1]
			out[cur] = ""
			continue
		}
		if cur != "" {
			out[cur] += l + "\n"
		}
	}
	return out
}

func TestRPMLint(t *testing.T) {
	b := theRPM(t)
	need(t, "rpmlint", "rpmlint")
	cmd := exec.Command("rpmlint", "-r", filepath.Join(root, "packaging", "hbfence.rpmlintrc"),
		b.rpm, b.srpm, filepath.Join(root, "packaging", "hbfence.spec"))
	out, _ := cmd.CombinedOutput() // its exit status counts warnings too
	var errs, warns []string
	for _, l := range strings.Split(string(out), "\n") {
		switch {
		case strings.Contains(l, ": E: "):
			errs = append(errs, l)
		case strings.Contains(l, ": W: "):
			warns = append(warns, l)
		}
	}
	summary := regexp.MustCompile(`(\d+) errors, (\d+) warnings`).FindStringSubmatch(string(out))
	if summary == nil {
		t.Fatalf("rpmlint printed no summary line:\n%s", out)
	}
	t.Logf("rpmlint warnings (allowed):\n%s", strings.Join(warns, "\n"))
	if len(errs) > 0 || summary[1] != "0" {
		t.Errorf("rpmlint reports errors:\n%s\n(full output)\n%s", strings.Join(errs, "\n"), out)
	}
}

var (
	installOnce sync.Once
	installDir  string
	installErr  error
)

// installed installs the RPM into a scratch root once.
func installed(t *testing.T) string {
	t.Helper()
	b := theRPM(t)
	installOnce.Do(func() {
		dir := filepath.Join(scratch, "root")
		for _, args := range [][]string{
			{"--root", dir, "--initdb"},
			{"--root", dir, "-i", "--nodeps", "--noscripts", "--nosignature", b.rpm},
		} {
			if out, err := exec.Command("rpm", args...).CombinedOutput(); err != nil {
				installErr = fmt.Errorf("rpm %s: %v\n%s", strings.Join(args, " "), err, out)
				return
			}
		}
		installDir = dir
	})
	if installErr != nil {
		t.Fatal(installErr)
	}
	return installDir
}

// unit is a unit file's settings, key to values in order, by section.
type unit map[string]map[string][]string

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	sec := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, ";"):
		case strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]"):
			sec = l[1 : len(l)-1]
			if u[sec] == nil {
				u[sec] = map[string][]string{}
			}
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok || sec == "" {
				t.Fatalf("%s:%d: not a setting: %q", path, n, l)
			}
			u[sec][k] = append(u[sec][k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

func (u unit) one(t *testing.T, sec, key string) string {
	t.Helper()
	v := u[sec][key]
	if len(v) != 1 {
		t.Fatalf("[%s] %s is set %d times (%q); want once", sec, key, len(v), v)
	}
	return v[0]
}

func TestInstalledIntoScratchRoot(t *testing.T) {
	dir := installed(t)
	for _, f := range wantFiles {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("installed: %v", err)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "/var/lib/hbfence")); err == nil && fi.Mode().Perm() != 0o700 {
		t.Errorf("/var/lib/hbfence has mode %v; want 0700", fi.Mode().Perm())
	}
	if haveCatalog(t, root) {
		if _, err := os.Stat(filepath.Join(dir, catalogPath)); err != nil {
			t.Errorf("installed: %v", err)
		}
	}
	// The installed unit is the one systemd-analyze verifies.
	inst, err := os.ReadFile(filepath.Join(dir, "/usr/lib/systemd/system/hbfence.service"))
	if err != nil {
		t.Fatal(err)
	}
	if src, err := os.ReadFile(filepath.Join(root, "packaging", "hbfence.service")); err != nil || !bytes.Equal(inst, src) {
		t.Errorf("the installed unit differs from packaging/hbfence.service (%v)", err)
	}
	// What the installed unit names is where the package put it.
	u := parseUnit(t, filepath.Join(dir, "/usr/lib/systemd/system/hbfence.service"))
	argv := strings.Fields(u.one(t, "Service", "ExecStart"))
	if len(argv) < 4 || argv[1] != "daemon" || argv[2] != "--config" {
		t.Fatalf("ExecStart=%q; want /usr/sbin/hbfence daemon --config FILE $HBFENCE_OPTS", argv)
	}
	bin := filepath.Join(dir, argv[0])
	if fi, err := os.Stat(bin); err != nil || fi.Mode()&0o111 == 0 {
		t.Errorf("ExecStart's binary %s in the scratch root: %v %v", argv[0], fi, err)
	}
	if _, err := config.Load(filepath.Join(dir, argv[3])); err != nil {
		t.Errorf("ExecStart's --config %s: %v", argv[3], err)
	}
	env := strings.TrimPrefix(u.one(t, "Service", "EnvironmentFile"), "-")
	envFile, err := os.ReadFile(filepath.Join(dir, env))
	if err != nil {
		t.Errorf("EnvironmentFile %s: %v", env, err)
	}
	if !regexp.MustCompile(`(?m)^HBFENCE_OPTS=`).Match(envFile) || !strings.Contains(u.one(t, "Service", "ExecStart"), "$HBFENCE_OPTS") {
		t.Errorf("%s sets no HBFENCE_OPTS, or ExecStart does not pass it", env)
	}
	// The installed binary runs and prints the spec's version.
	want := "hbfence " + specVersion(t) + "\n"
	for _, args := range [][]string{{"--version"}, {"version"}} {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil || string(out) != want {
			t.Errorf("%s %s: %q, %v; want %q", argv[0], args[0], out, err, want)
		}
	}
	// Every flag ExecStart passes is one "hbfence daemon" knows.
	help, _ := exec.Command(bin, "daemon", "-h").CombinedOutput()
	for _, a := range argv[2:] {
		if strings.HasPrefix(a, "-") && !strings.Contains(string(help), "\n  -"+strings.TrimLeft(a, "-")+" ") {
			t.Errorf("ExecStart passes %s, which hbfence daemon -h does not list:\n%s", a, help)
		}
	}
}

// The shipped binary must not link the test-only FUSE library
// (internal/faultfs, cmd/hbfence-faultfs).
func TestShippedBinaryLinksNoFUSE(t *testing.T) {
	dir := installed(t)
	out := run(t, "", "go", "version", "-m", filepath.Join(dir, "/usr/sbin/hbfence"))
	// The listing must be the real one, or the check below proves nothing.
	for _, want := range []string{"path\tgithub.com/hbfence/hbfence/cmd/hbfence", "dep\tgithub.com/BurntSushi/toml", "-trimpath=true", "CGO_ENABLED=0"} {
		if !strings.Contains(out, want) {
			t.Fatalf("go version -m does not show %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "go-fuse") {
		t.Errorf("the shipped /usr/sbin/hbfence links go-fuse:\n%s", out)
	}
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(gomod, []byte("github.com/hanwen/go-fuse")) {
		t.Log("go.mod no longer requires go-fuse: the check above holds trivially")
	}
}

// go.mod's go line is the Go a user needs, as the README and .ci/run say.
func TestGoVersionMatchesREADME(t *testing.T) {
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)(\.\d+)?\s*$`).FindSubmatch(gomod)
	if m == nil {
		t.Fatal("go.mod has no go line")
	}
	want := string(m[1])
	for _, f := range []struct{ path, re string }{
		{"README.md", `Go ≥ (\d+\.\d+)`},
		{".ci/run", `Go >= (\d+\.\d+)`},
		{"packaging/hbfence.spec", `BuildRequires:\s*golang >= (\d+\.\d+)`},
	} {
		b, err := os.ReadFile(filepath.Join(root, f.path))
		if err != nil {
			t.Fatal(err)
		}
		all := regexp.MustCompile(f.re).FindAllSubmatch(b, -1)
		if len(all) == 0 {
			t.Errorf("%s does not say which Go it needs (no match for %s)", f.path, f.re)
		}
		for _, g := range all {
			if string(g[1]) != want {
				t.Errorf("%s says Go %s; go.mod's go line is %s", f.path, g[1], m[1])
			}
		}
	}
}

// The RPM builds with and without packaging/hbfence.catalog (another
// branch adds it): a copy of this tree with the other case is built too.
func TestRPMWithAndWithoutCatalog(t *testing.T) {
	theRPM(t) // the tree as it is
	if testing.Short() {
		t.Skip("-short: a second RPM build")
	}
	copyDir := filepath.Join(scratch, "tree")
	files := run(t, root, "git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	for _, f := range strings.Split(strings.TrimRight(files, "\x00"), "\x00") {
		b, err := os.ReadFile(filepath.Join(root, f))
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted in the work tree
		} else if err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(filepath.Join(root, f))
		if err := os.MkdirAll(filepath.Dir(filepath.Join(copyDir, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(copyDir, f), b, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	cat := filepath.Join(copyDir, "packaging", "hbfence.catalog")
	with := !haveCatalog(t, root)
	if with {
		if err := os.WriteFile(cat, []byte("-- 3c4bd6d6d4a94a0c8a0d2a0e2b9e7f10\nSubject: hbfence packaging test\nDefined-By: hbfence\n\nA test entry.\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	} else if err := os.Remove(cat); err != nil {
		t.Fatal(err)
	}
	b := makeRPM(copyDir, filepath.Join(scratch, "rpmbuild-other"))
	if b.err != nil {
		t.Fatal(b.err)
	}
	if got := listed(t, b.rpm)[catalogPath]; got != with {
		t.Errorf("with packaging/hbfence.catalog %v, the RPM lists %s: %v", with, catalogPath, got)
	}
}

func TestUnitVerifies(t *testing.T) {
	need(t, "systemd-analyze", "systemd")
	// systemd-analyze checks that ExecStart's binary exists: the unit's
	// path is pointed at a binary built here. Everything else is the
	// packaged unit as it is.
	src, err := os.ReadFile(filepath.Join(root, "packaging", "hbfence.service"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(src, []byte("ExecStart=/usr/sbin/hbfence ")) {
		t.Fatal("the unit's ExecStart is not /usr/sbin/hbfence")
	}
	dir := t.TempDir()
	unitText := bytes.ReplaceAll(src, []byte("ExecStart=/usr/sbin/hbfence "), []byte("ExecStart="+hbfenceBinary(t)+" "))
	path := filepath.Join(dir, "hbfence.service")
	if err := os.WriteFile(path, unitText, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("systemd-analyze", "verify", "--man=no", path)
	out, err := cmd.CombinedOutput()
	// Unknown keys and bad values are only warnings to systemd (exit 0):
	// any line about the unit fails the test.
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// The unit's settings, and their relation to the pool's timing and the
// daemon's bounds (the comments in the unit give the reasons).
func TestUnitSettings(t *testing.T) {
	u := parseUnit(t, filepath.Join(root, "packaging", "hbfence.service"))
	for _, c := range []struct{ sec, key, want string }{
		{"Service", "Type", "notify"},
		{"Service", "NotifyAccess", "main"},
		{"Service", "KillMode", "process"},
		{"Service", "SendSIGKILL", "no"},
		{"Service", "Restart", "on-failure"},
		{"Service", "RestartPreventExitStatus", "78"},
		{"Service", "ExecReload", "/bin/kill -HUP $MAINPID"},
		{"Service", "EnvironmentFile", "-/etc/sysconfig/hbfence"},
		{"Service", "ExecStart", "/usr/sbin/hbfence daemon --config /etc/hbfence/hbfence.toml $HBFENCE_OPTS"},
		{"Service", "RuntimeDirectory", "hbfence"},
		{"Service", "RuntimeDirectoryPreserve", "yes"},
		{"Service", "StateDirectory", "hbfence"},
		{"Service", "WatchdogSec", "0"},
		{"Install", "WantedBy", "multi-user.target"},
	} {
		if got := u.one(t, c.sec, c.key); got != c.want {
			t.Errorf("[%s] %s=%s; want %s", c.sec, c.key, got, c.want)
		}
	}
	after := strings.Join(u["Unit"]["After"], " ")
	for _, w := range []string{"network-online.target", "remote-fs.target"} {
		if !strings.Contains(after, w) {
			t.Errorf("After= lacks %s", w)
		}
	}
	if !strings.Contains(strings.Join(u["Unit"]["Wants"], " "), "network-online.target") {
		t.Error("Wants= lacks network-online.target")
	}
	// The run directory is the configuration's defaults.
	c, err := config.Parse("/etc/hbfence/hbfence.toml", []byte("[host]\nname = \"h\"\n[heartbeat]\npath = \"/OVS/.server_pool_hb\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{c.Daemon.RunDir, filepath.Dir(c.Control.Socket)} {
		if p != "/run/"+u.one(t, "Service", "RuntimeDirectory") {
			t.Errorf("the default %s is not the unit's RuntimeDirectory", p)
		}
	}

	restartSec := unitDuration(t, u.one(t, "Service", "RestartSec"))
	stopSec := unitDuration(t, u.one(t, "Service", "TimeoutStopSec"))
	var maxStop time.Duration
	for _, name := range timing.ProfileNames() {
		p, err := timing.Profile(name)
		if err != nil {
			t.Fatal(err)
		}
		// A crash's restart must leave most of the watchdog's firing
		// time to the join and the first renewal.
		if restartSec > p.Watchdog/2 {
			t.Errorf("RestartSec=%v is more than half profile %s's watchdog %v", restartSec, name, p.Watchdog)
		}
		// A stop: the guest side within op_timeout + host_dead, the
		// master role's release within 2 x io_timeout.
		if s := c.Guests.OpTimeout.Duration + p.HostDead + 2*p.IOTimeout; s > maxStop {
			maxStop = s
		}
		// Why the service watchdog is off: its feed stops only when no
		// I/O finished for interval + 2 x io_timeout, later than the
		// watchdog device fires.
		if name == "default" && p.Interval+2*p.IOTimeout <= p.Watchdog {
			t.Errorf("profile default: interval + 2 x io_timeout = %v is within the watchdog's %v: the unit's reason for WatchdogSec=0 no longer holds; revisit it",
				p.Interval+2*p.IOTimeout, p.Watchdog)
		}
	}
	if stopSec <= maxStop {
		t.Errorf("TimeoutStopSec=%v does not cover the longest clean stop, %v (op_timeout %v + host_dead + 2 x io_timeout of the slowest profile)",
			stopSec, maxStop, c.Guests.OpTimeout.Duration)
	}
}

// unitDuration parses a systemd time span as the unit writes them: "1s",
// "500ms", "6min", "2min 30s".
func unitDuration(t *testing.T, s string) time.Duration {
	t.Helper()
	var total time.Duration
	for _, f := range strings.Fields(s) {
		f = strings.Replace(f, "min", "m", 1)
		d, err := time.ParseDuration(f)
		if err != nil {
			t.Fatalf("time span %q: %v", s, err)
		}
		total += d
	}
	return total
}

// configKeys are every key internal/config accepts, as "table.key", from
// the Config struct's toml tags.
func configKeys(t *testing.T) []string {
	var keys []string
	ct := reflect.TypeOf(config.Config{})
	for i := 0; i < ct.NumField(); i++ {
		f := ct.Field(i)
		table := f.Tag.Get("toml")
		if table == "" || table == "-" {
			continue
		}
		if f.Type.Kind() != reflect.Struct {
			t.Fatalf("config.Config.%s is not a table: extend this test", f.Name)
		}
		for j := 0; j < f.Type.NumField(); j++ {
			if k := f.Type.Field(j).Tag.Get("toml"); k != "" && k != "-" {
				keys = append(keys, table+"."+k)
			}
		}
	}
	if len(keys) < 20 {
		t.Fatalf("found only %d keys in config.Config: %v", len(keys), keys)
	}
	return keys
}

// The packaged hbfence.toml shows every key the configuration accepts:
// uncommented, the file sets every one of them and nothing else.
func TestConfigFileListsEveryKey(t *testing.T) {
	path := filepath.Join(root, "packaging", "hbfence.toml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// As shipped it is a valid configuration.
	if _, err := config.Parse(path, b); err != nil {
		t.Fatalf("as shipped: %v", err)
	}
	setting := regexp.MustCompile(`^#([a-z][a-z0-9_]* = .*)$`)
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if m := setting.FindStringSubmatch(l); m != nil {
			l = m[1]
		}
		lines = append(lines, l)
	}
	var c config.Config
	md, err := toml.Decode(strings.Join(lines, "\n"), &c)
	if err != nil {
		t.Fatalf("%s with every setting uncommented: %v (a key shown twice?)", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		t.Errorf("%s shows keys the configuration does not accept: %v", path, und)
	}
	var missing []string
	for _, k := range configKeys(t) {
		table, key, _ := strings.Cut(k, ".")
		if !md.IsDefined(table, key) {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%s does not show these keys of internal/config: %v", path, missing)
	}
}

// hbfence.toml(5) describes every key.
func TestManPageListsEveryKey(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "packaging", "man", "hbfence.toml.5"))
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, k := range configKeys(t) {
		table, key, _ := strings.Cut(k, ".")
		sec := strings.Index(page, "\n.SH ["+table+"]\n")
		if sec < 0 {
			t.Errorf("hbfence.toml.5 has no section [%s]", table)
			continue
		}
		rest := page[sec+1:]
		if next := strings.Index(rest[1:], "\n.SH "); next >= 0 {
			rest = rest[:next+1]
		}
		if !regexp.MustCompile(`(?m)^\.BR? (.*\s)?` + regexp.QuoteMeta(key) + `(\s|"|,|$)`).MatchString(rest) {
			t.Errorf("hbfence.toml.5 section [%s] does not describe %s", table, key)
		}
	}
}

func TestManPagesLint(t *testing.T) {
	need(t, "mandoc", "mandoc")
	pages, _ := filepath.Glob(filepath.Join(root, "packaging", "man", "*.[0-9]"))
	if len(pages) != 2 {
		t.Fatalf("man pages %v; want hbfence.8 and hbfence.toml.5", pages)
	}
	for _, p := range pages {
		out, err := exec.Command("mandoc", "-Tlint", "-Wwarning", p).CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Errorf("mandoc -Tlint -Wwarning %s: %v\n%s", p, err, out)
		}
	}
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// hbfenceBinary is cmd/hbfence built here (the completion and unit
// tests do not need rpmbuild).
func hbfenceBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		p := filepath.Join(scratch, "bin", "hbfence")
		out, err := exec.Command("go", "build", "-o", p, "github.com/hbfence/hbfence/cmd/hbfence").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build cmd/hbfence: %v\n%s", err, out)
			return
		}
		binPath = p
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// commandsAndFlags reads the binary's own commands (its usage) and each
// command's flags (COMMAND -h).
func commandsAndFlags(t *testing.T, bin string) map[string][]string {
	out, _ := exec.Command(bin, "help").CombinedOutput()
	_, list, ok := strings.Cut(string(out), "commands:\n")
	if !ok {
		t.Fatalf("hbfence help lists no commands:\n%s", out)
	}
	list, _, _ = strings.Cut(list, "\n\n")
	cmds := map[string][]string{}
	for _, l := range strings.Split(list, "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		help, _ := exec.Command(bin, f[0], "-h").CombinedOutput()
		flags := []string{}
		for _, m := range regexp.MustCompile(`(?m)^  -([a-z][a-z0-9-]*)`).FindAllStringSubmatch(string(help), -1) {
			flags = append(flags, "--"+m[1])
		}
		sort.Strings(flags)
		cmds[f[0]] = flags
	}
	if len(cmds) < 8 {
		t.Fatalf("hbfence help lists only %v", cmds)
	}
	return cmds
}

// complete runs the completion script in bash for the words (the last one
// being completed) and returns its candidates, sorted.
func complete(t *testing.T, bash string, words ...string) []string {
	t.Helper()
	script := fmt.Sprintf(`set -u
source %q
COMP_WORDS=(%s)
COMP_CWORD=%d
_hbfence
printf '%%s\n' "${COMPREPLY[@]}"
complete -p hbfence
`, filepath.Join(root, "packaging", "completion", "hbfence"), quoteWords(words), len(words)-1)
	cmd := exec.Command(bash, "--norc", "--noprofile", "-c", script)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("completing %q: %v\n%s", words, err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) == 0 || lines[len(lines)-1] != "complete -F _hbfence hbfence" {
		t.Fatalf("the script does not register _hbfence for hbfence:\n%s", out)
	}
	var got []string
	for _, l := range lines[:len(lines)-1] {
		if l != "" {
			got = append(got, l)
		}
	}
	sort.Strings(got)
	return got
}

func quoteWords(ws []string) string {
	q := make([]string, len(ws))
	for i, w := range ws {
		q[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

func TestCompletionKnowsTheRealCommands(t *testing.T) {
	bash := need(t, "bash", "bash")
	cmds := commandsAndFlags(t, hbfenceBinary(t))
	var names []string
	for n := range cmds {
		names = append(names, n)
	}
	want := append(append([]string{}, names...), "--help", "--version")
	sort.Strings(want)
	if got := complete(t, bash, "hbfence", ""); !reflect.DeepEqual(got, want) {
		t.Errorf("hbfence <TAB>: %v; want %v", got, want)
	}
	for _, n := range names {
		want := append(append([]string{}, cmds[n]...), "-h")
		sort.Strings(want)
		if got := complete(t, bash, "hbfence", n, "-"); !reflect.DeepEqual(got, want) {
			t.Errorf("hbfence %s -<TAB>: %v; want the flags of hbfence %s -h: %v", n, got, n, want)
		}
	}
	// Each command's subcommands, as its usage line names them
	// ("usage: hbfence pool [flags] ha enable|ha disable|...|repair").
	for _, n := range []string{"guest", "pool", "master", "host"} {
		want := subcommands(t, hbfenceBinary(t), n)
		if got := complete(t, bash, "hbfence", n, ""); !reflect.DeepEqual(got, want) {
			t.Errorf("hbfence %s <TAB>: %v; want the subcommands of its usage line, %v", n, got, want)
		}
	}
	for _, c := range []struct {
		words []string
		want  []string
	}{
		{[]string{"hbfence", "guest", "--json", "ha", ""}, []string{"disable", "enable"}},
		{[]string{"hbfence", "pool", "repository", ""}, []string{"add"}},
		{[]string{"hbfence", "host", "--socket", "/run/x.sock", ""}, []string{"evacuate", "maintenance"}},
		{[]string{"hbfence", "host", "maintenance", ""}, []string{"enter", "exit"}},
		{[]string{"hbfence", "init", "--profile", ""}, []string{"advised", "default", "fast", "slow"}},
		{[]string{"hbfence", "fence", "--action", ""}, []string{"off", "reset"}},
	} {
		if got := complete(t, bash, c.words...); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s<TAB>: %v; want %v", strings.Join(c.words, " "), got, c.want)
		}
	}
	profiles := timing.ProfileNames()
	sort.Strings(profiles)
	if !reflect.DeepEqual(profiles, []string{"default", "fast", "slow"}) {
		t.Errorf("the timing profiles are %v; update the completion's --profile", profiles)
	}
}

// fakeSystemctl is a systemctl that records its arguments, one call a
// line, and answers "show -p MainPID" with mainPID.
func fakeSystemctl(t *testing.T, mainPID string) (binDir, log string) {
	t.Helper()
	binDir = t.TempDir()
	log = filepath.Join(binDir, "calls")
	script := fmt.Sprintf(`#!/bin/sh
echo "$*" >> %q
case "$*" in
*"show -p MainPID"*) echo "MainPID=%s" ;;
esac
exit 0
`, log, mainPID)
	if err := os.WriteFile(filepath.Join(binDir, "systemctl"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return binDir, log
}

// runScriptlet runs one scriptlet of the package as rpm would (sh -c with
// $1 the count rpm passes) with the fake systemctl first on PATH, and
// returns the systemctl calls it made.
func runScriptlet(t *testing.T, rpmFile, tag, arg, mainPID string) []string {
	t.Helper()
	body := run(t, "", "rpm", "-qp", "--nosignature", "--qf", "%{"+tag+"}", rpmFile)
	if body == "(none)" {
		t.Fatalf("the package has no %s scriptlet", tag)
	}
	if prog := run(t, "", "rpm", "-qp", "--nosignature", "--qf", "%{"+tag+"PROG}", rpmFile); prog != "/bin/sh" {
		t.Fatalf("%s runs under %q; want /bin/sh", tag, prog)
	}
	binDir, log := fakeSystemctl(t, mainPID)
	cmd := exec.Command("/bin/sh", "-c", body, "sh", arg)
	cmd.Env = append(os.Environ(), "PATH="+binDir+":"+os.Getenv("PATH"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s $1=%s: %v\n%s", tag, arg, err, out)
	}
	b, err := os.ReadFile(log)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// The scriptlets, run against a systemctl that records what it is asked:
// an upgrade (rpm -U runs %postun of the old package with $1 = 1, then
// %posttrans) re-executes a running daemon with SIGUSR1 and restarts or
// stops nothing; a first install and an erase do what they should.
func TestScriptletsUnderAFakeSystemctl(t *testing.T) {
	b := theRPM(t)
	noRestartOrStop := func(what string, calls []string) {
		for _, c := range calls {
			if strings.Contains(c, "restart") || strings.Contains(c, "stop") || strings.Contains(c, "--now") {
				t.Errorf("%s: systemctl %s", what, c)
			}
		}
	}
	// Upgrade, the old package's %postun (with the new package's own
	// spec: the macros are the same).
	calls := runScriptlet(t, b.rpm, "POSTUN", "1", "4242")
	noRestartOrStop("upgrade, %postun", calls)
	// Upgrade with the daemon running: %posttrans.
	calls = runScriptlet(t, b.rpm, "POSTTRANS", "0", "4242")
	noRestartOrStop("upgrade, %posttrans", calls)
	want := "kill -s SIGUSR1 --kill-who=main hbfence.service"
	if !containsLine(calls, want) {
		t.Errorf("upgrade with the daemon running: systemctl calls %q; want %q", calls, want)
	}
	// No daemon running: nothing is signalled.
	for _, c := range runScriptlet(t, b.rpm, "POSTTRANS", "0", "0") {
		if strings.HasPrefix(c, "kill") {
			t.Errorf("no daemon running, yet systemctl %s", c)
		}
	}
	// Upgrade: %preun of the old package ($1 = 1) stops nothing.
	noRestartOrStop("upgrade, %preun", runScriptlet(t, b.rpm, "PREUN", "1", "4242"))
	scripts := run(t, "", "rpm", "-qp", "--nosignature", "--scripts", b.rpm)
	if strings.Contains(scripts, "systemd-update-helper") {
		// systemd-rpm-macros' own expansion: it calls the helper, not
		// systemctl, and is systemd's to test.
		t.Log("built with systemd's own scriptlet macros: install and erase not checked here")
		return
	}
	// First install: preset, no start.
	calls = runScriptlet(t, b.rpm, "POSTIN", "1", "0")
	noRestartOrStop("install, %post", calls)
	if !containsLine(calls, "--no-reload preset hbfence.service") {
		t.Errorf("first install: systemctl calls %q; want a preset of hbfence.service", calls)
	}
	// Erase ($1 = 0): disabled and stopped (the stop hands the guests over).
	calls = runScriptlet(t, b.rpm, "PREUN", "0", "4242")
	if !containsLine(calls, "--no-reload disable --now hbfence.service") {
		t.Errorf("erase: systemctl calls %q; want disable --now hbfence.service", calls)
	}
}

func containsLine(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

// subcommands reads a command's subcommands from its usage line: the first
// word of each alternative, in lower case.
func subcommands(t *testing.T, bin, cmd string) []string {
	t.Helper()
	help, _ := exec.Command(bin, cmd, "-h").CombinedOutput()
	line, _, _ := strings.Cut(string(help), "\n")
	_, args, ok := strings.Cut(line, "[flags] ")
	if !ok {
		t.Fatalf("hbfence %s -h: no usage line: %q", cmd, line)
	}
	seen := map[string]bool{}
	var out []string
	for _, alt := range strings.Split(args, "|") {
		w := strings.Fields(strings.TrimPrefix(strings.TrimSpace(alt), "["))
		if len(w) == 0 || strings.ToLower(w[0]) != w[0] || seen[w[0]] {
			continue
		}
		seen[w[0]] = true
		out = append(out, w[0])
	}
	sort.Strings(out)
	if len(out) == 0 {
		t.Fatalf("hbfence %s -h names no subcommand: %q", cmd, line)
	}
	return out
}
