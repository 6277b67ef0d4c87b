"""Back ends: each turns a Network into code for one framework, with its own table per kind."""
