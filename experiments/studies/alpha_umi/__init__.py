"""alpha-UMi experiments: the static evaluation, the end-to-end loop, the GLPFT data (``slmsim alpha-umi``)."""
