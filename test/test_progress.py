"""The progress line: the final count printed exactly once, in a log and on a terminal."""

import io

from depth_anything_ros.bag.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_final_line_once_in_a_log():
    stream = io.StringIO()
    with Progress(3, "bag process", stream=stream) as bar:
        for _ in range(3):
            bar.update(1)
        bar.update(0)
    lines = stream.getvalue().splitlines()
    assert [line.split(",")[0] for line in lines] == ["bag process: 1/3 frames", "bag process: 3/3 frames"]


def test_final_state_once_on_a_terminal_and_where_an_interrupted_run_stopped():
    stream = Terminal()
    with Progress(3, "bag process", stream=stream) as bar:
        for _ in range(3):
            bar.update(1)
    assert stream.getvalue().count("3/3 frames") == 1 and stream.getvalue().endswith("\n")
    stream = io.StringIO()
    with Progress(10, "bag evaluate", stream=stream) as bar:
        bar.update(1)
        bar.update(1)
    assert stream.getvalue().splitlines()[-1].startswith("bag evaluate: 2/10 frames")


def test_disabled_prints_nothing():
    stream = io.StringIO()
    with Progress(2, "x", enabled=False, stream=stream) as bar:
        bar.update(2)
    assert stream.getvalue() == ""
