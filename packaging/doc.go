// Package packaging holds no code: it is the RPM and what it installs
// (hbfence.spec, the systemd unit hbfence.service, the configuration
// hbfence.toml with every key commented, hbfence.sysconfig, the man pages
// under man/, the bash completion under completion/), and their tests.
//
// The tests build the RPM with "make rpm" into a temporary directory (once
// per test binary), and check what it holds and does: the files and their
// places, the version stamped from the spec, scriptlets that never restart
// the daemon on an upgrade and re-execute it in place (SIGUSR1) instead,
// rpmlint, an installation into a scratch root whose binary runs, that the
// shipped binary links no FUSE library, the unit under systemd-analyze
// verify and its timing against the pool's profiles, the configuration
// against internal/config, the man pages under mandoc -Tlint, and the
// completion against the binary's own commands and flags. A test whose
// tool (rpmbuild, rpmlint, mandoc, systemd-analyze, bash) is missing is
// skipped and says which.
package packaging
