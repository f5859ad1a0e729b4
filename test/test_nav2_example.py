"""config/nav2_costmap_example.yaml uses only Nav2's parameter names, our topics and frames, and consistent ranges.

The names are written out from nav2_costmap_2d (costmap_2d_ros.cpp, plugins/obstacle_layer.cpp, voxel_layer.cpp,
inflation_layer.cpp declare_parameter calls) and the Nav2 configuration guide (docs.nav2.org, "Costmap 2D"). A
running Nav2 is not installable here, so the file is checked against those lists, not loaded by Nav2.
"""

from pathlib import Path

import yaml

from depth_anything_ros.ros import params as node_params

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = REPO_ROOT / "config" / "nav2_costmap_example.yaml"
NODE_DEFAULTS = yaml.safe_load((REPO_ROOT / "config" / "depth_anything.yaml").read_text())["/**"]["ros__parameters"]

COSTMAP = {"always_send_full_costmap", "clearable_layers", "filters", "footprint", "footprint_padding", "global_frame",
           "height", "width", "lethal_cost_threshold", "map_topic", "observation_sources", "origin_x", "origin_y",
           "plugins", "publish_frequency", "resolution", "robot_base_frame", "robot_radius", "rolling_window",
           "track_unknown_space", "transform_tolerance", "trinary_costmap", "unknown_cost_value", "update_frequency",
           "use_maximum", "use_sim_time"}
OBSTACLE_LAYER = {"plugin", "enabled", "footprint_clearing_enabled", "min_obstacle_height", "max_obstacle_height",
                  "combination_method", "observation_sources", "tf_filter_tolerance"}
VOXEL_LAYER = OBSTACLE_LAYER | {"z_voxels", "origin_z", "z_resolution", "unknown_threshold", "mark_threshold",
                                "publish_voxel_map"}
INFLATION_LAYER = {"plugin", "enabled", "inflation_radius", "cost_scaling_factor", "inflate_unknown",
                   "inflate_around_unknown"}
OBSERVATION_SOURCE = {"topic", "sensor_frame", "observation_persistence", "expected_update_rate", "data_type",
                      "min_obstacle_height", "max_obstacle_height", "inf_is_valid", "marking", "clearing",
                      "obstacle_max_range", "obstacle_min_range", "raytrace_max_range", "raytrace_min_range"}
LAYERS = {"nav2_costmap_2d::ObstacleLayer": OBSTACLE_LAYER, "nav2_costmap_2d::VoxelLayer": VOXEL_LAYER,
          "nav2_costmap_2d::InflationLayer": INFLATION_LAYER}
# our outputs under the launch file's namespace `camera`, and the message type Nav2 must be told
TOPICS = {"/camera/points": "PointCloud2", "/camera/scan": "LaserScan"}


def costmap() -> dict:
    return yaml.safe_load(EXAMPLE.read_text())["local_costmap"]["local_costmap"]["ros__parameters"]


def sources() -> list[tuple[dict, dict]]:
    """Return (layer, source) for every observation source of every layer."""
    params = costmap()
    found = []
    for name in params["plugins"]:
        layer = params[name]
        found += [(layer, layer[s]) for s in layer.get("observation_sources", "").split()]
    return found


def test_every_key_is_a_nav2_parameter():
    params = costmap()
    assert set(params) - set(params["plugins"]) <= COSTMAP
    for name in params["plugins"]:
        layer = params[name]
        known = LAYERS[layer["plugin"]]
        observed = set(layer.get("observation_sources", "").split())
        assert set(layer) - observed <= known, name
        for source in observed:
            assert set(layer[source]) <= OBSERVATION_SOURCE, source


def test_sources_are_our_topics_with_their_types_and_frames():
    seen = {}
    for layer, source in sources():
        seen[source["topic"]] = source["data_type"]
        if source["data_type"] == "LaserScan":
            assert layer["plugin"] == "nav2_costmap_2d::ObstacleLayer"
            assert source["sensor_frame"] == NODE_DEFAULTS["scan"]["output_frame"]
            assert source["inf_is_valid"] is True  # +inf: nothing within scan.range_max, free space
        else:
            assert layer["plugin"] == "nav2_costmap_2d::VoxelLayer"
            assert source["sensor_frame"] == ""  # the cloud's own frame_id, the optical frame
    assert seen == TOPICS
    assert "points" in node_params.SPECS["cloud.enabled"].description  # the node publishes both outputs
    assert "'scan'" in node_params.SPECS["scan.enabled"].description


def test_ranges_stay_within_the_scan_and_the_models_depth():
    hypersim_max_depth = 20.0  # models/variants.py: the indoor metric heads' max depth
    for _, source in sources():
        assert 0 <= source["obstacle_min_range"] < source["obstacle_max_range"] <= source["raytrace_max_range"]
        assert source["raytrace_max_range"] <= NODE_DEFAULTS["scan"]["range_max"] <= hypersim_max_depth / 2
        assert source["marking"] and source["clearing"]
