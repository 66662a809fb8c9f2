"""The benchmarks: `python -m bench --scenario NAME [its options]` (bench/__main__.py), one
module per scenario; bench/README.md says what each measures. Speed targets live here, never
as timed assertions in tests."""

# --scenario NAME runs this module's main() with the other arguments.
SCENARIOS = {
    "clip": "bench.clip",
    "analyze": "bench.analyze",
    "internvit": "bench.internvit",
    "search": "bench.search",
    "load": "bench.load",
    "startup": "bench.startup",
    "engines": "bench.engines",
    "thumbnails": "bench.thumbnails",
    "burst": "bench.burst",
    "container": "bench.container",
    "openai": "bench.openai_embeddings",
    "phash": "bench.phash",
    "ingest": "bench.ingest",
}
