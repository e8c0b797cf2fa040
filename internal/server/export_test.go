package server

// Exported for the external tests' fuzz targets.
var (
	AppendResolution = appendResolution
	ResolveParams    = resolveParams
	DecodeEvents     = decodeEvents
	DecodeReport     = decodeReport
)
