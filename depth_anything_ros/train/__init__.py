"""`depth-anything-ros train`: fine-tune a metric checkpoint on RGB-D rosbags with the official recipe."""
