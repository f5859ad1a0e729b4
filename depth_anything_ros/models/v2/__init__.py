"""Depth-Anything-V2 (metric and relative): network, checkpoint reader, preprocessing, estimator."""
