"""Sanity limits: what archspec refuses to expand, allocate or read."""

MAX_SOURCE_BYTES = 1024 * 1024
MAX_NESTING = 200
# Errors (and, apart, warnings) reported per file; past this a note says the rest are not shown.
MAX_FINDINGS = 200
MAX_LAYERS = 100_000
MAX_INT = 2**31 - 1
# Counts no machine could hold: 10^12 float32 values are 4 TB.
MAX_PARAMS = 10**12
MAX_ACTIVATIONS = 10**12
DEFAULT_MAX_BUILD_PARAMS = 2 * 10**9
