"""Metrics: plain functions checked against scipy (functional) and the paired comparison of two systems (compare)."""
