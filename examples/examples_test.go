// Package examples_test keeps the example files that README.md points to
// from rotting: each is parsed by the reader imagegate itself uses, and the
// serve example must name every key the configuration has.
package examples_test

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/imagegate/imagegate/internal/check"
	"github.com/imagegate/imagegate/internal/config"
	"github.com/imagegate/imagegate/internal/diff"
)

func read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestServeExample(t *testing.T) {
	b := read(t, "serve.yaml")
	cfg, err := config.Parse("serve.yaml", b)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Rings) == 0 || len(cfg.Images) == 0 || cfg.Controller.LeaseTTL == 0 {
		t.Errorf("serve.yaml parses to a sparse config: %+v", cfg)
	}
	// A key added to the configuration must be shown here too.
	for _, key := range yamlKeys(reflect.TypeOf(config.Config{}), nil) {
		if !strings.Contains(string(b), key+":") {
			t.Errorf("serve.yaml does not show the key %q", key)
		}
	}
}

// yamlKeys lists the yaml keys of t and of the structs inside it.
func yamlKeys(t reflect.Type, seen map[reflect.Type]bool) []string {
	if seen == nil {
		seen = map[reflect.Type]bool{}
	}
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || seen[t] {
		return nil
	}
	seen[t] = true
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		keys = append(keys, name)
		keys = append(keys, yamlKeys(f.Type, seen)...)
	}
	return keys
}

func TestChangesExample(t *testing.T) {
	ch, err := diff.ParseChanges("changes.yaml", read(t, "changes.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Declarations) < 5 {
		t.Errorf("changes.yaml declares %d patterns", len(ch.Declarations))
	}
	for _, tc := range []struct{ class, id string }{
		{diff.ClassRemoved, "tool/php8.2"},
		{diff.ClassBroken, "runtime/python@3.11[/opt/hostedtoolcache/Python/*/x64]/module/_dbm"},
		{diff.ClassRemoved, "package/deb/libmysqlclient21:amd64"},
	} {
		covered := false
		for _, d := range ch.Declarations {
			covered = covered || d.Covers(tc.class, tc.id)
		}
		if !covered {
			t.Errorf("changes.yaml does not cover %s %s", tc.class, tc.id)
		}
	}
}

func TestSpecExample(t *testing.T) {
	spec, err := check.ParseSpec("spec.yaml", read(t, "spec.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if spec == nil || len(spec.CommandTests) != 2 || len(spec.FileTests) != 2 || len(spec.Python) != 1 || spec.MetadataTest == nil {
		t.Errorf("spec.yaml parses to %+v, want its two command tests, two file tests, one python requirement and metadata", spec)
	}
}

// TestGossExample renders goss.yaml with goss-vars.yaml as `imagegate
// check --goss goss.yaml --vars goss-vars.yaml` does.
func TestGossExample(t *testing.T) {
	vars, err := check.ReadGossVars("goss-vars.yaml", "")
	if err != nil {
		t.Fatal(err)
	}
	g, err := check.ReadGossFile("goss.yaml", check.GossTemplate{Vars: vars})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range g.Resources {
		got = append(got, r.Type+" "+r.Key)
	}
	want := []string{"file /srv/app/config.ini", "user app", "package python3", "port tcp:8080", "process python3",
		"http http://localhost:8080/healthz", "addr tcp://localhost:8080", "dns localhost", "command python3 -c 'import sqlite3'"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("goss.yaml renders to (-want +got):\n%s", diff)
	}
}
