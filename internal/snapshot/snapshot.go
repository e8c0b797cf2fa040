// Package snapshot is the schema every other part of imagegate speaks: what
// `imagegate scan` found in an image, written as deterministic JSON.
//
// The JSON form is a public contract (schema "imagegate/snapshot/v1"): fields
// may be added, never renamed or removed, and their meaning never changes
// within v1. Readers must ignore fields they do not know.
package snapshot

import "time"

// SchemaV1 identifies the version of the JSON form written by this package.
const SchemaV1 = "imagegate/snapshot/v1"

// Snapshot is the inventory of one image at one moment.
type Snapshot struct {
	Schema string `json:"schema"`
	// Source is the SOURCE argument the scan was given, e.g. "dir:/x".
	Source string `json:"source"`
	// ScannedAt is the only field allowed to differ between two scans of
	// the same image.
	ScannedAt time.Time `json:"scannedAt"`
	Scanner   Scanner   `json:"scanner"`
	// Exec says how runtimes were probed: "none" (files only), "local" or
	// "chroot". Statuses found with execution are stronger evidence.
	Exec string `json:"exec"`
	// Architecture of the image in GOARCH terms (amd64, arm64), when known.
	Architecture string    `json:"architecture,omitempty"`
	Image        *Image    `json:"image,omitempty"`
	OS           OS        `json:"os"`
	Packages     []Package `json:"packages"`
	Runtimes     []Runtime `json:"runtimes"`
	Tools        []Tool    `json:"tools"`
	// ToolPath is the PATH Tools were listed from, in search order (the
	// one list not sorted: its order is its meaning): the standard
	// directories, the image's /etc/environment and config PATH, and for
	// host the PATH of the process that ran the scan. Absent in snapshots
	// written before it was added.
	ToolPath []string `json:"toolPath,omitempty"`
	// Skipped lists image entries that were deliberately not materialised
	// (device nodes, FIFOs, sockets).
	Skipped []SkippedEntry `json:"skipped,omitempty"`
	// Warnings say what the scan could not do and why (e.g. "chroot not
	// permitted; modules checked without execution").
	Warnings []string `json:"warnings,omitempty"`
}

// Exec modes (Snapshot.Exec).
const (
	// ExecNone: nothing was run; statuses rest on files and libraries.
	ExecNone   = "none"
	ExecLocal  = "local"
	ExecChroot = "chroot"
)

// Scanner names the program that wrote the snapshot.
type Scanner struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Image is what the image's manifest and config say, for OCI, docker-archive
// and registry sources.
type Image struct {
	Reference    string            `json:"reference,omitempty"`
	Digest       string            `json:"digest,omitempty"`
	ConfigDigest string            `json:"configDigest,omitempty"`
	Layers       []Layer           `json:"layers,omitempty"`
	Env          []string          `json:"env,omitempty"`
	Entrypoint   []string          `json:"entrypoint,omitempty"`
	Cmd          []string          `json:"cmd,omitempty"`
	User         string            `json:"user,omitempty"`
	WorkingDir   string            `json:"workingDir,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	ExposedPorts []string          `json:"exposedPorts,omitempty"`
	Volumes      []string          `json:"volumes,omitempty"`
	OS           string            `json:"os,omitempty"`
	Architecture string            `json:"architecture,omitempty"`
}

// Layer is one filesystem layer of an image, in application order.
type Layer struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size,omitempty"`
}

// OS is what /etc/os-release (or /usr/lib/os-release) says.
type OS struct {
	ID         string `json:"id,omitempty"`
	VersionID  string `json:"versionId,omitempty"`
	PrettyName string `json:"prettyName,omitempty"`
	IDLike     string `json:"idLike,omitempty"`
	Codename   string `json:"versionCodename,omitempty"`
}

// Package is one package known to the OS package manager.
type Package struct {
	// Type is the package manager: "deb", "apk" or "rpm".
	Type    string `json:"type"`
	Name    string `json:"name"`
	Version string `json:"version"`
	Arch    string `json:"arch,omitempty"`
	// SourceName is the source package it was built from, when it differs.
	SourceName string `json:"sourceName,omitempty"`
}

// Package types (Package.Type).
const (
	PackageDeb = "deb"
	PackageAPK = "apk"
	PackageRPM = "rpm"
)

// Runtime is one installation of a language runtime or SDK.
type Runtime struct {
	// Kind is one of python, node, go, java, ruby, dotnet-sdk, dotnet-runtime.
	Kind    string `json:"kind"`
	Version string `json:"version"`
	// Path is the installation prefix inside the image.
	Path string `json:"path"`
	// Executable is the interpreter or driver inside the image.
	Executable string `json:"executable,omitempty"`
	// Origin tells where it came from: "os-package" (owned by the OS
	// package manager), "toolcache", "pyenv", "conda", "nvm", "sdkman",
	// "source" (any other prefix, e.g. /usr/local).
	Origin string `json:"origin,omitempty"`
	// OwnerPackage is the OS package that owns the executable, if any.
	OwnerPackage string `json:"ownerPackage,omitempty"`
	// Modules is the standard library, module by module (Python).
	Modules []Module `json:"modules,omitempty"`
	// Packages are the distributions installed for this runtime
	// (Python site-packages, Node global modules).
	Packages []RuntimePackage `json:"packages,omitempty"`
}

// Runtime kinds (Runtime.Kind).
const (
	RuntimePython        = "python"
	RuntimeNode          = "node"
	RuntimeGo            = "go"
	RuntimeJava          = "java"
	RuntimeRuby          = "ruby"
	RuntimeDotnetSDK     = "dotnet-sdk"
	RuntimeDotnetRuntime = "dotnet-runtime"
)

// Runtime origins.
const (
	OriginOSPackage = "os-package"
	OriginToolcache = "toolcache"
	OriginPyenv     = "pyenv"
	OriginConda     = "conda"
	OriginNVM       = "nvm"
	OriginSDKMAN    = "sdkman"
	OriginSource    = "source"
)

// Module statuses.
const (
	// StatusOK: imports (with execution) or all its files and libraries
	// are present (without).
	StatusOK = "ok"
	// StatusMissing: expected for this version but not shipped at all.
	StatusMissing = "missing"
	// StatusBroken: shipped, but found unusable without running it (a
	// C extension it needs is absent, or a shared library does not resolve).
	StatusBroken = "broken"
	// StatusImportError: importing it raised an exception.
	StatusImportError = "import-error"
	// StatusCrash: importing it killed the interpreter.
	StatusCrash = "crash"
	// StatusTimeout: importing it did not finish within the per-module limit.
	StatusTimeout = "timeout"
)

// Tool statuses (Tool.Status) are StatusOK, StatusTimeout (the probe did
// not finish in time) and StatusFailed.
const (
	// StatusFailed: the version probe ran but gave no version (it exited
	// non-zero, was killed, or printed none).
	StatusFailed = "failed"
)

// Module kinds (Module.Kind).
const (
	ModuleBuiltin   = "builtin"   // compiled into the interpreter
	ModuleExtension = "extension" // a shared object
	ModulePure      = "pure"      // one source file
	ModulePackage   = "package"   // a directory with __init__
)

// Module is one top-level standard-library module of a runtime.
type Module struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	// Kind is how it is shipped: "builtin", "extension", "pure", "package".
	Kind string `json:"kind,omitempty"`
	// Error is the evidence for a status other than ok, in the runtime's
	// own words when it was executed (e.g. "No module named '_sqlite3'").
	Error string `json:"error,omitempty"`
	// MissingLibraries are shared libraries that did not resolve.
	MissingLibraries []string `json:"missingLibraries,omitempty"`
}

// RuntimePackage is a distribution installed for a runtime.
type RuntimePackage struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Tool is an executable on the standard PATH.
type Tool struct {
	Name string `json:"name"`
	Path string `json:"path"`
	// Version is what the tool said about itself, for the curated list of
	// common CI tools, when executed.
	Version string `json:"version,omitempty"`
	// Status of the version probe: "ok", "failed" or "timeout"; empty when
	// no probe ran.
	Status string `json:"status,omitempty"`
	Error  string `json:"error,omitempty"`
	// OwnerPackage is the OS package that ships it, if any.
	OwnerPackage string `json:"ownerPackage,omitempty"`
}

// SkippedEntry is an image entry that was not created on disk.
type SkippedEntry struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}
