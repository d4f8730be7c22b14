"""Pure functions on the interval table: no Home Assistant import, pandas/pyarrow inside."""
