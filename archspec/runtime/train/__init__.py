"""Training: plans run by `archspec train` (see docs/train.md); torch is imported here."""
