"""Depth Anything 3 metric (DA3METRIC-LARGE): network, checkpoint reader, preprocessing, estimator."""
