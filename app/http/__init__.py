"""Thin Falcon resources: HTTP in, an Exchange through the pipeline, HTTP out."""
