"""Sources: one module per supplier or grid operator, each producing the interval table."""
