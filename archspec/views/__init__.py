"""Views of a report and a network: tables and diagrams; they format, they compute nothing."""
