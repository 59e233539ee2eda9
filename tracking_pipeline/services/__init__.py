"""Dagster-free services: read warehouse tables, call the analytics, return rows to write.

The asset steps (`tracking_pipeline/defs/`) and the Performance Tracker app import them alike, so a number is
computed by one piece of code wherever it is shown.
"""
