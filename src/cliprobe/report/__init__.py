"""The HTML report: one self-contained file from the aggregate tables and figures."""
