"""Ray Tune: checkpoint selection (and sweeps) by code metrics rather than by loss."""
