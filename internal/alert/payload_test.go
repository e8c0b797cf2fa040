package alert_test

import (
	"encoding/json"
	"os"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/imagegate/imagegate/internal/alert"
)

// TestPayloadDocumented keeps components/schemas/AlertPayload in the
// OpenAPI file true: the json format's fields, and the ones always sent,
// are the documented properties and required list.
func TestPayloadDocumented(t *testing.T) {
	raw, err := os.ReadFile("../server/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Required   []string       `yaml:"required"`
				Properties map[string]any `yaml:"properties"`
			} `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	schema, ok := doc.Components.Schemas["AlertPayload"]
	if !ok {
		t.Fatal("openapi.yaml has no components/schemas/AlertPayload")
	}
	var documented []string
	for k := range schema.Properties {
		documented = append(documented, k)
	}
	slices.Sort(documented)

	full := sqliteAlert("rollout/r-7/rev/4")
	full.Details = json.RawMessage(`{"bf":2400}`)
	empty := full
	empty.FromVersion, empty.RolloutID, empty.RingName, empty.ProbableCause, empty.Details = "", "", "", nil, nil
	fields := func(b []byte) []string {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		var out []string
		for k := range m {
			out = append(out, k)
		}
		slices.Sort(out)
		return out
	}
	b, err := alert.Render(alert.FormatJSON, full, full.Link)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(documented, fields(b)); diff != "" {
		t.Errorf("json payload fields and documented properties differ (-documented +sent):\n%s", diff)
	}
	b, err = alert.Render(alert.FormatJSON, empty, empty.Link)
	if err != nil {
		t.Fatal(err)
	}
	required := slices.Sorted(slices.Values(schema.Required))
	if diff := cmp.Diff(required, fields(b)); diff != "" {
		t.Errorf("fields always sent and documented required differ (-required +sent):\n%s", diff)
	}
}
