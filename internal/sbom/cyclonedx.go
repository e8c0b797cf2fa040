// Package sbom writes a snapshot as a software bill of materials for the
// tools that read one (dependency-track, grype, GitHub's dependency graph):
// CycloneDX 1.6 JSON through the CycloneDX Go library. The snapshot stays
// the contract; an SBOM is one more rendering of it, as deterministic as the
// snapshot (the same snapshot gives the same bytes, serial number included).
//
// What an SBOM usually lacks is what imagegate exists for: whether the parts
// of a runtime work. Each runtime's standard-library modules are components
// nested in the runtime's, with their state and evidence as properties
// (imagegate:status "broken", imagegate:evidence "No module named
// '_sqlite3'"), so a reader of the SBOM sees the 2019 incident too.
package sbom

import (
	"cmp"
	"crypto/sha1"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/imagegate/imagegate/internal/diff"
	"github.com/imagegate/imagegate/internal/report"
	"github.com/imagegate/imagegate/internal/snapshot"
)

// CycloneDXJSON is the -o name of the CycloneDX JSON rendering.
const CycloneDXJSON = "cyclonedx-json"

// SpecVersion is the CycloneDX version written: 1.6, which the readers in
// use today accept (1.7 is too new for several).
const SpecVersion = cdx.SpecVersion1_6

// Formats are the SBOM renderings of a snapshot, for a command to offer
// beside snapshot.Formats.
var Formats = report.Formats[*snapshot.Snapshot]{
	{Name: CycloneDXJSON, Write: WriteCycloneDXJSON},
}

// Property names, in the imagegate namespace as CycloneDX's property
// taxonomy asks of names it does not define.
const (
	PropStatus         = "imagegate:status"
	PropEvidence       = "imagegate:evidence"
	PropMissingLibrary = "imagegate:missingLibrary"
	PropKind           = "imagegate:kind"
	PropPart           = "imagegate:part"
	PropPath           = "imagegate:path"
	PropExecutable     = "imagegate:executable"
	PropOrigin         = "imagegate:origin"
	PropOwnerPackage   = "imagegate:ownerPackage"
	PropModules        = "imagegate:modules"
	PropModulesNotOK   = "imagegate:modulesNotOk"
	PropSourcePackage  = "imagegate:sourcePackage"
	PropSource         = "imagegate:source"
	PropExec           = "imagegate:exec"
	PropArchitecture   = "imagegate:architecture"
	PropConfigDigest   = "imagegate:configDigest"
	PropWarning        = "imagegate:warning"
)

// Values of PropPart: what a component nested in a runtime is.
const (
	PartStandardLibrary = "standard-library"
	PartPackage         = "package"
)

// WriteCycloneDXJSON writes s as a CycloneDX 1.6 JSON document, indented,
// without HTML escaping (evidence carries "<" and "&"), ending in a newline.
func WriteCycloneDXJSON(w io.Writer, s *snapshot.Snapshot) error {
	bom, err := CycloneDX(s)
	if err != nil {
		return err
	}
	enc := cdx.NewBOMEncoder(w, cdx.BOMFileFormatJSON)
	enc.SetPretty(true).SetEscapeHTML(false)
	if err := enc.EncodeVersion(bom, SpecVersion); err != nil {
		return fmt.Errorf("encode CycloneDX: %w", err)
	}
	return nil
}

// CycloneDX returns s as a CycloneDX BOM: the image as the metadata
// component, then the OS, its packages with package URLs, the runtimes
// with their standard-library modules and installed packages nested, and
// the tools on PATH. Components follow the snapshot's canonical order;
// bom-refs are imagegate's diff identities (package/deb/zlib1g:amd64,
// runtime/python@3.7/module/sqlite3, tool/git), so a changes file and an
// SBOM name the same things alike.
func CycloneDX(s *snapshot.Snapshot) (*cdx.BOM, error) {
	serial, err := serialNumber(s)
	if err != nil {
		return nil, err
	}
	refs := refSet{}
	bom := cdx.NewBOM()
	bom.SerialNumber = serial
	bom.Metadata = &cdx.Metadata{
		Timestamp: s.ScannedAt.UTC().Format(time.RFC3339),
		Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{{
			Type: cdx.ComponentTypeApplication, Name: cmp.Or(s.Scanner.Name, "imagegate"), Version: s.Scanner.Version,
		}}},
		Component: imageComponent(s, refs),
	}
	var comps []cdx.Component
	if c := osComponent(s.OS, refs); c != nil {
		comps = append(comps, *c)
	}
	for i := range s.Packages {
		comps = append(comps, packageComponent(s, &s.Packages[i], refs))
	}
	ids := diff.RuntimeIDs(s.Runtimes)
	for i := range s.Runtimes {
		comps = append(comps, runtimeComponent(&s.Runtimes[i], ids[i], refs))
	}
	for i := range s.Tools {
		comps = append(comps, toolComponent(&s.Tools[i], refs))
	}
	bom.Components = &comps
	return bom, nil
}

// serialNumber derives the BOM's serial from the snapshot's canonical JSON
// (a name-based UUID, version 5), so that writing a snapshot twice gives
// one SBOM and a rescan, whose scannedAt differs, another.
func serialNumber(s *snapshot.Snapshot) (string, error) {
	h := sha1.New()
	if err := snapshot.Encode(h, s); err != nil {
		return "", err
	}
	sum := h.Sum(nil)
	sum[6] = sum[6]&0x0f | 0x50 // version 5
	sum[8] = sum[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", sum[0:4], sum[4:6], sum[6:8], sum[8:10], sum[10:16]), nil
}

func imageComponent(s *snapshot.Snapshot, refs refSet) *cdx.Component {
	c := &cdx.Component{Type: cdx.ComponentTypeContainer, Name: s.Source, BOMRef: refs.add("image", "")}
	ps := propList{}
	ps.add(PropSource, s.Source)
	ps.add(PropExec, s.Exec)
	ps.add(PropArchitecture, s.Architecture)
	if img := s.Image; img != nil {
		if img.Reference != "" {
			c.Name = img.Reference
		}
		c.Version = img.Digest
		c.PackageURL = ociPURL(s.Source, img.Reference, img.Digest, cmp.Or(img.Architecture, s.Architecture))
		ps.add(PropConfigDigest, img.ConfigDigest)
	}
	for _, w := range s.Warnings {
		ps.add(PropWarning, w)
	}
	c.Properties = ps.list()
	return c
}

func osComponent(o snapshot.OS, refs refSet) *cdx.Component {
	if o.ID == "" && o.PrettyName == "" {
		return nil
	}
	return &cdx.Component{
		Type: cdx.ComponentTypeOS, BOMRef: refs.add("os", ""),
		Name: cmp.Or(o.ID, o.PrettyName), Version: cmp.Or(o.VersionID, o.Codename), Description: o.PrettyName,
	}
}

func packageComponent(s *snapshot.Snapshot, p *snapshot.Package, refs refSet) cdx.Component {
	c := cdx.Component{
		Type: cdx.ComponentTypeLibrary, BOMRef: refs.add(diff.PackageID(p), p.Version),
		Name: p.Name, Version: p.Version, PackageURL: osPackagePURL(s.OS, p),
	}
	ps := propList{}
	ps.add(PropSourcePackage, p.SourceName)
	c.Properties = ps.list()
	return c
}

func runtimeComponent(r *snapshot.Runtime, id string, refs refSet) cdx.Component {
	c := cdx.Component{
		// CycloneDX's "platform": a runtime environment which interprets
		// or executes software.
		Type: cdx.ComponentTypePlatform, BOMRef: refs.add(id, r.Version),
		Name: r.Kind, Version: r.Version,
	}
	notOK := 0
	for _, m := range r.Modules {
		if m.Status != snapshot.StatusOK {
			notOK++
		}
	}
	ps := propList{}
	ps.add(PropPath, r.Path)
	ps.add(PropExecutable, r.Executable)
	ps.add(PropOrigin, r.Origin)
	ps.add(PropOwnerPackage, r.OwnerPackage)
	if len(r.Modules) > 0 {
		ps.add(PropModules, strconv.Itoa(len(r.Modules)))
		ps.add(PropModulesNotOK, strconv.Itoa(notOK))
	}
	c.Properties = ps.list()
	var nested []cdx.Component
	for i := range r.Modules {
		nested = append(nested, moduleComponent(r, id, &r.Modules[i], refs))
	}
	for _, p := range r.Packages {
		pp := propList{}
		pp.add(PropPart, PartPackage)
		nested = append(nested, cdx.Component{
			Type: cdx.ComponentTypeLibrary, BOMRef: refs.add(id+"/package/"+p.Name, p.Version),
			Name: p.Name, Version: p.Version, PackageURL: runtimePackagePURL(r.Kind, p), Properties: pp.list(),
		})
	}
	if len(nested) > 0 {
		c.Components = &nested
	}
	return c
}

// moduleComponent is one standard-library module: shipped with the
// runtime, so of its version, and whatever its state, listed — a module
// that is missing is the finding, not an omission.
func moduleComponent(r *snapshot.Runtime, runtimeID string, m *snapshot.Module, refs refSet) cdx.Component {
	ps := propList{}
	ps.add(PropPart, PartStandardLibrary)
	ps.add(PropStatus, m.Status)
	ps.add(PropKind, m.Kind)
	ps.add(PropEvidence, m.Error)
	for _, lib := range m.MissingLibraries {
		ps.add(PropMissingLibrary, lib)
	}
	return cdx.Component{
		Type: cdx.ComponentTypeLibrary, BOMRef: refs.add(runtimeID+"/module/"+m.Name, ""),
		Name: m.Name, Version: r.Version, Properties: ps.list(),
	}
}

func toolComponent(t *snapshot.Tool, refs refSet) cdx.Component {
	ps := propList{}
	ps.add(PropPath, t.Path)
	ps.add(PropStatus, t.Status)
	ps.add(PropEvidence, t.Error)
	ps.add(PropOwnerPackage, t.OwnerPackage)
	return cdx.Component{
		Type: cdx.ComponentTypeApplication, BOMRef: refs.add("tool/"+t.Name, t.Path),
		Name: t.Name, Version: t.Version, Properties: ps.list(),
	}
}

// propList collects a component's properties in the order added, leaving out
// empty values (CycloneDX has no use for them, and they would only differ
// between snapshots that say nothing).
type propList []cdx.Property

func (p *propList) add(name, value string) {
	if value != "" {
		*p = append(*p, cdx.Property{Name: name, Value: value})
	}
}

func (p propList) list() *[]cdx.Property {
	if len(p) == 0 {
		return nil
	}
	l := []cdx.Property(p)
	return &l
}

// refSet hands out bom-refs, which CycloneDX requires unique in a BOM.
// A snapshot can hold one identity twice (two versions of an rpm
// package, two tools of one name on PATH): the later ones are told apart
// by what differs ("@VERSION", "[PATH]"), then by a count.
type refSet map[string]bool

func (rs refSet) add(ref, distinct string) string {
	if !rs[ref] {
		rs[ref] = true
		return ref
	}
	if distinct != "" {
		alt := ref + "@" + distinct
		if strings.HasPrefix(distinct, "/") {
			alt = ref + "[" + distinct + "]"
		}
		if !rs[alt] {
			rs[alt] = true
			return alt
		}
	}
	for n := 2; ; n++ {
		alt := ref + "#" + strconv.Itoa(n)
		if !rs[alt] {
			rs[alt] = true
			return alt
		}
	}
}
