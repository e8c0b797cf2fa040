package version

// The names below are the snapshot's (snapshot.Package.Type,
// snapshot.Runtime.Kind, tool names on PATH), written out because version
// imports nothing of imagegate's; scheme_test.go holds them to the
// snapshot's constants.

// SchemeForPackage is the version order of an OS package manager ("deb",
// "rpm", "apk"); any other type is ordered naturally.
func SchemeForPackage(typ string) Scheme {
	switch typ {
	case "deb":
		return Deb
	case "rpm":
		return RPM
	case "apk":
		return APK
	}
	return Natural
}

// SchemeForRuntime is the version order of a runtime kind, for the
// runtime's own versions and for those of the packages installed for it
// (Python distributions follow PEP 440 like the interpreter). An unknown
// kind is ordered naturally.
func SchemeForRuntime(kind string) Scheme {
	switch kind {
	case "python":
		return PEP440
	case "node", "go", "java", "ruby", "dotnet-sdk", "dotnet-runtime":
		return Semver
	}
	return Natural
}

// SchemeForTool is the version order for a tool or runtime named in a
// check spec's tools section: PEP 440 for Python and its tools, semver
// (which falls back to natural order for what it cannot parse) for
// everything else, since most CI tools version themselves that way.
func SchemeForTool(name string) Scheme {
	switch name {
	case "python", "python2", "python3", "pip", "pip3", "pipx":
		return PEP440
	}
	return Semver
}
