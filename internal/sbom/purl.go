package sbom

import (
	"cmp"
	"path"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/imagegate/imagegate/internal/snapshot"
)

// purl builds a package URL (github.com/package-url/purl-spec):
// pkg:TYPE/NAMESPACE/NAME@VERSION?KEY=VALUE&…, qualifiers sorted by key,
// empty ones left out, every part percent-encoded but for the characters
// the spec leaves bare. A Debian version's epoch colon and "+" are encoded
// (1%3A1.2.13, 2%2Bdeb12u2) as scanners that match purls expect.
func purl(typ, namespace, pkgName, version string, qualifiers map[string]string) string {
	var b strings.Builder
	b.WriteString("pkg:" + typ + "/")
	if namespace != "" {
		for _, seg := range strings.Split(namespace, "/") {
			b.WriteString(escape(seg) + "/")
		}
	}
	b.WriteString(escape(pkgName))
	if version != "" {
		b.WriteString("@" + escape(version))
	}
	keys := make([]string, 0, len(qualifiers))
	for k, v := range qualifiers {
		if v != "" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for i, k := range keys {
		if i == 0 {
			b.WriteString("?")
		} else {
			b.WriteString("&")
		}
		// A value keeps its slashes bare, as the spec's own
		// examples write repository_url=docker.io/library/debian.
		b.WriteString(k + "=" + strings.ReplaceAll(escape(qualifiers[k]), "%2F", "/"))
	}
	return b.String()
}

func escape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(".-_~", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// osPackagePURL is an OS package's purl, its namespace the distribution
// (os-release ID; debian, fedora or alpine when the image has none) and
// its distro qualifier ID-VERSION_ID (debian-12, alpine-3.20), or
// ID-VERSION_CODENAME for a release without a number (debian-trixie).
// rpm's epoch is a qualifier of its own, as the purl spec has it.
func osPackagePURL(o snapshot.OS, p *snapshot.Package) string {
	var defaultNS string
	switch p.Type {
	case snapshot.PackageDeb:
		defaultNS = "debian"
	case snapshot.PackageRPM:
		defaultNS = "fedora"
	case snapshot.PackageAPK:
		defaultNS = "alpine"
	default:
		return ""
	}
	ns := strings.ToLower(cmp.Or(o.ID, defaultNS))
	q := map[string]string{"arch": p.Arch, "upstream": p.SourceName}
	if rel := cmp.Or(o.VersionID, o.Codename); o.ID != "" && rel != "" {
		q["distro"] = strings.ToLower(o.ID) + "-" + rel
	}
	v := p.Version
	if p.Type == snapshot.PackageRPM {
		if epoch, rest, ok := strings.Cut(v, ":"); ok {
			q["epoch"], v = epoch, rest
		}
	}
	return purl(p.Type, ns, p.Name, v, q)
}

// runtimePackagePURL is the purl of a package installed for a runtime,
// for the ecosystems purl names (PyPI, npm, RubyGems); none otherwise.
func runtimePackagePURL(kind string, p snapshot.RuntimePackage) string {
	switch kind {
	case snapshot.RuntimePython:
		// PEP 503 normalisation, which the pypi purl type asks for.
		n := strings.ToLower(p.Name)
		n = strings.NewReplacer("_", "-", ".", "-").Replace(n)
		for strings.Contains(n, "--") {
			n = strings.ReplaceAll(n, "--", "-")
		}
		return purl("pypi", "", n, p.Version, nil)
	case snapshot.RuntimeNode:
		if scope, n, ok := strings.Cut(p.Name, "/"); ok && strings.HasPrefix(scope, "@") {
			return purl("npm", scope, n, p.Version, nil)
		}
		return purl("npm", "", p.Name, p.Version, nil)
	case snapshot.RuntimeRuby:
		return purl("gem", "", p.Name, p.Version, nil)
	}
	return ""
}

// ociPURL is an image's purl, pkg:oci/NAME@DIGEST with the repository it
// was pulled from, for images read from a registry by a reference that
// parses; none for layouts and archives, whose name is a file's.
func ociPURL(source, ref, digest, arch string) string {
	if !strings.HasPrefix(source, "registry:") || ref == "" || !strings.HasPrefix(digest, "sha256:") {
		return ""
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return ""
	}
	repo := r.Context()
	q := map[string]string{"repository_url": repo.Name(), "arch": arch}
	if t, ok := r.(name.Tag); ok {
		q["tag"] = t.TagStr()
	}
	return purl("oci", "", strings.ToLower(path.Base(repo.RepositoryStr())), digest, q)
}
