"""The foundations every stage uses: source text and spans, diagnostics, limits, files, text."""
