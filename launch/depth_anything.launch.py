"""Launch depth_anything_node for one camera namespace with config/depth_anything.yaml, and rviz on request.

    ros2 launch depth_anything_ros depth_anything.launch.py camera:=camera image:=image_raw model:=hypersim-vits

The node runs in the namespace `camera`: it reads `<camera>/<image>` (or `<camera>/<image>/compressed` with
image_transport: compressed) and `<camera>/<camera_info>`, and publishes `<camera>/depth`, `<camera>/depth/camera_info`,
`<camera>/points` and `<camera>/depth/colored`. Every other setting lives in the params file (`params_file:=...`).
"""

from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription

PACKAGE = "depth_anything_ros"


def generate_launch_description():
    camera = LaunchConfiguration("camera")
    return LaunchDescription([
        DeclareLaunchArgument("camera", default_value="camera",
                              description="namespace of the camera: input and output topics live under it"),
        DeclareLaunchArgument("image", default_value="image_raw",
                              description="image topic relative to the camera namespace"),
        DeclareLaunchArgument("camera_info", default_value="camera_info",
                              description="camera_info topic relative to the camera namespace"),
        DeclareLaunchArgument("model", default_value="hypersim-vits",
                              description="model.checkpoint: variant name (hypersim-vits, vkitti-vitl, ...) or a path"),
        DeclareLaunchArgument("params_file",
                              default_value=PathJoinSubstitution([FindPackageShare(PACKAGE), "config",
                                                                  "depth_anything.yaml"]),
                              description="parameters of the node (defaults: config/depth_anything.yaml)"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="use /clock (bag replay)"),
        DeclareLaunchArgument("rviz", default_value="false", description="start rviz2 with rviz/depth_anything.rviz"),
        Node(
            package=PACKAGE,
            executable="depth_anything_node",
            namespace=camera,
            output="screen",
            parameters=[
                LaunchConfiguration("params_file"),
                {
                    "model.checkpoint": ParameterValue(LaunchConfiguration("model"), value_type=str),
                    "use_sim_time": ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool),
                },
            ],
            remappings=[
                ("image", LaunchConfiguration("image")),  # image/compressed follows: the node appends the suffix
                ("camera_info", LaunchConfiguration("camera_info")),
            ],
        ),
        Node(
            package="rviz2",
            executable="rviz2",
            arguments=["-d", PathJoinSubstitution([FindPackageShare(PACKAGE), "rviz", "depth_anything.rviz"])],
            parameters=[{"use_sim_time": ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool)}],
            condition=IfCondition(LaunchConfiguration("rviz")),
        ),
    ])
