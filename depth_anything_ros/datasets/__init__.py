"""RGB-D datasets beside rosbags (NYU Depth V2, SUN RGB-D, TUM RGB-D, KITTI depth, plain folders); no ROS, no torch."""
