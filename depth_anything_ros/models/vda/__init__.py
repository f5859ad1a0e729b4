"""Video Depth Anything (metric): a temporal DPT head on DINOv2, streamed or windowed."""
