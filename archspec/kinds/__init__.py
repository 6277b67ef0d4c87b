"""The layer kinds and joins, each declared once (parameters, shape, window, cost, saves)."""
