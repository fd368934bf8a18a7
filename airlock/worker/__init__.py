"""The ingest worker: one upload in, one terminal outcome out, under the tenant's own role and key."""
