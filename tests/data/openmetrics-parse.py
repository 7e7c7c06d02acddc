#!/usr/bin/env python3
"""Parse OpenMetrics text from stdin with prometheus_client's parser (which
rejects anything the format forbids, e.g. a missing "# EOF") and print the
result as JSON: {"families": {name: type}, "samples": [[name, labels,
value], ...]}. Exit 1 with the parser's message if the text is invalid."""
import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families

try:
    families = list(text_string_to_metric_families(sys.stdin.read()))
except Exception as e:  # the parser raises ValueError and friends
    print(f"invalid OpenMetrics: {e!r}", file=sys.stderr)
    sys.exit(1)
out = {"families": {}, "samples": []}
for f in families:
    out["families"][f.name] = f.type
    for s in f.samples:
        out["samples"].append([s.name, s.labels, s.value])
json.dump(out, sys.stdout)
