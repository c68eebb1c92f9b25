"""The run machinery every study shares: driver, run directory, results, progress, Ray start-up."""
