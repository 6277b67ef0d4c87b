"""The .arch language: grammar, parser, syntax tree, lowering to the IR, shapes, front end."""
