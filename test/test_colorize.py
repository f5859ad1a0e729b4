"""Colormap LUTs, depth colourisation and colour bars."""

import cv2
import numpy as np
import pytest
import torch

from depth_anything_ros.frame.colorize import COLORMAPS, color_bar, colorize, colormap_lut


@pytest.mark.parametrize('name', ['turbo', 'jet', 'viridis', 'inferno', 'magma', 'plasma', 'TURBO'])
def test_lut_is_opencv_colormap_in_rgb(name):
    lut = colormap_lut(name)
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    bgr = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], getattr(cv2, f'COLORMAP_{name.upper()}'))
    np.testing.assert_array_equal(lut, bgr[:, 0, ::-1])


def test_unknown_colormap_lists_valid_names():
    with pytest.raises(ValueError) as err:
        colormap_lut('spectral')
    assert "'spectral'" in str(err.value) and 'turbo' in str(err.value) and 'viridis' in str(err.value)
    assert 'turbo' in COLORMAPS and 'spectral' not in COLORMAPS


KERNELS = ('opencv', 'torch')


@pytest.mark.parametrize('kernel', KERNELS)
def test_near_is_warm_and_invalid_is_black(kernel):
    lut = colormap_lut('turbo')
    depth = torch.tensor([[1.0, 10.0, 5.5, 0.5, 20.0], [np.nan, np.inf, 0.0, -1.0, 3.0]])
    out = colorize(depth, 1.0, 10.0, lut, cpu_kernel=kernel)
    assert out.shape == (2, 5, 3) and out.dtype == torch.uint8
    out = out.numpy()
    np.testing.assert_array_equal(out[0, 0], lut[255])  # min_depth: warm end (red for turbo)
    np.testing.assert_array_equal(out[0, 1], lut[0])  # max_depth: cold end
    np.testing.assert_array_equal(out[0, 2], lut[128])  # middle: (10 - 5.5) / 9 * 255 = 127.5 -> 128 (to even)
    np.testing.assert_array_equal(out[0, 3], lut[255])  # nearer than min: clamped
    np.testing.assert_array_equal(out[0, 4], lut[0])  # farther than max: clamped
    assert not out[1, :4].any()
    np.testing.assert_array_equal(out[1, 4], lut[198])  # (10 - 3) / 9 * 255 = 198.3 -> 198
    assert out[0, 0, 0] > out[0, 0, 2], 'turbo near should be red'


@pytest.mark.parametrize('kernel', KERNELS)
def test_monotonic_ramp_walks_the_lut(kernel):
    lut = colormap_lut('viridis')
    depth = torch.linspace(2.0, 7.0, 256).reshape(1, 256)
    out = colorize(depth, 2.0, 7.0, lut, cpu_kernel=kernel).numpy()[0]
    np.testing.assert_array_equal(out, lut[::-1])


def test_kernels_agree_away_from_rounding_ties():
    lut = colormap_lut('turbo')
    rng = np.random.default_rng(0)
    depth = rng.uniform(-1.0, 25.0, size=(60, 80)).astype(np.float32)
    depth[::7, ::3] = np.nan
    depth[3, :3] = [np.inf, -np.inf, 0.0]
    position = np.nan_to_num((20.0 - depth.astype(np.float64)) * 255.0 / 19.5, posinf=0.0, neginf=0.0)
    near_tie = np.abs(position - np.floor(position) - 0.5) < 1e-3
    first = colorize(torch.from_numpy(depth), 0.5, 20.0, lut, cpu_kernel='opencv').numpy()
    second = colorize(torch.from_numpy(depth), 0.5, 20.0, lut, cpu_kernel='torch').numpy()
    np.testing.assert_array_equal(first[~near_tie], second[~near_tie])
    expected = lut[np.clip(np.round(position), 0, 255).astype(int)]
    expected[~(np.isfinite(depth) & (depth > 0))] = 0
    np.testing.assert_array_equal(first[~near_tie], expected[~near_tie])


def test_colorize_errors():
    lut = colormap_lut('jet')
    with pytest.raises(ValueError, match='min_depth < max_depth'):
        colorize(torch.ones(2, 2), 5.0, 5.0, lut)
    with pytest.raises(ValueError, match='depth must be'):
        colorize(torch.ones(1, 2, 2), 0.0, 5.0, lut)
    with pytest.raises(ValueError, match='cpu_kernel'):
        colorize(torch.ones(2, 2), 0.0, 5.0, lut, cpu_kernel='numba')


def test_color_bar_has_gradient_and_labels():
    lut = colormap_lut('turbo')
    bar = color_bar(240, 0.5, 20.0, lut)
    assert bar.shape[0] == 240 and bar.dtype == np.uint8 and bar.shape[2] == 3
    strip = bar[8:232, 10]
    np.testing.assert_array_equal(strip[0], lut[0])  # top: max_depth, cold
    np.testing.assert_array_equal(strip[-1], lut[255])  # bottom: min_depth, warm
    text_area = bar[:, 30:]
    assert (text_area < 128).any(), 'tick labels are drawn'
    with pytest.raises(ValueError, match='at least 32'):
        color_bar(10, 0.0, 1.0, lut)


def test_report_figures_use_the_convention_of_colorize():
    """A depth in a report figure gets the colour the node publishes for it: near warm, invalid black."""
    from depth_anything_ros.frame.figures import depth_colormap

    lut = colormap_lut('turbo')
    published = colorize(torch.tensor([[0.5, 9.5, float('nan')]]), 0.0, 10.0, lut)[0].numpy().astype(int)
    cmap = depth_colormap()
    figure = (np.array([cmap(0.05), cmap(0.95), cmap(np.ma.masked_invalid([np.nan]))[0]])[:, :3] * 255).round()
    np.testing.assert_allclose(figure, published, atol=8)  # the same colour, give or take one LUT entry
    assert published[0, 0] > published[0, 2] and published[1, 2] > published[1, 0]  # near red, far blue
    assert published[2].tolist() == [0, 0, 0]


def test_depth_and_error_panels_label_their_bars_with_units():
    from depth_anything_ros.frame.figures import new_figure, show_depth, show_error

    fig = new_figure((6, 3))
    depth = np.linspace(0.5, 4.0, 48 * 64, dtype=np.float32).reshape(48, 64)
    show_depth(fig, fig.add_subplot(1, 2, 1), depth, 4.0, 'prediction')
    show_error(fig, fig.add_subplot(1, 2, 2), np.abs(depth - 2.0), 2.0, '|error|', '|error| (m)')
    labels = [ax.get_ylabel() for ax in fig.axes if ax.get_label() == '<colorbar>']
    assert labels == ['depth (m)', '|error| (m)']


def test_no_figure_chooses_its_own_colours():
    """Every picture of depth goes through frame/colorize.py or frame/figures.py: no colormap chosen elsewhere."""
    from pathlib import Path

    import depth_anything_ros

    package = Path(depth_anything_ros.__file__).parent
    own = {package / 'frame' / 'colorize.py', package / 'frame' / 'figures.py'}
    offenders = [f'{path.relative_to(package)}: {word}' for path in package.rglob('*.py') if path not in own
                 for word in ('cmap=', '.colorbar(', 'applyColorMap', 'COLORMAP_', "'turbo", '"turbo', '"magma')
                 if word in path.read_text()]
    assert not offenders
