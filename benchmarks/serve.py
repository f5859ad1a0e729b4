"""The server's cost per request and its throughput: `depth-anything-ros serve` against `estimate`'s own work.

A 640x480 PNG through POST /v1/depth (the float TIFF back) and through the Gradio API /estimate (gradio_client: upload,
queue, four files and the summary back), timed call by call in alternation with the same work done in this process as
`estimate` does it (decode the file, the frame pipeline, the outputs), so the difference is the server's overhead.
Then 1, 4 and 8 clients at once on /v1/depth: requests/s and latency. The server is a subprocess on a free loopback
port (test/serve_helpers.py, as the tests start it); synthetic vits weights, input size 518 (--quick: 70); torch
threads 1 in both processes unless --threads says otherwise.

    python benchmarks/serve.py [--device cpu] [--iters 10] [--clients 1,4,8] [--json out.json]
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path

import _common
import numpy as np

sys.path.insert(0, str(_common.REPO_ROOT / "test"))
from serve_helpers import Server  # noqa: E402 - the tests' server process helper

from depth_anything_ros.frame.camera import user_camera  # noqa: E402
from depth_anything_ros.frame.colorize import colormap_lut  # noqa: E402
from depth_anything_ros.frame.files import result_files  # noqa: E402
from depth_anything_ros.frame.image_codec import decode_encoded  # noqa: E402
from depth_anything_ros.frame.pipeline import FrameInput, FrameOptions, FramePipeline  # noqa: E402
from depth_anything_ros.frame.provenance import model_label, model_provenance  # noqa: E402
from depth_anything_ros.models.registry import load_estimator  # noqa: E402
from depth_anything_ros.models.synthetic_weights import write_synthetic_checkpoint  # noqa: E402


def estimate_work(pipeline: FramePipeline, model: dict, data: bytes, keys: tuple[str, ...]) -> dict:
    """Do `estimate`'s work for one PNG in memory: decode, pipeline (60 degree FOV), the outputs `keys`."""
    pixels, encoding = decode_encoded(np.frombuffer(data, np.uint8), "frame")
    camera_for = user_camera(None, None, None, None, 60.0, 60.0)[0]
    options = FrameOptions(cloud_organized=False)
    frame = FrameInput(camera="files", pixels=pixels, encoding=encoding, outputs=("depth", "points", "rgb"),
                       camera_info=camera_for(pixels.shape[1], pixels.shape[0]))
    result = pipeline.run([frame], options)[0]
    return result_files(result, colormap_lut("turbo"), pipeline.colour_range(options), "tiff", keys,
                        model=model_label(model), synthetic=model["synthetic"])


def throughput(server: Server, data: bytes, clients: int, per_client: int) -> dict:
    """Requests/s and latency of `clients` threads each sending `per_client` requests to /v1/depth at once."""
    latencies, statuses, start = [], [], threading.Barrier(clients + 1)

    def client():
        start.wait()
        for _ in range(per_client):
            t0 = time.perf_counter()
            statuses.append(server.depth(data).status_code)
            latencies.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    t0 = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - t0
    lat = _common.summarise(latencies)
    return {"clients": clients, "requests": len(statuses), "ok": statuses.count(200), "busy": statuses.count(503),
            "requests_per_s": len(statuses) / wall, "p50_ms": lat["p50_ms"], "p95_ms": lat["p95_ms"]}


def main() -> None:
    parser = _common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--input-size", type=int, default=518)
    parser.add_argument("--clients", default="1,4,8", help="concurrent client counts for the throughput table")
    parser.add_argument("--per-client", type=int, default=3, help="requests each client sends")
    parser.set_defaults(threads=1)  # both processes alike; two threads on two shared cores measure the neighbours
    args = parser.parse_args()
    _common.apply_common(args)
    if args.quick:
        args.input_size, args.clients, args.per_client = 70, "1,2", 1
    from gradio_client import Client, handle_file

    with tempfile.TemporaryDirectory() as folder:
        checkpoint = write_synthetic_checkpoint(Path(folder) / "synthetic_vits.safetensors", "vits", seed=0)
        image = Path(folder) / "frame.png"
        import cv2

        image.write_bytes(cv2.imencode(".png", _common.synthetic_image(480, 640))[1].tobytes())
        data = image.read_bytes()
        model = ["--model-max-depth", "20", "--input-size", str(args.input_size), "--device", args.device]
        pipeline = FramePipeline(load_estimator(str(checkpoint), max_depth=20.0, input_size=args.input_size,
                                                device=args.device))
        server = Server(checkpoint, model=model, env={"OMP_NUM_THREADS": str(args.threads)})
        provenance = model_provenance(pipeline.estimator)  # once: it hashes the checkpoint
        try:
            client = Client(server.url, verbose=False, download_files=str(Path(folder) / "downloads"))
            calls = {
                "estimate work, TIFF only": lambda: estimate_work(pipeline, provenance, data, ("depth",)),
                "POST /v1/depth (TIFF)": lambda: server.depth(data).raise_for_status(),
                "estimate work, all four outputs": lambda: estimate_work(pipeline, provenance, data,
                                                                          ("depth", "depth_mm", "preview", "ply")),
                "gradio_client /estimate (four files + summary)": lambda: client.predict(
                    handle_file(str(image)), 0, 0, 0, 0, 60, "turbo", 0, 0, api_name="/estimate"),
            }
            samples = _common.time_interleaved(calls, args.warmup, args.iters, args.device)
            rows = [{"path": name, **_common.summarise(times)} for name, times in samples.items()]
            names = list(samples)
            for route, baseline in ((1, 0), (3, 2)):  # median of call-by-call differences: drift cancels
                paired = np.subtract(samples[names[route]], samples[names[baseline]]) * 1e3
                rows[route]["overhead_p50_ms"] = float(np.median(paired))
            _common.print_table(rows, ["path", "n", "p50_ms", "p95_ms", "mean_ms", "overhead_p50_ms"],
                                f"Per request, 640x480 PNG, vits, input size {args.input_size}, {args.device}")
            loads = [throughput(server, data, int(n), args.per_client) for n in args.clients.split(",")]
            _common.print_table(loads, ["clients", "requests", "ok", "busy", "requests_per_s", "p50_ms", "p95_ms"],
                                "Throughput of POST /v1/depth, clients at once (queue 8)")
        finally:
            server.stop()
    _common.write_json(args.json, "serve", args, rows + loads)


if __name__ == "__main__":
    main()
