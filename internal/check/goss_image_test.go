package check_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/check"
	"github.com/imagegate/imagegate/internal/scan"
	"github.com/imagegate/imagegate/internal/source"
)

// gossSpecs are goss files written from goss's documentation
// (docs/gossfile.md) and the results goss documents for them on cstImage:
// "status id" per attribute, in the report's order.
var gossSpecs = []struct {
	file string
	want []string
}{
	{"base.yaml", []string{
		"fail spec/goss/file[/etc/shadow].mode",
		"info spec/warning",
		"pass spec/goss/file[/etc/os-release].exists",
		"pass spec/goss/file[/etc/os-release].linked-to",
		"pass spec/goss/file[/etc/os-release].filetype",
		"pass spec/goss/file[/usr/lib/os-release].exists",
		"pass spec/goss/file[/usr/lib/os-release].mode",
		"pass spec/goss/file[/usr/lib/os-release].owner",
		"pass spec/goss/file[/usr/lib/os-release].group",
		"pass spec/goss/file[/usr/lib/os-release].filetype",
		"pass spec/goss/file[/usr/lib/os-release].contents",
		"pass spec/goss/file[/tmp].exists",
		"pass spec/goss/file[/tmp].mode",
		"pass spec/goss/file[/tmp].filetype",
		"pass spec/goss/file[/etc/shadow].exists",
		"pass spec/goss/file[/etc/shadow].group",
		"pass spec/goss/file[/srv/app/config.ini].exists",
		"pass spec/goss/file[/srv/app/config.ini].mode",
		"pass spec/goss/file[/srv/app/config.ini].owner",
		"pass spec/goss/file[/srv/app/config.ini].uid",
		"pass spec/goss/file[/srv/app/config.ini].gid",
		"pass spec/goss/file[/srv/app/config.ini].contents",
		"pass spec/goss/file[/srv/app/config.ini].size",
		"pass spec/goss/file[/srv/app/config.ini].sha256",
		"pass spec/goss/file[config.ini].exists",
		"pass spec/goss/file[~app].exists",
		"pass spec/goss/file[~app].mode",
		"pass spec/goss/file[~app].filetype",
		"pass spec/goss/file[/etc/nonexistent.conf].exists",
		"pass spec/goss/package[dpkg].installed",
		"pass spec/goss/package[base-files].installed",
		"pass spec/goss/package[base-files].versions",
		"pass spec/goss/package[openssh-server].installed",
		"pass spec/goss/user[root].exists",
		"pass spec/goss/user[root].uid",
		"pass spec/goss/user[root].gid",
		"pass spec/goss/user[root].home",
		"pass spec/goss/user[root].shell",
		"pass spec/goss/user[app].exists",
		"pass spec/goss/user[app].uid",
		"pass spec/goss/user[app].gid",
		"pass spec/goss/user[app].home",
		"pass spec/goss/user[app].groups",
		"pass spec/goss/user[app].shell",
		"pass spec/goss/user[nobody].exists",
		"pass spec/goss/user[nobody].uid",
		"pass spec/goss/user[ghost].exists",
		"pass spec/goss/group[root].exists",
		"pass spec/goss/group[root].gid",
		"pass spec/goss/group[staff].exists",
		"pass spec/goss/group[staff].gid",
		"pass spec/goss/group[docker].exists",
		"pass spec/goss/command[id -un].exit-status",
		"pass spec/goss/command[id -un].stdout",
		"pass spec/goss/command[id -un].stderr",
		"pass spec/goss/command[pwd].exit-status",
		"pass spec/goss/command[pwd].stdout",
		"pass spec/goss/command[echo $GREETING].exit-status",
		"pass spec/goss/command[echo $GREETING].stdout",
		"pass spec/goss/command[cat /nonexistent].exit-status",
		"pass spec/goss/command[cat /nonexistent].stderr",
	}},
	{"python.yaml", []string{
		"pass spec/goss/package[python3].installed",
		"pass spec/goss/package[python3].versions",
		"pass spec/goss/package[python3-venv].installed",
		"pass spec/goss/file[/usr/bin/python3].exists",
		"pass spec/goss/file[/usr/bin/python3].linked-to",
		"pass spec/goss/file[/usr/bin/python3].filetype",
		"pass spec/goss/file[/usr/bin/python3.13].exists",
		"pass spec/goss/file[/usr/bin/python3.13].mode",
		"pass spec/goss/file[/usr/bin/python3.13].owner",
		"pass spec/goss/file[/usr/bin/python3.13].filetype",
		"pass spec/goss/command[python3 --version].exit-status",
		"pass spec/goss/command[python3 --version].stdout",
		"pass spec/goss/command[sqlite].exit-status",
		"pass spec/goss/command[sqlite].stdout",
		"pass spec/goss/command[sqlite].stderr",
		"pass spec/goss/command[python3 -c 'import ensurepip'].exit-status",
		"pass spec/goss/command[python3 -c 'import ensurepip'].stderr",
		"pass spec/goss/command[python3 -c 'import sys; print(sys.prefix)'].exit-status",
		"pass spec/goss/command[python3 -c 'import sys; print(sys.prefix)'].stdout",
	}},
	{"suite/goss.yaml", []string{
		"fail spec/goss/file[/etc/shadow].mode",
		"fail spec/goss/file[/etc/hostname-missing].exists",
		"fail spec/goss/command[sleep 5].exit-status",
		"fail spec/goss/matching[basic_array_failing].matches",
		"info spec/warning",
		"info spec/warning",
		"info spec/warning",
		"info spec/warning",
		"info spec/goss/file[/etc/hostname-missing].mode",
		"info spec/goss/command[skipped].exit-status",
		"info spec/goss/port[tcp:8080].listening",
		"info spec/goss/port[tcp:8080].ip",
		"info spec/goss/process[run.sh].running",
		"info spec/goss/http[http://localhost:8080/health].status",
		"info spec/goss/kernel-param[net.core.somaxconn].value",
		"info spec/goss/service[app].enabled",
		"info spec/goss/service[app].running",
		"pass spec/goss/command[id -Gn].exit-status",
		"pass spec/goss/command[id -Gn].stdout",
		"pass spec/goss/file[/etc/os-release].exists",
		"pass spec/goss/file[/etc/os-release].linked-to",
		"pass spec/goss/file[/etc/os-release].filetype",
		"pass spec/goss/file[/usr/lib/os-release].exists",
		"pass spec/goss/file[/usr/lib/os-release].mode",
		"pass spec/goss/file[/usr/lib/os-release].owner",
		"pass spec/goss/file[/usr/lib/os-release].group",
		"pass spec/goss/file[/usr/lib/os-release].filetype",
		"pass spec/goss/file[/usr/lib/os-release].contents",
		"pass spec/goss/file[/tmp].exists",
		"pass spec/goss/file[/tmp].mode",
		"pass spec/goss/file[/tmp].filetype",
		"pass spec/goss/file[/etc/shadow].exists",
		"pass spec/goss/file[/etc/shadow].group",
		"pass spec/goss/file[/srv/app/config.ini].exists",
		"pass spec/goss/file[/srv/app/config.ini].mode",
		"pass spec/goss/file[/srv/app/config.ini].owner",
		"pass spec/goss/file[/srv/app/config.ini].uid",
		"pass spec/goss/file[/srv/app/config.ini].gid",
		"pass spec/goss/file[/srv/app/config.ini].contents",
		"pass spec/goss/file[/srv/app/config.ini].size",
		"pass spec/goss/file[/srv/app/config.ini].sha256",
		"pass spec/goss/file[config.ini].exists",
		"pass spec/goss/file[~app].exists",
		"pass spec/goss/file[~app].mode",
		"pass spec/goss/file[~app].filetype",
		"pass spec/goss/file[/etc/nonexistent.conf].exists",
		"pass spec/goss/package[dpkg].installed",
		"pass spec/goss/package[base-files].installed",
		"pass spec/goss/package[base-files].versions",
		"pass spec/goss/package[openssh-server].installed",
		"pass spec/goss/user[root].exists",
		"pass spec/goss/user[root].groups",
		"pass spec/goss/user[app].exists",
		"pass spec/goss/user[app].uid",
		"pass spec/goss/user[app].home",
		"pass spec/goss/user[app].groups",
		"pass spec/goss/user[app].shell",
		"pass spec/goss/user[nobody].exists",
		"pass spec/goss/user[nobody].uid",
		"pass spec/goss/user[ghost].exists",
		"pass spec/goss/group[root].exists",
		"pass spec/goss/group[root].gid",
		"pass spec/goss/group[staff].exists",
		"pass spec/goss/group[staff].gid",
		"pass spec/goss/group[docker].exists",
		"pass spec/goss/command[id -un].exit-status",
		"pass spec/goss/command[id -un].stdout",
		"pass spec/goss/command[id -un].stderr",
		"pass spec/goss/command[pwd].exit-status",
		"pass spec/goss/command[pwd].stdout",
		"pass spec/goss/command[echo $GREETING].exit-status",
		"pass spec/goss/command[echo $GREETING].stdout",
		"pass spec/goss/command[cat /nonexistent].exit-status",
		"pass spec/goss/command[cat /nonexistent].stderr",
		"pass spec/goss/file[/srv/app/current].exists",
		"pass spec/goss/file[/srv/app/current].mode",
		"pass spec/goss/file[/srv/app/current].owner",
		"pass spec/goss/file[/srv/app/current].linked-to",
		"pass spec/goss/file[/srv/app/current].filetype",
		"pass spec/goss/file[/usr/local/bin/helper].exists",
		"pass spec/goss/file[/usr/local/bin/helper].mode",
		"pass spec/goss/file[/usr/local/bin/helper].contents",
		"pass spec/goss/file[/usr/share/doc/app/copyright].exists",
		"pass spec/goss/file[/usr/share/doc/app/copyright].contents",
		"pass spec/goss/command[echo one; echo two >&2; exit 3].exit-status",
		"pass spec/goss/command[echo one; echo two >&2; exit 3].stdout",
		"pass spec/goss/command[echo one; echo two >&2; exit 3].stderr",
		"pass spec/goss/matching[semver].matches",
		"pass spec/goss/matching[has_2].matches",
		"pass spec/goss/matching[arrays].matches",
		"pass spec/goss/matching[numeric].matches",
		"pass spec/goss/matching[string].matches",
	}},
}

// gossFailures are the messages of the failures gossSpecs expect.
var gossFailures = map[string]string{
	"spec/goss/file[/etc/shadow].mode":                `mode: expected "0600", got "0640"`,
	"spec/goss/file[/etc/hostname-missing].exists":    "exists: expected true, got false",
	"spec/goss/command[sleep 5].exit-status":          "exit-status: command execution timed out (500ms)",
	"spec/goss/matching[basic_array_failing].matches": `matches: expected contain-elements ["group1", "group2", "group2"], got ["group1","group2","group3"]`,
}

// TestGoss runs gossSpecs against cstImage scanned with chroot execution.
func TestGoss(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and scans a Debian image")
	}
	oci := cstImage(t)
	ctx := context.Background()
	tree, err := source.Open(ctx, "oci:"+oci, source.Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	snap, err := scan.Scan(ctx, tree, scan.Options{Exec: scan.ExecChroot})
	if err != nil {
		t.Fatal(err)
	}
	passed := 0
	for _, f := range gossSpecs {
		t.Run(f.file, func(t *testing.T) {
			g, err := check.ReadGossFile(filepath.Join("testdata", "goss", f.file), check.GossTemplate{})
			if err != nil {
				t.Fatal(err)
			}
			r, err := check.Run(ctx, snap, check.Options{Goss: g, Target: tree})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, res := range r.Results {
				if res.Origin != check.OriginSpec {
					continue
				}
				got = append(got, res.Status+" "+res.ID)
				if want, ok := gossFailures[res.ID]; ok && !strings.HasPrefix(res.Message, want) {
					t.Errorf("%s: message %q, want prefix %q", res.ID, res.Message, want)
				}
			}
			if diff := cmp.Diff(f.want, got); diff != "" {
				t.Errorf("results (-want +got):\n%s", diff)
				for _, res := range r.Results {
					if res.Origin == check.OriginSpec && !slices.Contains(f.want, res.Status+" "+res.ID) {
						t.Logf("%s %s: %s %q", res.Status, res.ID, res.Message, res.Evidence)
					}
				}
				return
			}
			passed++
		})
	}
	t.Logf("%d of %d goss files give the results goss documents", passed, len(gossSpecs))
}
