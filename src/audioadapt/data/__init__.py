"""Data: records, corpus readers, label encoding, sampling and generators."""
