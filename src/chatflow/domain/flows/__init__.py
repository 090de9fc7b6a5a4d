"""Flows: the catalog, the flow document, variables and the interpreter; pure, no I/O."""
