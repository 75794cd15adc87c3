"""The HTML report of a run (page) and its plots (plots)."""
