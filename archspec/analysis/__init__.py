"""Figures computed from the IR and the shapes alone: costs per layer, and one Report of them."""
