"""The simulator's own studies: card calibration, orchestration fit, validation, fit to recorded pools."""
