package tools_test

import (
	"strings"
	"testing"

	"github.com/imagegate/imagegate/internal/scan/tools"
)

// FuzzExtractVersion feeds every probe's patterns arbitrary output: they must
// not panic, and a version they report must be text the tool printed.
func FuzzExtractVersion(f *testing.F) {
	seeds := []struct{ tool, stdout, stderr string }{
		{"git", "git version 2.39.5\n", ""},
		{"java", "", "openjdk version \"17.0.15\" 2025-04-15\nOpenJDK Runtime Environment\n"},
		{"mvn", "\x1b[1mApache Maven 3.8.7\x1b[m\nMaven home: /usr/share/maven\n", ""},
		{"gcc", "gcc (Debian 12.2.0-14) 12.2.0\nCopyright (C) 2022\n", ""},
		{"mysql", "mysql  Ver 15.1 Distrib 10.11.6-MariaDB, for debian-linux-gnu\n", ""},
		{"kubectl", "Client Version: v1.29.0\nKustomize Version: v5.0.4\n", ""},
		{"az", "{\n  \"azure-cli\": \"2.55.0\",\n  \"azure-cli-core\": \"2.55.0\"\n}\n", ""},
		{"7z", "\n7-Zip [64] 16.02 : Copyright (c) 1999-2016 Igor Pavlov\n", ""},
		{"ninja", "1.11.1\n", ""},
		{"nope", "1.0", ""},
	}
	for _, s := range seeds {
		f.Add(s.tool, s.stdout, s.stderr)
	}
	probed := tools.Probed()
	f.Fuzz(func(t *testing.T, tool, stdout, stderr string) {
		// Spread inputs over every probe, not only the seeds' names.
		if len(tool) == 1 {
			tool = probed[int(tool[0])%len(probed)]
		}
		v, ok := tools.ExtractVersion(tool, stdout, stderr)
		if !ok {
			if v != "" {
				t.Fatalf("not ok but version %q", v)
			}
			return
		}
		if v == "" {
			t.Fatal("ok with an empty version")
		}
		if !strings.Contains(stdout, v) && !strings.Contains(stderr, v) {
			t.Fatalf("version %q is not in the output", v)
		}
	})
}

func TestExtractVersion(t *testing.T) {
	tests := []struct {
		tool, stdout, stderr, want string
	}{
		{"git", "git version 2.39.5\n", "", "2.39.5"},
		{"java", "", "Picked up JAVA_TOOL_OPTIONS: -Xmx1g\nopenjdk version \"1.8.0_392\"\n", "1.8.0_392"},
		{"mvn", "\x1b[1mApache Maven 3.8.7\x1b[m\n", "", "3.8.7"},
		{"gcc", "gcc (Debian 12.2.0-14) 12.2.0\n", "", "12.2.0"},
		{"g++", "g++ (Ubuntu 13.2.0-4ubuntu3) 13.2.0\n", "", "13.2.0"},
		{"mysql", "mysql  Ver 15.1 Distrib 10.11.6-MariaDB, for debian-linux-gnu (x86_64)\n", "", "10.11.6-MariaDB"},
		{"mysql", "mysql  Ver 8.0.35 for Linux on x86_64 (MySQL Community Server - GPL)\n", "", "8.0.35"},
		{"kubectl", "Client Version: v1.29.0\nKustomize Version: v5.0.4\n", "", "1.29.0"},
		{"kubectl", `Client Version: version.Info{Major:"1", Minor:"20", GitVersion:"v1.20.15"}`, "", "1.20.15"},
		{"helm", "v3.14.0+g3fc9f4b\n", "", "3.14.0+g3fc9f4b"},
		{"perl", "\nThis is perl 5, version 36, subversion 0 (v5.36.0) built for x86_64-linux-gnu-thread-multi\n", "", "5.36.0"},
		{"ssh", "", "OpenSSH_9.2p1 Debian-2+deb12u3, OpenSSL 3.0.15 3 Sep 2024\n", "9.2p1"},
		{"docker", "Docker version 24.0.7, build afdd53b\n", "", "24.0.7"},
		{"terraform", "Terraform v1.7.0\non linux_amd64\n", "", "1.7.0"},
		{"az", "{\n  \"azure-cli\": \"2.55.0\",\n  \"azure-cli-core\": \"2.55.0\"\n}\n", "", "2.55.0"},
		{"python", "", "Python 2.7.18\n", "2.7.18"},
		{"ruby", "ruby 3.1.2p20 (2022-04-12 revision 4491bb740a) [x86_64-linux-gnu]\n", "", "3.1.2"},
		{"rsync", "rsync  version 3.2.7  protocol version 31\n", "", "3.2.7"},
		{"ninja", "1.11.1\n", "", "1.11.1"},
		{"zstd", "*** Zstandard CLI (64-bit) v1.5.4, by Yann Collet ***\n", "", "1.5.4"},
		{"jq", "jq-1.6\n", "", "1.6"},
		{"jq", "usage: jq\n", "", ""},
		{"unknown-tool", "1.2.3\n", "", ""},
	}
	for _, tc := range tests {
		got, ok := tools.ExtractVersion(tc.tool, tc.stdout, tc.stderr)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("ExtractVersion(%s, %q, %q) = %q, %v; want %q", tc.tool, tc.stdout, tc.stderr, got, ok, tc.want)
		}
	}
}
