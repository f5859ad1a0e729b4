#!/usr/bin/env bash
# One call on the GPU machine: the CUDA tests, then every benchmark with JSON output, under one time budget.
#
#   bash benchmarks/gpu_check.sh --device cuda --out "$OUT"      # on the GPU machine (docs/benchmarks.md)
#   bash benchmarks/gpu_check.sh --device cpu --quick            # dry run here: every step, tiny configurations
#   bash benchmarks/gpu_check.sh --plan 2 --device cuda --out "$OUT"   # the second check: DA3, training, temporal, ONNX
#
# Run benchmarks/gpu_prepare.sh first on a machine with internet: it puts the wheels the GPU image lacks in .whl/
# and the official Depth-Anything-V2 code in .gpu/official/ (both ignored, both carried). Steps run in order of
# importance, each under `timeout` with the smaller of its own limit and what is left of --budget, so the whole run
# ends inside the budget and a step that runs out still leaves what it measured (model_only rewrites its JSON
# after every configuration, pytest writes its junit report when interrupted). Everything lands in --out:
#   gpu_check.log     this log
#   results.json      machine (nvidia-smi, torch/CUDA/cuDNN/Triton, Python, ROS wheels), steps (status, seconds,
#                     command), tests (junit counts and the recorded fp16/bf16 differences), targets, and every
#                     benchmark's JSON
#   targets.md        the step table and the performance target table
#   results.tar.gz    the single JSON files, the per-step logs, the junit XML, nvidia-smi -q
set -uo pipefail

usage() {
    cat <<'EOF'
usage: benchmarks/gpu_check.sh [--device cuda|cpu] [--quick] [--out DIR] [--python PY] [--budget SECONDS]
                               [--encoders LIST] [--official DIR] [--only STEPS] [--skip STEPS] [--list]
                               [--plan 1|2]

  --device    cuda (default) or cpu (dry run: compiled steps run eager, fp16 is left out)
  --quick     every benchmark's --quick configuration (tiny inputs, no meaningful timing)
  --out       result folder (default: $OUT when set, else a new /tmp/gpu_check.XXXXXX)
  --python    interpreter (default: /opt/torch/.venv/bin/python3 when present, else .venv/bin/python, else python3)
  --budget    seconds for all steps together (default: 450 on cuda, 3600 on cpu)
  --encoders  encoders of the model-only steps (default vits,vitb,vitl)
  --official  extracted official code, holding metric_depth/ (default .gpu/official; when absent, extracted into
              the work folder from $DEPTH_ANYTHING_OFFICIAL_GIT or the local mirror, if there is one)
  --only/--skip  comma-separated step names (see --list); setup, info and summary always run
  --plan      1 (default): Depth-Anything-V2 tests and benchmarks; 2: DA3METRIC-LARGE (eager and compiled, every
              precision against fp32), fine-tuning steps (vits, vitb at 518, batch 4, autocast against fp32), the
              temporal family (streaming, offline), train under torchrun, ONNX Runtime's GPU providers
EOF
}

DEVICE=cuda QUICK=0 OUT_DIR=${OUT:-} PY="" BUDGET="" ENCODERS=vits,vitb,vitl OFFICIAL=.gpu/official ONLY="" SKIP=""
LIST=0 PLAN_NUMBER=1
while [ $# -gt 0 ]; do
    case "$1" in
        --device) DEVICE=${2:?}; shift 2 ;;
        --quick) QUICK=1; shift ;;
        --out) OUT_DIR=${2:?}; shift 2 ;;
        --python) PY=${2:?}; shift 2 ;;
        --budget) BUDGET=${2:?}; shift 2 ;;
        --encoders) ENCODERS=${2:?}; shift 2 ;;
        --official) OFFICIAL=${2:?}; shift 2 ;;
        --only) ONLY=${2:?}; shift 2 ;;
        --skip) SKIP=${2:?}; shift 2 ;;
        --list) LIST=1; shift ;;
        --plan) PLAN_NUMBER=${2:?}; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "error: unknown argument '$1'" >&2; echo "help: benchmarks/gpu_check.sh --help" >&2; exit 2 ;;
    esac
done
case "$PLAN_NUMBER" in
    1|2) ;;
    *) echo "error: --plan must be 1 or 2, got '$PLAN_NUMBER'" >&2; exit 2 ;;
esac
case "$DEVICE" in
    cuda|cpu) ;;
    *) echo "error: --device must be cuda or cpu, got '$DEVICE'" >&2; exit 2 ;;
esac

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO" || exit 2
CUDA=0; [ "$DEVICE" = cuda ] && CUDA=1
[ -n "$BUDGET" ] || BUDGET=$([ $CUDA = 1 ] && echo 450 || echo 3600)
RESERVE=20      # seconds kept for the summary and the packing at the end
MIN_STEP=15     # a step is not started with less than this left
if [ -z "$PY" ]; then
    for candidate in /opt/torch/.venv/bin/python3 "$REPO/.venv/bin/python" python3; do
        if command -v "$candidate" >/dev/null 2>&1; then PY=$candidate; break; fi
    done
fi
BASE_PY=$PY

# ------------------------------------------------------------------------------------------------ the step plan
# name | limit in seconds on the GPU | command (benchmarks/<script> args; {D} = --device, {Q} = --quick when set)
# The order is the order of importance: what the performance targets need first, the long compile tail last.
if [ $CUDA = 1 ]; then
    PRECISIONS=fp32,fp16,bf16 FP16=fp16 COMPILE_ON="--compile on" COMPILE_FLAG="--compile"
    ORT_PROVIDERS=TensorrtExecutionProvider,CUDAExecutionProvider,CPUExecutionProvider
else  # inductor on a CPU takes minutes per shape and fp16 does not run there: the same commands, eager, no fp16
    PRECISIONS=fp32,bf16 FP16="" COMPILE_ON="--compile off" COMPILE_FLAG=""
    ORT_PROVIDERS=CPUExecutionProvider
fi
OFFICIAL_ENCODERS=$(tr ',' '\n' <<< "$ENCODERS" | grep -x -E 'vits|vitl' | paste -sd, -)
[ -n "$OFFICIAL_ENCODERS" ] || OFFICIAL_ENCODERS=vits
MODEL="model_only.py --encoders $ENCODERS --iters 30 --warmup 5"
PLAN=(
    "tests|150|pytest"
    "official_baseline|120|official_baseline.py --encoders $OFFICIAL_ENCODERS --resolutions 640x480 --official {OFFICIAL}"
    "model_only_eager|110|$MODEL --precisions $PRECISIONS --resolutions 640x480,1280x720 --batches 1,4 --compile off"
    "multi_camera|45|multi_camera.py --precision auto --streams 1,2,4"
    "end_to_end|90|end_to_end.py --precision auto $COMPILE_FLAG --duration 10"
    "pipeline|45|pipeline.py --precision auto --resolutions 640x480,1280x720"
    "model_only_compiled_640_b1|100|$MODEL --precisions bf16 --resolutions 640x480 --batches 1 $COMPILE_ON"
    "pipeline_compiled|60|pipeline.py --precision auto $COMPILE_FLAG --resolutions 640x480,1280x720"
    "multi_camera_compiled|75|multi_camera.py --precision auto $COMPILE_FLAG --streams 1,2,4"
    "cpu_pipeline_overhead|25|cpu_pipeline_overhead.py"
    "bag_process_fps|50|bag_process_fps.py --frames 50 --batches 1,4"
    "large_frame_memory|50|large_frame_memory.py"
    "model_only_compiled_1280_b1|100|$MODEL --precisions bf16 --resolutions 1280x720 --batches 1 $COMPILE_ON"
    "model_only_compiled_b4|150|$MODEL --precisions bf16 --resolutions 640x480,1280x720 --batches 4 $COMPILE_ON"
    "model_only_compiled_fp16|100|$MODEL --precisions ${FP16:-none} --resolutions 640x480 --batches 1 $COMPILE_ON"
    "model_only_compiled_fp32|100|$MODEL --precisions fp32 --resolutions 640x480 --batches 1 $COMPILE_ON"
)
# The second check (GPU issue 2): what landed after the first plan was written. The server's dependencies (gradio,
# 78 MB of wheels) do not fit the carry. The ONNX Runtime step needs an onnxruntime-gpu in the GPU image; without one
# it fails naming the providers it has.
if [ "$PLAN_NUMBER" = 2 ]; then
    PLAN=(
        "tests|150|pytest"
        "da3_eager|150|da3_vs_v2.py --precisions $PRECISIONS"
        "train_steps|150|train_steps.py --encoders vits,vitb --size 518 --batch 4 --precisions $PRECISIONS"
        "da3_compiled|150|da3_vs_v2.py --precisions bf16 $COMPILE_FLAG"
        "temporal|90|temporal.py --resolution 640x480 --input-size 518 --frames 60"
        "train_scale|120|train_scale.py --processes 2"
        "onnx_providers|150|onnx_numerics.py --models vits,vitl --providers $ORT_PROVIDERS"
    )
fi
if [ $LIST = 1 ]; then
    printf '%s\n' "setup|-|python, wheels (.whl), official code (.gpu/official)" "info|-|nvidia-smi, versions" \
        "${PLAN[@]}" "summary|-|results.json, targets.md, results.tar.gz"
    exit 0
fi

# ------------------------------------------------------------------------------------------------ folders, log
[ -n "$OUT_DIR" ] || OUT_DIR=$(mktemp -d /tmp/gpu_check.XXXXXX)
mkdir -p "$OUT_DIR" || exit 2
OUT_DIR=$(cd "$OUT_DIR" && pwd)
if [ $CUDA = 1 ]; then WORK=/tmp/gpu_check_work; else WORK=$(mktemp -d /tmp/gpu_check_work.XXXXXX); fi
mkdir -p "$WORK/json" "$WORK/logs"
rm -f "$WORK"/json/*.json "$WORK"/logs/*.log "$WORK/steps.jsonl" "$WORK/tests_junit.xml"
LOG="$OUT_DIR/gpu_check.log"
: > "$LOG"
exec > >(tee -a "$LOG") 2>&1
TEE_PID=$!
START=$(date +%s)
DEADLINE=$((START + BUDGET))
export PYTHONUNBUFFERED=1 PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" MPLBACKEND=Agg
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST RMW_IMPLEMENTATION=rmw_fastrtps_cpp ROS_LOG_DIR="$WORK/ros_log"
echo "gpu_check: device $DEVICE, quick $QUICK, budget ${BUDGET}s, out $OUT_DIR, work $WORK, python $PY"
echo "gpu_check: started $(date -u +%Y-%m-%dT%H:%M:%SZ) in $REPO"

DEFAULT_SIGNAL=()
env --default-signal=INT true 2>/dev/null && DEFAULT_SIGNAL=(env --default-signal=INT)

elapsed() { echo $(($(date +%s) - START)); }

selected() {  # selected NAME: is the step in --only (when given) and not in --skip
    local name=$1
    if [ -n "$ONLY" ] && [[ ",$ONLY," != *",$name,"* ]]; then return 1; fi
    [[ ",$SKIP," != *",$name,"* ]]
}

record() {  # record NAME STATUS SECONDS LIMIT COMMAND...
    local name=$1 status=$2 seconds=$3 limit=$4; shift 4
    "$BASE_PY" - "$WORK/steps.jsonl" "$name" "$status" "$seconds" "$limit" "$*" <<'EOF'
import json, sys
path, name, status, seconds, limit, command = sys.argv[1:]
with open(path, "a") as f:
    f.write(json.dumps({"step": name, "status": status, "seconds": int(seconds), "limit_s": int(limit),
                        "command": command}) + "\n")
EOF
    echo "=== $name: $status in ${seconds}s (limit ${limit}s, $(elapsed)s of ${BUDGET}s used)"
}

run_step() {  # run_step NAME LIMIT COMMAND...: run under the smaller of LIMIT and what is left of the budget
    local name=$1 limit=$2; shift 2
    [ $CUDA = 1 ] || limit=$((limit * 4))  # the limits are the GPU's; a shared CPU runs even --quick slower
    local left=$((DEADLINE - RESERVE - $(date +%s)))
    [ "$left" -lt "$limit" ] && limit=$left
    if [ "$limit" -lt "$MIN_STEP" ]; then
        record "$name" "skipped: out of time" 0 0 "$@"
        return 0
    fi
    echo
    echo "=== $name (limit ${limit}s): $*"
    local t0 rc status
    t0=$(date +%s)
    # SIGINT, so that Python stops with KeyboardInterrupt (pytest then still writes its report); `env
    # --default-signal` undoes an ignored SIGINT inherited from a launcher that runs this in the background
    timeout --signal=INT --kill-after=15 "$limit" "${DEFAULT_SIGNAL[@]}" "$@" 2>&1 | tee "$WORK/logs/$name.log"
    rc=${PIPESTATUS[0]}
    case $rc in
        0) status=ok ;;
        124|137) status="timeout" ;;
        *) status="failed: exit status $rc" ;;
    esac
    record "$name" "$status" $(($(date +%s) - t0)) "$limit" "$@"
}

# ------------------------------------------------------------------------------------------------ setup
setup_python() {
    # The GPU image has torch, numpy, cv2, safetensors, matplotlib, pyyaml, pytest, huggingface_hub but no ROS and
    # no rosbags: those come as wheels from .whl/, installed into a venv of their own that also sees the image's
    # site-packages (a venv made from a venv would not), so that the ROS wheels find their libraries under
    # sys.prefix as they expect.
    local probe="import rclpy, rosbags, sensor_msgs.msg, diagnostic_msgs.msg"
    if "$PY" -c "$probe" 2>/dev/null; then
        echo "setup: ROS 2 and rosbags importable by $PY, no wheels installed"
        return 0
    fi
    if ! ls .whl/*.whl >/dev/null 2>&1; then
        echo "setup: $PY cannot import ROS 2 / rosbags and there is no .whl/ (run benchmarks/gpu_prepare.sh, carry .whl)"
        return 1
    fi
    local venv="$WORK/venv"
    if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "$probe" 2>/dev/null; then
        echo "setup: reusing $venv"
        PY="$venv/bin/python"
        return 0
    fi
    rm -rf "$venv"
    local pip_args=(install -q --no-index --no-deps --no-compile --no-cache-dir --disable-pip-version-check)
    if [ -z "${GPU_CHECK_NO_VENV:-}" ] && "$PY" -m venv --without-pip "$venv"; then
        local site_dir
        site_dir=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') || return 1
        # the interpreter's own site-packages, after the venv's (addsitedir also runs their .pth files)
        "$PY" - "$site_dir/_gpu_check_base.pth" <<'EOF' || return 1
import site, sys
dirs = [d for d in site.getsitepackages() + [site.getusersitepackages()] if d]
with open(sys.argv[1], "w") as f:
    f.write("import site; " + "; ".join(f"site.addsitedir({d!r})" for d in dirs) + "\n")
EOF
        if "$PY" -m pip --help 2>/dev/null | grep -q -- '--python '; then
            "$PY" -m pip --python "$venv/bin/python" "${pip_args[@]}" .whl/*.whl || return 1
        else
            "$PY" -m pip "${pip_args[@]}" --ignore-installed --prefix "$venv" .whl/*.whl || return 1
        fi
        PY="$venv/bin/python"
    else  # no venv module: a plain prefix, with the paths ros_wheels_bootstrapper would set made by hand
        echo "setup: no venv, installing into the prefix $venv"
        rm -rf "$venv"
        "$PY" -m pip "${pip_args[@]}" --ignore-installed --prefix "$venv" .whl/*.whl || return 1
        local site_dir libs
        site_dir=$("$PY" -c 'import sys, sysconfig
print(sysconfig.get_path("purelib", vars={"base": sys.argv[1], "platbase": sys.argv[1]}))' "$venv") || return 1
        libs=$(printf '%s:' "$venv/lib" "$site_dir"/ros_*.libs)
        export PYTHONPATH="$site_dir:$PYTHONPATH" LD_LIBRARY_PATH="${libs%:}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        export _ROS_WHEELS_BOOTSTRAP_COMPLETE=1
    fi
    "$PY" -c "$probe" || return 1
    echo "setup: installed $(ls .whl/*.whl | wc -l) wheels into $venv"
}

t0=$(date +%s)
if setup_python; then setup_status=ok; else setup_status="failed: ROS 2 / rosbags not importable (see above)"; fi
if [ ! -f "$OFFICIAL/metric_depth/depth_anything_v2/dpt.py" ]; then
    official_git=${DEPTH_ANYTHING_OFFICIAL_GIT:-/work/.mirror/DepthAnything+Depth-Anything-V2/repo}
    if [ -e "$official_git" ] && command -v git >/dev/null; then
        echo "setup: no official code in $OFFICIAL: extracting it from $official_git"
        OFFICIAL="$WORK/official"
        mkdir -p "$OFFICIAL"
        git -C "$official_git" archive HEAD metric_depth/depth_anything_v2 2>/dev/null | tar -x -C "$OFFICIAL"
    else
        echo "setup: no official code in $OFFICIAL (run benchmarks/gpu_prepare.sh, carry .gpu)"
    fi
fi
[ -f .gpu/source.txt ] && { echo "setup: .gpu/source.txt"; sed 's/^/  /' .gpu/source.txt; }
record setup "$setup_status" $(($(date +%s) - t0)) 0 "setup_python ($PY)"

# ------------------------------------------------------------------------------------------------ info
t0=$(date +%s)
{ command -v nvidia-smi >/dev/null && timeout 30 nvidia-smi -q; } > "$WORK/nvidia-smi-q.txt" 2>&1
"$PY" - "$WORK/machine.json" "$DEVICE" <<'EOF'
import importlib.metadata as md, json, os, platform, shutil, subprocess, sys, time

def run(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unavailable: {exc}"

info = {"date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "requested_device": sys.argv[2],
        "uname": " ".join(platform.uname()), "python": sys.version, "executable": sys.executable,
        "cpu_count": os.cpu_count()}
if shutil.which("nvidia-smi"):
    info["nvidia_smi"] = run(["nvidia-smi"])
    fields = "name,driver_version,memory.total,pci.bus_id,compute_cap,clocks.max.sm,clocks.max.memory,power.limit"
    out = run(["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader"])
    info["nvidia_smi_query"] = [dict(zip(fields.split(","), (v.strip() for v in line.split(","))))
                                for line in out.splitlines()]
info["nvcc"] = run(["nvcc", "--version"]).splitlines()[-1:] if shutil.which("nvcc") else None
try:
    import torch
except ImportError as exc:  # recorded: every later step fails on its own
    torch, info["torch"] = None, f"failed: {exc}"
else:
    info["torch"] = torch.__version__
    info["torch_cuda"] = torch.version.cuda
    info["cudnn"] = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    info["cuda_available"] = torch.cuda.is_available()
if torch is not None and torch.cuda.is_available():
    props = torch.cuda.get_device_properties(0)
    info["gpu"] = {"name": props.name, "capability": f"{props.major}.{props.minor}",
                   "multiprocessors": props.multi_processor_count, "memory_gib": props.total_memory / 2**30,
                   "bf16_supported": torch.cuda.is_bf16_supported()}
versions = {}
for name in ("numpy", "opencv-python-headless", "opencv-python", "safetensors", "triton", "torchvision",
             "matplotlib", "pyyaml", "pytest", "huggingface-hub", "rosbags", "ros-kilted-rclpy", "ros-rclpy"):
    try:
        versions[name] = md.version(name)
    except md.PackageNotFoundError:
        versions[name] = None
info["packages"] = versions
try:  # can DDS run here: one 640x480 image published and received on loopback (recorded, not fatal)
    import random
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(1, 200)))
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image
    rclpy.init()
    node = rclpy.create_node("gpu_check_loopback")
    qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
    got = []
    node.create_subscription(Image, "gpu_check_image", got.append, qos)
    pub = node.create_publisher(Image, "gpu_check_image", qos)
    msg = Image(height=480, width=640, encoding="rgb8", step=640 * 3)
    msg.data = bytes(640 * 480 * 3)
    t = time.time()
    while not got and time.time() < t + 10:
        pub.publish(msg)
        rclpy.spin_once(node, timeout_sec=0.2)
    info["ros_loopback"] = f"ok ({time.time() - t:.2f} s)" if got else "failed: nothing received in 10 s"
    node.destroy_node()
    rclpy.shutdown()
except Exception as exc:
    info["ros_loopback"] = f"failed: {type(exc).__name__}: {exc}"
if os.path.exists(".gpu/source.txt"):
    info["source"] = open(".gpu/source.txt").read()
json.dump(info, open(sys.argv[1], "w"), indent=2)
print(json.dumps({k: v for k, v in info.items() if k not in ("nvidia_smi", "source")}, indent=2))
EOF
info_rc=$?
[ $info_rc = 0 ] && info_status=ok || info_status="failed: exit status $info_rc"
record info "$info_status" $(($(date +%s) - t0)) 0 "machine.json"
if [ $CUDA = 1 ] && ! "$PY" -c 'import torch, sys; sys.exit(not torch.cuda.is_available())'; then
    echo "gpu_check: --device cuda but torch.cuda.is_available() is False; the CUDA steps will fail"
fi

# synthetic checkpoints (official key names, deterministic in the seed, the same bytes as benchmarks make
# anywhere) are too large to carry (vits 99 MB, vitl 1.3 GB): written here, in the background during the tests
"$PY" - "$ENCODERS" > "$WORK/logs/checkpoints.log" 2>&1 <<'EOF' &
import sys, time
sys.path.insert(0, "benchmarks")
import _common
for encoder in sys.argv[1].split(","):
    t = time.time()
    print(encoder, _common.synthetic_checkpoint(encoder), f"{time.time() - t:.1f}s", flush=True)
EOF
CKPT_PID=$!

# ------------------------------------------------------------------------------------------------ steps
QUICK_FLAG=""; [ $QUICK = 1 ] && QUICK_FLAG="--quick"
for entry in "${PLAN[@]}"; do
    IFS='|' read -r name limit command <<< "$entry"
    selected "$name" || continue
    if [ -n "$CKPT_PID" ] && [ "$name" != tests ]; then
        wait "$CKPT_PID" || echo "gpu_check: writing the synthetic checkpoints failed (see logs/checkpoints.log)"
        cat "$WORK/logs/checkpoints.log"
        CKPT_PID=""
    fi
    if [ "$name" = tests ]; then
        # test_gpu.py and every other file holding CUDA-only tests (the gpu marker or a CUDA skip condition)
        mapfile -t files < <(printf '%s\n' test/test_gpu.py $(grep -l -E 'mark\.gpu|cuda\.is_available' test/test_*.py) \
            | awk '!seen[$0]++')
        run_step tests "$limit" "$PY" -m pytest -v -s -rA -p no:cacheprovider --junitxml="$WORK/tests_junit.xml" \
            "${files[@]}"
        continue
    fi
    read -r -a argv <<< "${command//\{OFFICIAL\}/$OFFICIAL}"
    if [[ " ${argv[*]} " == *" --precisions none "* ]]; then
        record "$name" "skipped: fp16 runs on CUDA only" 0 0 "${argv[@]}"
        continue
    fi
    run_step "$name" "$limit" "$PY" "benchmarks/${argv[0]}" --device "$DEVICE" --json "$WORK/json/$name.json" \
        $QUICK_FLAG "${argv[@]:1}"
done
[ -n "$CKPT_PID" ] && wait "$CKPT_PID"

# ------------------------------------------------------------------------------------------------ summary
echo
echo "=== summary ($(elapsed)s used)"
"$PY" benchmarks/gpu_summary.py --work "$WORK" --out "$OUT_DIR" --device "$DEVICE" $QUICK_FLAG \
    --seconds "$(elapsed)" --budget "$BUDGET"
summary_rc=$?
echo "gpu_check: finished in $(elapsed)s; results in $OUT_DIR:"
ls -la "$OUT_DIR"
failed=$(grep -c '"status": "failed' "$WORK/steps.jsonl" || true)
[ $CUDA = 0 ] && rm -rf "$WORK"
exec >&- 2>&-
wait "$TEE_PID" 2>/dev/null
[ "$summary_rc" = 0 ] && [ "$failed" = 0 ]
