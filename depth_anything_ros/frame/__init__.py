"""One frame -> every output (depth, camera_info, cloud, colour, scale), without ROS: node, bag tools, CLI share it."""
