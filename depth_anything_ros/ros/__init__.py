"""The ROS 2 node and its helpers: wiring of topics, parameters, threads and diagnostics around frame/."""
