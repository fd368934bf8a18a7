"""airlock.ingest: bytes in, typed tables and findings out. Knows nothing of Lambda, S3 or events.

pipeline   ``ingest()``, ``IngestOptions``, ``IngestOutcome``, ``report_csv`` -- the worker's entry point
source     spool streams, expand gzip/zip with limits
reader     ``LineSource``: encoding, line endings, noise lines, physical line numbers, field counts
detect     kind from forced option, tenant routing globs, or header signature
engine     contracts compiled to vectorized checks over Arrow batches
reference  the same checks through pydantic, row by row (the differential test's oracle)
keys       bounded-memory duplicate detection
findings   exact counts per rule, capped examples, safe values
writer     partitioned Parquet (committed or deleted), spreadsheet-safe CSV
rules_doc  docs/rules.md from the contracts
cli        ``airlock validate``
"""
