"""pydantic contracts: file kinds, tenants, SFTP users, identity provider, reports, events.

Nothing in this package imports boto3 or knows about AWS services.
"""
