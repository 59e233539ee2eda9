"""Monitoring: system health and the daily report, after the daily chain."""
