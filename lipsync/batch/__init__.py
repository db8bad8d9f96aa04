"""Batch jobs: many lip-sync runs from a CSV file with the models loaded once, locally or on Ray (``--ray``)."""
