"""One new-style BentoML service per model, each with batchable APIs (adaptive batching)."""
