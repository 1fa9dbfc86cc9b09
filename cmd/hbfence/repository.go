package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/hbfence/hbfence/internal/control"
	"github.com/hbfence/hbfence/internal/daemon"
	"github.com/hbfence/hbfence/mount/validate"
	"github.com/hbfence/hbfence/restart/store"
)

// cmdRepository: hbfence repository add KIND:SOURCE --uuid UUID,
// repository remove UUID, repository list.
func cmdRepository(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("repository", "add KIND:SOURCE --uuid UUID [--nfs-version V] [--ocfs2-heartbeat local|global]|remove UUID|list [--json]", stderr)
	sock := socketFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	uuid := fs.String("uuid", "", "add: the repository's UUID (it mounts at [storage] mount_base/UUID on every host)")
	nfsVersion := fs.String("nfs-version", "", "add: the NFS version of an NFS repository (3, the default, 4, 4.0, 4.1, 4.2)")
	ocfs2HB := fs.String("ocfs2-heartbeat", "", "add: local or global for an OCFS2 repository (default: as o2cb is configured)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	socket, err := sock()
	if err != nil {
		return err
	}
	usageErr := fmt.Errorf("%w: hbfence repository add KIND:SOURCE --uuid UUID, repository remove UUID, repository list [--json]", errUsage)
	switch {
	case len(pos) == 1 && pos[0] == "list":
		return show(ctx, socket, "repository.list", *asJSON, stdout, printRepositories)
	case len(pos) == 2 && pos[0] == "add":
		if *uuid == "" {
			return fmt.Errorf("%w: repository add %s needs --uuid UUID (the repository's UUID names its mount point)", errUsage, pos[1])
		}
		return changeRepository(ctx, socket, daemon.RepositoryRequest{Op: "add", Source: pos[1], UUID: *uuid, NFSVersion: *nfsVersion, OCFS2Heartbeat: *ocfs2HB}, *asJSON, stdout)
	case len(pos) == 2 && pos[0] == "remove":
		return changeRepository(ctx, socket, daemon.RepositoryRequest{Op: "remove", UUID: pos[1]}, *asJSON, stdout)
	}
	return usageErr
}

// show asks the daemon for method's answer (a view it gives on any host)
// and prints it: as the daemon's JSON with --json, else with print.
func show[T any](ctx context.Context, socket, method string, asJSON bool, stdout io.Writer, print func(io.Writer, T)) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var raw json.RawMessage
	if err := control.Call(ctx, socket, method, nil, &raw); err != nil {
		return err
	}
	if asJSON {
		_, err := stdout.Write(append(raw, '\n'))
		return err
	}
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	print(stdout, v)
	return nil
}

func changeRepository(ctx context.Context, socket string, req daemon.RepositoryRequest, asJSON bool, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, changeTimeout)
	defer cancel()
	var list []store.RepositoryDef
	if err := control.Call(ctx, socket, "repository", req, &list); err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(stdout).Encode(map[string]any{"schema": JSONSchema, "repositories": list})
	}
	verb := map[string]string{"add": "added", "remove": "removed"}[req.Op]
	fmt.Fprintf(stdout, "repository %s %s; the pool has %s. Every host mounts the list within %s: hbfence repository list shows where it is mounted.\n",
		req.UUID, verb, plural(len(list), "repository"), "15s")
	return nil
}

func printRepositories(w io.Writer, l daemon.RepositoryList) {
	if len(l.Repositories) == 0 && len(l.Directories) == 0 {
		fmt.Fprintln(w, "no repositories: guest configurations must resolve inside the cluster root (hbfence repository add KIND:SOURCE --uuid UUID)")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REPOSITORY\tSOURCE\tHOST\tSTATE\tMESSAGE")
	for _, r := range l.Repositories {
		if len(r.Hosts) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t-\tunknown\tno host has said what it sees yet\n", r.UUID, shown(r.Source))
		}
		for _, h := range r.Hosts {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.UUID, shown(r.Source), shown(h.Host), h.State, shown(h.Message))
		}
	}
	tw.Flush()
	for _, d := range l.Directories {
		fmt.Fprintf(w, "directory %s (hbfence pool repository add: a path, mounted by other means)\n", shown(d))
	}
}

// poolValidate: hbfence pool validate [--json]; exit 0 only when the pool
// validates.
func poolValidate(ctx context.Context, socket string, asJSON bool, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, changeTimeout)
	defer cancel()
	var r validate.Result
	if err := control.Call(ctx, socket, "pool.validate", nil, &r); err != nil {
		return err
	}
	if asJSON {
		if err := json.NewEncoder(stdout).Encode(r); err != nil {
			return err
		}
	} else {
		printValidation(stdout, r)
	}
	if !r.OK {
		return exitWith{exitFailure}
	}
	return nil
}

func printValidation(w io.Writer, r validate.Result) {
	for _, e := range r.Errors {
		fmt.Fprintf(w, "ERROR    %s: %s: %s\n", shown(e.Host), e.Check, shown(e.Message))
	}
	for _, e := range r.Warnings {
		fmt.Fprintf(w, "warning  %s: %s: %s\n", shown(e.Host), e.Check, shown(e.Message))
	}
	if r.OK {
		fmt.Fprintf(w, "the pool validates: %s checked, %s\n", plural(len(r.Hosts), "host"), plural(len(r.Warnings), "warning"))
	} else {
		fmt.Fprintf(w, "the pool does not validate: %s on %s checked; HA cannot be enabled until they are fixed\n", plural(len(r.Errors), "error"), plural(len(r.Hosts), "host"))
	}
}
