"""Rosbag tools: sample bag, process, evaluate, play and record (rosbags library; play/record need rclpy)."""
