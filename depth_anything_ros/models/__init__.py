"""Pixels -> metric depth, without ROS: shared ViT/DPT blocks, the variant table, the family registry, safe loading."""
