"""Sanity limits: what archspec refuses to expand, allocate or read."""

MAX_SOURCE_BYTES = 1024 * 1024
MAX_NESTING = 200
# Errors (and, apart, warnings) reported per file; past this a note says the rest are not shown.
MAX_FINDINGS = 200
# Findings rendered as text per file (the rest are counted in one line; JSON lists all), and
# columns of a source line echoed either side of a finding's span.
MAX_SHOWN = 50
ECHO_COLUMNS = 80
MAX_LAYERS = 100_000
MAX_INT = 2**31 - 1
# Counts no machine could hold: 10^12 float32 values are 4 TB.
MAX_PARAMS = 10**12
# Rows or columns of a map whose pixels-never-read check is done (one byte each per window).
MAX_COVERAGE = 2**24
MAX_ACTIVATIONS = 10**12
DEFAULT_MAX_BUILD_PARAMS = 2 * 10**9
# `archspec import --input`: the values of the zero input the model may be run on (float32:
# 256 MiB; a ResNet's first activations on it take some GiB more).
MAX_IMPORT_INPUT = 2**26
# Diagrams: boxes Graphviz's dot is asked to lay out (it crashed on a 60,000-box chain), and
# characters of free text in one label (dot refuses an HTML label over 16 KB).
MAX_DRAWN_BOXES = 10_000
MAX_LABEL_CHARS = 200
# Training: the memory a run's dataset, one augmented batch, or the weights it keeps
# (snapshots, ensemble members) may take, estimated by the front end before anything runs.
MAX_RUN_BYTES = 16 * 2**30
